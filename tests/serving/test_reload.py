"""Hot reload against a real MLflow registry: the alias moves, the service follows; a broken version is
refused and the old one keeps serving."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import mlflow
import pandas as pd

from pipelines.config import validate
from pipelines.pyfunc_model import DETECTOR_ARTIFACT
from pipelines.registry import configure_tracking
from pipelines.train import PYFUNC_CODE, train_and_register
from serving.settings import Settings
from tests.conftest import mixed_frame
from tests.serving.conftest import running

FAST = {"hidden": [16], "max_steps": 100, "eval_every": 50, "kl_warmup_steps": 20}


def wait_for(predicate, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def register_folder(detector_folder: Path, name: str) -> str:
    """Register a saved detector folder as a new version of ``name`` (no training); its version."""
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(PYFUNC_CODE),
        artifacts={DETECTOR_ARTIFACT: str(detector_folder)},
        registered_model_name=name,
        pip_requirements=[],
    )
    return str(info.registered_model_version)


def register_broken_version(fitted, name: str, folder: Path) -> str:
    fitted.save(folder / DETECTOR_ARTIFACT)
    (folder / DETECTOR_ARTIFACT / "weights.safetensors").write_bytes(b"not a tensor file")
    return register_folder(folder / DETECTOR_ARTIFACT, name)


def test_alias_moves_are_followed_and_broken_versions_refused(tmp_path, monkeypatch, fitted):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    temporary = tmp_path / "tmp"  # where the service downloads each version (and training writes its plots)
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    frame, _ = mixed_frame(800, seed=3)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    settings = validate({"detector": FAST})
    train_and_register(data, "svc", settings, alias="champion", progress=False)
    client_api = mlflow.MlflowClient()
    rows = {"records": json.loads(pd.read_csv(data).head(3).to_json(orient="records"))}

    with running(Settings(model_uri="models:/svc@champion", reload_interval_seconds=0.2)) as (client, app):
        assert client.get("/v1/model").json()["version"] == "1"
        train_and_register(data, "svc", validate({"detector": {**FAST, "random_state": 5}}), progress=False)
        client_api.set_registered_model_alias("svc", "champion", "2")
        assert wait_for(lambda: client.get("/v1/model").json()["version"] == "2")
        assert client.post("/v1/score", json=rows).json()["model"] == {"name": "svc", "version": "2"}

        configure_tracking()
        broken = register_broken_version(fitted, "svc", tmp_path / "broken")
        client_api.set_registered_model_alias("svc", "champion", broken)
        metrics = app.state.metrics
        assert wait_for(lambda: metrics.reload_failures._value.get() >= 1)
        time.sleep(1.0)  # several more checks
        assert client.get("/v1/model").json()["version"] == "2"
        assert client.post("/v1/score", json=rows).status_code == 200
        assert client.get("/readyz").status_code == 200
        text = client.get("/metrics").text
        assert "anomaly_vae_reload_failures_total 1.0" in text  # counted once, not retried every check
        assert "anomaly_vae_reload_attempts_total 2.0" in text
        assert 'anomaly_vae_model_info{name="svc",version="2"} 1.0' in text
        assert 'version="1"' not in text.split("anomaly_vae_model_info")[-1]
    assert not list(temporary.rglob(DETECTOR_ARTIFACT))  # every downloaded copy removed once loaded


def test_a_download_that_fails_once_is_retried_and_the_version_not_refused(tmp_path, monkeypatch, model_folder):
    """A network blip while fetching a new version: the download is tried again after a backoff and the
    version is served; nothing is counted against it. The one fake: the download call fails once."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    configure_tracking()
    detector = shutil.copytree(model_folder, tmp_path / DETECTOR_ARTIFACT)
    registry = mlflow.MlflowClient()
    registry.set_registered_model_alias("blip", "champion", register_folder(detector, "blip"))
    real_download, calls = mlflow.artifacts.download_artifacts, []

    def flaky_download(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise ConnectionResetError(104, "Connection reset by peer")
        return real_download(*args, **kwargs)

    with running(Settings(model_uri="models:/blip@champion", reload_interval_seconds=0.2)) as (client, _):
        monkeypatch.setattr(mlflow.artifacts, "download_artifacts", flaky_download)
        registry.set_registered_model_alias("blip", "champion", register_folder(detector, "blip"))
        assert wait_for(lambda: client.get("/v1/model").json()["version"] == "2")
        text = client.get("/metrics").text
    assert len(calls) == 2  # failed once, then fetched
    assert "anomaly_vae_reload_failures_total 0.0" in text
    assert "anomaly_vae_reload_attempts_total 1.0" in text
