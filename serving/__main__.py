"""`python -m serving --model URI [--host H] [--port P]` (what `anomaly-vae serve` runs).

On SIGTERM or SIGINT, readiness turns 503 at once while requests keep being served for
``ANOMALY_VAE_DRAIN_SECONDS`` (so load balancers stop sending traffic), then uvicorn stops accepting
connections and lets in-flight requests finish.
"""

from __future__ import annotations

import argparse
import logging
import threading
from types import FrameType

import torch
import uvicorn
from fastapi import FastAPI

from serving.app import create_app
from serving.settings import Settings


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="anomaly-vae serve", description="Serve a model over HTTP.")
    parser.add_argument("--model", help="model URI (default: ANOMALY_VAE_MODEL_URI)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings(model_uri=args.model) if args.model else Settings()  # type: ignore[call-arg]
    # One request is a few small matrix products: intra-op threads only contend with each other across
    # concurrent requests, so each request runs on one thread.
    torch.set_num_threads(1)
    app = create_app(settings)
    config = uvicorn.Config(app, host=args.host, port=args.port, timeout_graceful_shutdown=30, log_level="warning")
    DrainingServer(config, app, settings.drain_seconds).run()


if __name__ == "__main__":
    main()
