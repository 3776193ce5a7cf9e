"""`python -m serving --model URI [--host H] [--port P] [--workers N]` (what `anomaly-vae serve` runs);
how workers, draining and shutdown behave: ``serving/workers.py`` and ``serving/server.py``."""

from __future__ import annotations

import argparse
import logging
import os

from pydantic import ValidationError

from serving.settings import Settings, describe_errors
from serving.workers import LOG_FORMAT, available_cpus, supervise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anomaly-vae serve", description="Serve a model over HTTP.")
    parser.add_argument(
        "--model",
        help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/... or a model folder (default: ANOMALY_VAE_MODEL_URI)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    parser.add_argument(
        "--workers",
        type=int,
        help="worker processes sharing the port (default: ANOMALY_VAE_WORKERS, else 0 = one per CPU available)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    if args.model is None and "ANOMALY_VAE_MODEL_URI" not in os.environ:
        parser.error("no model: give --model or set ANOMALY_VAE_MODEL_URI")
    try:
        settings = Settings(model_uri=args.model) if args.model else Settings()  # type: ignore[call-arg]
    except ValidationError as error:
        parser.error(describe_errors(error))
    workers = (settings.workers if args.workers is None else args.workers) or available_cpus()
    if workers == 1:
        from serving.server import serve  # torch and the app: seconds to import, so only where they run

        serve(settings, args.host, args.port)
    else:
        supervise(settings, args.host, args.port, workers)


if __name__ == "__main__":
    main()
