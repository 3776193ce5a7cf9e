"""One worker process: the app under uvicorn, draining on SIGTERM (``serving/workers.py`` says how workers
are run). This module imports torch and the app, which take seconds: the supervising process of several
workers never imports it, only the workers do.

On SIGTERM or SIGINT, readiness turns 503 at once while requests keep being served for
``ANOMALY_VAE_DRAIN_SECONDS`` (so load balancers stop sending traffic), then uvicorn stops accepting
connections and lets in-flight requests finish.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from types import FrameType

import torch
import uvicorn
from fastapi import FastAPI

from serving.app import create_app
from serving.model_store import LoadedModel
from serving.settings import Settings
from serving.workers import Readiness, announce

logger = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining before it stops; ``on_started`` runs once its socket accepts connections."""

    def __init__(
        self, config: uvicorn.Config, app: FastAPI, drain_seconds: float, on_started: Callable[[int], None]
    ) -> None:
        super().__init__(config)
        self.app, self.drain_seconds, self.on_started = app, drain_seconds, on_started
        self.draining = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # the listening socket accepts from here on
            self.on_started(self.servers[0].sockets[0].getsockname()[1])

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.draining:  # a second signal stops at once
            super().handle_exit(sig, frame)
            return
        self.draining = True
        self.app.state.draining = True
        threading.Timer(self.drain_seconds, super().handle_exit, args=(sig, frame)).start()


def serve(
    settings: Settings,
    host: str,
    port: int,
    sockets: list[socket.socket] | None = None,
    on_started: Callable[[int], None] | None = None,
    readiness: Readiness | None = None,
) -> None:
    """Serve on ``host:port``, or on ``sockets`` when given (shared with the other workers).

    ``on_started`` gets the port once the socket accepts connections; by default it logs that. The model
    loads in the background (the app's lifespan) while probes are answered; with ``readiness`` (several
    workers on one port) this worker marks itself loaded there and ``/readyz`` waits for every worker.
    """
    # One request is a few small matrix products: intra-op threads only contend with each other across
    # concurrent requests, so each request runs on one thread.
    torch.set_num_threads(1)
    app = create_app(settings)
    store = app.state.store
    store.freeze_on_first_load = True  # this process lives to serve the model
    if readiness is not None:
        app.state.readiness = readiness
        swapped = store.on_swap

        def mark_loaded(model: LoadedModel) -> None:
            if swapped is not None:
                swapped(model)
            readiness.mark_loaded()

        store.on_swap = mark_loaded
    # access_log: uvicorn would build each access line, which log_level "warning" then drops
    config = uvicorn.Config(
        app, host=host, port=port, timeout_graceful_shutdown=30, log_level="warning", access_log=False
    )
    DrainingServer(config, app, settings.drain_seconds, on_started or (lambda bound: announce(host, bound))).run(
        sockets=sockets
    )
