"""Resolving a model URI to one pinned model: its name, version and local folder.

URIs: a model folder, ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``runs:/RUN_ID/PATH``. The
MLflow store is ``MLFLOW_TRACKING_URI``, or the embedded SQLite store ``mlflow.db`` in the working
directory (where ``anomaly-vae train`` creates it); it serves as the model registry too.

This is the only module of the library that uses mlflow, and it imports it inside its functions: the
import alone takes over a second, and a model folder never needs it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from anomaly_vae.persistence import META_FILE

EMBEDDED_DB = "mlflow.db"  # the embedded store's SQLite file, in the working directory
DETECTOR_ARTIFACT = "detector"  # the pyfunc model's artifact holding the detector's folder
SHOWN_NAMES = 10  # registered model names listed when a name is not found


class NotAModelError(ValueError):
    """What the URI names was fetched, and is not an anomaly-vae model: no retry will change that."""


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    version: str  # the registry version; the run id for runs:/ URIs; "local" for a folder
    folder: Path  # the detector's saved folder


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, or the embedded SQLite store in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(EMBEDDED_DB).resolve()}"


def resolve(uri: str, into: Path | None = None) -> ResolvedModel:
    """The one model ``uri`` names now, downloaded when it is in MLflow (into the folder ``into``, else a
    new temporary folder that the caller owns).

    An alias is looked up once and that version is downloaded, so the version reported is the one in
    the folder even when the alias moves meanwhile. A missing model is a ``ValueError`` of one line
    naming the store and what it holds.
    """
    local = Path(uri)
    if (local / META_FILE).is_file():
        return ResolvedModel(local.name, "local", local)
    if not uri.startswith(("models:/", "runs:/")):
        raise ValueError(f"model {uri!r} is neither a model folder nor an MLflow models:/ or runs:/ URI")
    store = _existing_store(uri)
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        if uri.startswith("runs:/"):
            name, version, pinned = uri, uri.removeprefix("runs:/").split("/")[0], uri
        else:
            name, separator, label = _parts(uri)
            version = _alias_version(store, name, label) if separator == "@" else label
            pinned = f"models:/{name}/{version}"
        destination = None if into is None else str(into)
        root = Path(
            mlflow.artifacts.download_artifacts(pinned, tracking_uri=store, registry_uri=store, dst_path=destination)
        )
    except MlflowException as error:
        raise ValueError(_not_found(uri, store, error)) from None
    folder = root / "artifacts" / DETECTOR_ARTIFACT
    if not (folder / META_FILE).is_file():
        raise NotAModelError(f"{uri} is not an anomaly-vae model (no {DETECTOR_ARTIFACT} artifact)")
    return ResolvedModel(name, version, folder)


def alias_version(uri: str) -> str | None:
    """The version ``models:/NAME@ALIAS`` points at now; None for URIs that name a fixed model.

    Errors (an unreachable registry, a missing alias) are raised as they come, for the caller to count.
    """
    if not (uri.startswith("models:/") and "@" in uri):
        return None
    name, _, alias = _parts(uri)
    return _alias_version(_existing_store(uri), name, alias)


def _alias_version(store: str, name: str, alias: str) -> str:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    return str(client.get_model_version_by_alias(name, alias).version)


def _existing_store(uri: str) -> str:
    """The tracking URI; a ``ValueError`` when it is an SQLite file that does not exist.

    MLflow would create the database (seconds of schema set-up, a file left behind) only to find nothing.
    """
    store = tracking_uri()
    if store.startswith("sqlite:///") and not Path(store.removeprefix("sqlite:///")).exists():
        raise ValueError(
            f"no model {uri}: the MLflow store {store} does not exist (set MLFLOW_TRACKING_URI, or run where "
            f"`anomaly-vae train` created {EMBEDDED_DB})"
        )
    return store


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
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
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
