"""Promote a registered model version from one alias to another: `python promote.py --model-name NAME`.

Moves NAME@champion (``--to``) to the version NAME@challenger (``--from``) points at, and NAME@previous
to the version @champion pointed at until then, after logging both versions' evaluation metrics. Roll
back with ``--from previous``: it swaps @champion and @previous back. The tracking server is
MLFLOW_TRACKING_URI's. The image holds this file as /opt/anomaly-vae/promote.py
(deploy/k8s/jobs/promote.yaml and the compose service ``promote`` run it).
"""

from __future__ import annotations

import argparse
import logging

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

logger = logging.getLogger("promote")
PREVIOUS = "previous"


def describe(client: MlflowClient, name: str, alias: str, version: ModelVersion) -> str:
    metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
    shown = ", ".join(f"{key}={value:.4g}" for key, value in sorted(metrics.items())) or "no metrics"
    return f"{name}@{alias} = version {version.version}: {shown}"


def promote(client: MlflowClient, name: str, source: str, target: str) -> str:
    """Point ``target`` at ``source``'s version (``previous`` at ``target``'s old one); the version.
    A ``ValueError`` when ``source`` names no version."""
    try:
        new = client.get_model_version_by_alias(name, source)
    except MlflowException as error:
        raise ValueError(f"nothing to promote: {name}@{source}: {str(error).splitlines()[0]}") from None
    try:
        old: ModelVersion | None = client.get_model_version_by_alias(name, target)
    except MlflowException:  # no such alias yet: the first promotion
        old = None
    logger.info(describe(client, name, source, new))
    if old is not None:
        logger.info(describe(client, name, target, old))
        if old.version == new.version:
            logger.info("%s@%s is version %s already: nothing to do", name, target, new.version)
            return str(new.version)
        client.set_registered_model_alias(name, PREVIOUS, old.version)
    client.set_registered_model_alias(name, target, new.version)
    logger.info("%s@%s -> version %s", name, target, new.version)
    return str(new.version)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model-name", required=True, help="registered model name")
    parser.add_argument("--from", dest="source", default="challenger", help="alias to promote (%(default)s)")
    parser.add_argument("--to", dest="target", default="champion", help="alias to move (%(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        promote(MlflowClient(), args.model_name, args.source, args.target)
    except ValueError as error:
        parser.exit(1, f"{error}\n")


if __name__ == "__main__":
    main()
