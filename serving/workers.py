"""Running the service: one worker (the app under uvicorn, draining on SIGTERM) or several sharing a port.

On SIGTERM or SIGINT, readiness turns 503 at once while requests keep being served for
``ANOMALY_VAE_DRAIN_SECONDS`` (so load balancers stop sending traffic), then uvicorn stops accepting
connections and lets in-flight requests finish.

Workers: one process serves on one core (the GIL), so by default there is one worker process per CPU
this service may use (its CPU affinity, capped by a container's CPU quota), all accepting on one
listening socket. Each worker holds its own copy of the model, follows the registry alias and keeps
its own drift windows; their metrics add up through prometheus-client's multiprocess mode
(``serving/metrics.py``). The supervising process forwards SIGTERM to every worker and, if a worker
dies on its own, stops the others and exits with an error, so that the orchestrator restarts the
service whole. (This module, not ``__main__``, holds the worker's entry point: spawned processes
import it by name.)
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

import torch
import uvicorn
from fastapi import FastAPI

from serving.app import create_app
from serving.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_seconds: float) -> None:
        super().__init__(config)
        self.app, self.drain_seconds = app, drain_seconds
        self.draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.draining:  # a second signal stops at once
            super().handle_exit(sig, frame)
            return
        self.draining = True
        self.app.state.draining = True
        threading.Timer(self.drain_seconds, super().handle_exit, args=(sig, frame)).start()


def serve(settings: Settings, host: str, port: int, sockets: list[socket.socket] | None = None) -> None:
    """One worker: the app under uvicorn, on ``sockets`` when given (shared with the other workers)."""
    # One request is a few small matrix products: intra-op threads only contend with each other across
    # concurrent requests, so each request runs on one thread.
    torch.set_num_threads(1)
    app = create_app(settings)
    if sockets is not None:  # a shared port: load first, or the kernel may hand requests to a worker still loading
        try:
            app.state.store.load_initial()
        except Exception as error:  # the app's own loop retries, answering 503 meanwhile
            logging.getLogger(__name__).error("model %s failed to load: %s", settings.model_uri, error)
    config = uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=30, log_level="warning")
    DrainingServer(config, app, settings.drain_seconds).run(sockets=sockets)


def supervise(settings: Settings, host: str, port: int, workers: int) -> None:
    """``workers`` processes serving one listening socket, their metrics in a shared folder."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:  # this service's own folder: emptied, stale files would be added up
        for stale in Path(given).glob("*.db"):
            stale.unlink()
    folder = given or tempfile.mkdtemp(prefix="anomaly-vae-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # prometheus-client reads it when a worker imports it
    listener = uvicorn.Config("", host=host, port=port).bind_socket()  # the socket as uvicorn binds it
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters: no torch state copied by fork
    arguments = (settings, host, port, listener, os.getpid())
    children = [spawn.Process(target=_worker, args=arguments) for _ in range(workers)]
    for child in children:
        child.start()
    stopping = False

    def stop(signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.is_alive():
                os.kill(child.pid, signal.SIGTERM)  # type: ignore[arg-type]

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = False
    try:
        while any(child.is_alive() for child in children):
            for child in children:
                child.join(timeout=0.2)
                if child.exitcode is not None and not stopping:  # died on its own
                    logging.error("worker %s exited with %s: stopping the service", child.pid, child.exitcode)
                    failed = True
                    stop()
    finally:
        listener.close()
        if not given:
            shutil.rmtree(folder, ignore_errors=True)
    if failed:
        raise SystemExit(1)


def _worker(settings: Settings, host: str, port: int, listener: socket.socket, supervisor: int) -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)  # a fresh interpreter
    threading.Thread(target=_stop_with, args=(supervisor,), daemon=True).start()
    serve(settings, host, port, [listener])


def _stop_with(supervisor: int) -> None:
    """A worker whose supervisor died (a SIGKILL gives it no chance to tell) drains and stops."""
    while os.getppid() == supervisor:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a container's limit)."""
    count = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count
