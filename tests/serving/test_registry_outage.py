"""The MLflow server dies while the service follows its alias: scoring and readiness carry on, and each
failed registry check is counted (not mistaken for a broken model version)."""

from __future__ import annotations

import json
import os
import re
import signal

import httpx
import mlflow
import pytest

from serving.settings import Settings
from tests.conftest import mlflow_server_process
from tests.serving.conftest import running
from tests.serving.test_reload import register_folder, wait_for


def test_killed_registry_keeps_the_model_serving_and_counts_failed_checks(
    model_folder, train_frame, tmp_path, monkeypatch
):
    rows = {"records": json.loads(train_frame.head(3).to_json(orient="records"))}
    monkeypatch.chdir(tmp_path)
    # what the docs advise for serving: fail a registry check fast instead of retrying for minutes
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with mlflow_server_process(tmp_path) as (url, process):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        # global URIs an earlier test may have set win over the variable: point them here, restored after
        monkeypatch.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", url)
        monkeypatch.setattr("mlflow.tracking._model_registry.utils._registry_uri", url)
        mlflow.MlflowClient().set_registered_model_alias("outage", "champion", register_folder(model_folder, "outage"))
        settings = Settings(model_uri="models:/outage@champion", reload_interval_seconds=0.2)
        with running(settings) as (client, app):
            assert client.post("/v1/score", json=rows).status_code == 200
            os.killpg(process.pid, signal.SIGKILL)  # the server and its workers, without warning
            process.wait(timeout=30)
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{url}/health", timeout=5)
            metrics = app.state.metrics
            assert wait_for(lambda: metrics.registry_errors._value.get() >= 3)
            for _ in range(20):  # scoring carries on while the registry is gone
                answer = client.post("/v1/score", json=rows)
                assert answer.status_code == 200 and answer.json()["model"] == {"name": "outage", "version": "1"}
            assert client.get("/readyz").status_code == 200
            text = client.get("/metrics").text
    assert "anomaly_vae_reload_failures_total 0.0" in text  # the served version was never blamed
    assert "anomaly_vae_reload_attempts_total 0.0" in text
    assert float(re.search(r"^anomaly_vae_registry_errors_total (\S+)$", text, re.M)[1]) >= 3
