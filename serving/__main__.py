"""`python -m serving --model URI [--host H] [--port P] [--workers N]` (what `anomaly-vae serve` runs);
how workers, draining and shutdown behave: ``serving/workers.py``."""

from __future__ import annotations

import argparse
import logging

from serving.settings import Settings
from serving.workers import LOG_FORMAT, available_cpus, serve, supervise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="anomaly-vae serve", description="Serve a model over HTTP.")
    parser.add_argument("--model", help="model URI (default: ANOMALY_VAE_MODEL_URI)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, help="worker processes (default: ANOMALY_VAE_WORKERS; 0 = one per CPU)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    settings = Settings(model_uri=args.model) if args.model else Settings()  # type: ignore[call-arg]
    workers = (settings.workers if args.workers is None else args.workers) or available_cpus()
    if workers == 1:
        serve(settings, args.host, args.port)
    else:
        supervise(settings, args.host, args.port, workers)


if __name__ == "__main__":
    main()
