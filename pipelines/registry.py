"""MLflow set-up and model resolution.

With no ``MLFLOW_TRACKING_URI`` set, an embedded store is used: ``mlflow.db`` (SQLite) and the artifact
folder ``mlartifacts/`` in the working directory, so nothing has to be started first.

mlflow is imported inside the functions that talk to a store: the import alone takes over a second, and
a job that scores with a local model folder never needs it.
"""

from __future__ import annotations

import os
from pathlib import Path

from anomaly_vae import VAEDetector
from anomaly_vae.persistence import META_FILE

EMBEDDED_DB, EMBEDDED_ARTIFACTS = "mlflow.db", "mlartifacts"
EXPERIMENT = "anomaly-vae"
DETECTOR_ARTIFACT = "detector"  # the pyfunc model's artifact holding the detector's folder
SHOWN_NAMES = 10  # registered model names listed when a name is not found


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, or the embedded SQLite store in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(EMBEDDED_DB).resolve()}"


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


def load_detector(uri: str, *, device: str = "cpu") -> tuple[VAEDetector, dict[str, str]]:
    """A detector from a local model folder or an MLflow model URI, and the name and version loaded.

    MLflow URIs: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/model``. An alias is
    resolved once and that version is downloaded, so the version reported is the one loaded even when
    the alias moves meanwhile. A missing model is a ``ValueError`` naming the registry and what it holds.
    """
    local = Path(uri)
    if (local / META_FILE).is_file():
        return VAEDetector.load(local, device=device), {"name": local.name, "version": "local"}
    if not uri.startswith(("models:/", "runs:/")):
        raise ValueError(f"model {uri!r} is neither a model folder nor an MLflow models:/ or runs:/ URI")
    store = tracking_uri()
    if store.startswith("sqlite:///") and not Path(store.removeprefix("sqlite:///")).exists():
        # MLflow would create the database (seconds of schema set-up, a file left behind) only to find nothing
        raise ValueError(
            f"no model {uri}: the MLflow store {store} does not exist (set MLFLOW_TRACKING_URI, or run where "
            f"`anomaly-vae train` created {EMBEDDED_DB})"
        )
    import mlflow
    from mlflow.exceptions import MlflowException

    configure_tracking()
    try:
        pinned, identity = _pin(uri)
        root = Path(mlflow.artifacts.download_artifacts(pinned))
    except MlflowException as error:
        raise ValueError(_not_found(uri, store, error)) from None
    folder = root / "artifacts" / DETECTOR_ARTIFACT
    if not (folder / META_FILE).is_file():
        raise ValueError(f"{uri} is not an anomaly-vae model (no {DETECTOR_ARTIFACT} artifact)")
    return VAEDetector.load(folder, device=device), identity


def _pin(uri: str) -> tuple[str, dict[str, str]]:
    """The URI of one fixed model (``models:/NAME/VERSION`` for an alias) and its name and version."""
    import mlflow

    if uri.startswith("runs:/"):
        return uri, {"name": uri, "version": "run"}
    name, separator, label = _parts(uri)
    if separator == "@":
        version = str(mlflow.MlflowClient().get_model_version_by_alias(name, label).version)
        return f"models:/{name}/{version}", {"name": name, "version": version}
    return uri, {"name": name, "version": label}


def _parts(uri: str) -> tuple[str, str, str]:
    """``models:/NAME@ALIAS`` -> (NAME, "@", ALIAS); ``models:/NAME/VERSION`` -> (NAME, "/", VERSION)."""
    rest = uri.removeprefix("models:/")
    return rest.partition("@") if "@" in rest else rest.partition("/")


def _not_found(uri: str, store: str, error: Exception) -> str:
    """One line: which registry was asked for ``uri``, what it lacks and what it holds."""
    import mlflow

    problem = f"{uri}: {str(error).splitlines()[0]} (MLflow store {store})"
    if not uri.startswith("models:/"):
        return problem
    name, separator, label = _parts(uri)
    client = mlflow.MlflowClient()
    names = [model.name for model in client.search_registered_models(max_results=100)]
    if name not in names:
        shown = ", ".join(names[:SHOWN_NAMES]) + (", ..." if len(names) > SHOWN_NAMES else "")
        holds = f"its models: {shown}" if names else "it has no registered models"
        return f"no model named {name!r} in the registry at {store}; {holds}"
    aliases = client.get_registered_model(name).aliases
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    if separator == "@" and label not in aliases:
        lacks = f"alias {label!r}"
    elif separator == "/" and label not in map(str, versions):
        lacks = f"version {label}"
    else:  # the model is there: something else failed
        return problem
    named = ", ".join(f"@{alias} = {version}" for alias, version in sorted(aliases.items())) or "none"
    return f"model {name!r} in the registry at {store} has no {lacks}; its versions: {versions}, aliases: {named}"
