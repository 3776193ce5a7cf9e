"""MLflow set-up for the jobs, and loading the detector a model URI names.

With no ``MLFLOW_TRACKING_URI`` set, an embedded store is used: ``mlflow.db`` (SQLite) and the artifact
folder ``mlartifacts/`` in the working directory, so nothing has to be started first. Model URIs are
resolved by ``anomaly_vae.registry``, which follows the same rule.

mlflow is imported inside the functions that talk to a store: the import alone takes over a second, and
a job that scores with a local model folder never needs it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anomaly_vae
from anomaly_vae.base import BaseDetector
from anomaly_vae.registry import resolve, tracking_uri

EMBEDDED_ARTIFACTS = "mlartifacts"  # the embedded store's artifact folder, in the working directory
EXPERIMENT = "anomaly-vae"


def configure_tracking() -> str:
    """Point MLflow at ``MLFLOW_TRACKING_URI`` or at the embedded store; return the URI in use."""
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(name: str = EXPERIMENT) -> str:
    """The experiment's id; created with a local artifact folder when the store is embedded."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if mlflow.get_tracking_uri().startswith("sqlite:"):
        location = Path(EMBEDDED_ARTIFACTS).resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def load_detector(uri: str, *, device: str = "cpu") -> tuple[BaseDetector, dict[str, str]]:
    """A detector of either kind (``detector.kind``: "tabular" or "image") from a local model folder or an
    MLflow model URI, and the name and version loaded.

    The URI is resolved by ``anomaly_vae.registry.resolve``: an alias is pinned to one version, and a
    model the registry lacks is a one-line ``ValueError`` saying what it holds.
    """
    with tempfile.TemporaryDirectory(prefix="anomaly-vae-model-") as folder:  # removed once loaded
        model = resolve(uri, Path(folder))
        return anomaly_vae.load(model.folder, device=device), {"name": model.name, "version": model.version}
