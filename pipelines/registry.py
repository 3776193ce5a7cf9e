"""MLflow set-up and model resolution.

With no ``MLFLOW_TRACKING_URI`` set, an embedded store is used: ``mlflow.db`` (SQLite) and the artifact
folder ``mlartifacts/`` in the working directory, so nothing has to be started first.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow

from anomaly_vae import VAEDetector
from anomaly_vae.persistence import META_FILE
from pipelines.pyfunc_model import DETECTOR_ARTIFACT

EMBEDDED_DB, EMBEDDED_ARTIFACTS = "mlflow.db", "mlartifacts"
EXPERIMENT = "anomaly-vae"


def configure_tracking() -> str:
    """Point MLflow at ``MLFLOW_TRACKING_URI`` or at the embedded store; return the URI in use."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(EMBEDDED_DB).resolve()}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(name: str = EXPERIMENT) -> str:
    """The experiment's id; created with a local artifact folder when the store is embedded."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if mlflow.get_tracking_uri().startswith("sqlite:"):
        location = Path(EMBEDDED_ARTIFACTS).resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def load_detector(uri: str, *, device: str = "cpu") -> tuple[VAEDetector, dict[str, str]]:
    """A detector from a local model folder or an MLflow model URI, and its name and version.

    MLflow URIs: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/model``.
    """
    local = Path(uri)
    if (local / META_FILE).is_file():
        return VAEDetector.load(local, device=device), {"name": local.name, "version": "local"}
    if not uri.startswith(("models:/", "runs:/")):
        raise ValueError(f"model {uri!r} is neither a model folder nor an MLflow models:/ or runs:/ URI")
    configure_tracking()
    root = Path(mlflow.artifacts.download_artifacts(uri))
    folder = root / "artifacts" / DETECTOR_ARTIFACT
    if not (folder / META_FILE).is_file():
        raise ValueError(f"{uri} is not an anomaly-vae model (no {DETECTOR_ARTIFACT} artifact)")
    return VAEDetector.load(folder, device=device), _model_identity(uri)


def _model_identity(uri: str) -> dict[str, str]:
    if not uri.startswith("models:/"):
        return {"name": uri, "version": "run"}
    rest = uri.removeprefix("models:/")
    client = mlflow.MlflowClient()
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return {"name": name, "version": str(client.get_model_version_by_alias(name, alias).version)}
    name, _, version = rest.partition("/")
    return {"name": name, "version": version}
