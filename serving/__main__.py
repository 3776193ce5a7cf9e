"""`python -m serving --model URI [--host H] [--port P]` (what `anomaly-vae serve` runs)."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from serving.app import create_app
from serving.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="anomaly-vae serve", description="Serve a model over HTTP.")
    parser.add_argument("--model", help="model URI (default: ANOMALY_VAE_MODEL_URI)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings(model_uri=args.model) if args.model else Settings()  # type: ignore[call-arg]
    uvicorn.run(create_app(settings), host=args.host, port=args.port, workers=1, timeout_graceful_shutdown=30)


if __name__ == "__main__":
    main()
