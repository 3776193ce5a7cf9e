"""The MLflow server dies while the service follows its alias: scoring and readiness carry on, and each
failed registry check is counted (not mistaken for a broken model version). The service starts while
the registry is down: it is alive at once, unready until the registry comes up, then ready.

Everything MLflow runs in processes of its own (the server, the registration, the service), given both
MLflow URIs explicitly: earlier tests leave MLflow's process-wide URIs set, and ``MLFLOW_REGISTRY_URI`` in
the environment that subprocesses inherit."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pipelines.pyfunc_model import DETECTOR_ARTIFACT
from tests.conftest import mlflow_server_process
from tests.serving.conftest import free_port, wait_until_ready

ROOT = Path(__file__).parents[2]
REGISTER = """
import sys
from pathlib import Path
import mlflow
from tests.serving.test_reload import register_folder
version = register_folder(Path(sys.argv[1]), "outage")
mlflow.MlflowClient().set_registered_model_alias("outage", "champion", version)
"""


def metric(text: str, name: str) -> float:
    return float(re.search(rf"^{name} (\S+)$", text, re.M)[1])  # type: ignore[index]


def test_killed_registry_keeps_the_model_serving_and_counts_failed_checks(model_folder, train_frame, tmp_path):
    rows = {"records": json.loads(train_frame.head(3).to_json(orient="records"))}
    with mlflow_server_process(tmp_path) as (url, registry):
        detector = shutil.copytree(model_folder, tmp_path / DETECTOR_ARTIFACT)  # MLflow keeps the folder's name
        tracking = {**os.environ, "MLFLOW_TRACKING_URI": url, "MLFLOW_REGISTRY_URI": url}  # over what others set
        register = [sys.executable, "-c", REGISTER, str(detector)]  # with MLflow's default retries
        subprocess.run(register, env={**tracking, "PYTHONPATH": str(ROOT)}, cwd=tmp_path, check=True)
        env = {
            **tracking,
            # what the docs advise for serving: fail a registry check fast instead of retrying for minutes
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
            "ANOMALY_VAE_RELOAD_INTERVAL_SECONDS": "0.2",
        }
        port = free_port()
        command = [sys.executable, "-m", "pipelines.cli", "serve", "--model", "models:/outage@champion"]
        service = subprocess.Popen([*command, "--port", str(port)], env=env, cwd=tmp_path)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        try:
            wait_until_ready(client, alive=lambda: service.poll() is None)
            assert client.post("/v1/score", json=rows).status_code == 200
            os.killpg(registry.pid, signal.SIGKILL)  # the server and its workers, without warning
            registry.wait(timeout=30)
            deadline = time.monotonic() + 60
            while metric(client.get("/metrics").text, "anomaly_vae_registry_errors_total") < 3:
                assert time.monotonic() < deadline, "failed registry checks were not counted"
                time.sleep(0.2)
            for _ in range(20):  # scoring carries on while the registry is gone
                answer = client.post("/v1/score", json=rows)
                assert answer.status_code == 200 and answer.json()["model"] == {"name": "outage", "version": "1"}
            assert client.get("/readyz").status_code == 200
            text = client.get("/metrics").text
        finally:
            client.close()
            service.terminate()
            service.wait(timeout=30)
    assert metric(text, "anomaly_vae_reload_failures_total") == 0  # the served version was never blamed
    assert metric(text, "anomaly_vae_reload_attempts_total") == 0


def test_the_service_starts_while_the_registry_is_down_and_becomes_ready_when_it_returns(
    model_folder, train_frame, tmp_path
):
    """Two workers (the shipped configuration) against a closed loopback port: /healthz answers at once,
    /readyz stays 503; then an MLflow server comes up on that port with the model, and the service gets
    ready and scores, from either worker. A pod in a registry outage is unready, not crash-looping."""
    registry_port, port = free_port(), free_port()
    url = f"http://127.0.0.1:{registry_port}"
    tracking = {**os.environ, "MLFLOW_TRACKING_URI": url, "MLFLOW_REGISTRY_URI": url}
    env = {**tracking, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--model", "models:/outage@champion", "--workers", "2"]
    service = subprocess.Popen([*command, "--port", str(port)], env=env, cwd=tmp_path)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    rows = {"records": json.loads(train_frame.head(3).to_json(orient="records"))}
    try:
        deadline = time.monotonic() + 60
        while True:  # alive as soon as a worker has imported the app, with no registry to load from
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert service.poll() is None and time.monotonic() < deadline, "/healthz never answered"
            time.sleep(0.2)
        for _ in range(10):  # both workers keep answering, unready, while their loads fail
            assert client.get("/healthz", headers={"connection": "close"}).status_code == 200
            assert client.get("/readyz", headers={"connection": "close"}).status_code == 503
            time.sleep(0.3)
        with mlflow_server_process(tmp_path, registry_port) as _:
            detector = shutil.copytree(model_folder, tmp_path / DETECTOR_ARTIFACT)
            register = [sys.executable, "-c", REGISTER, str(detector)]
            subprocess.run(register, env={**tracking, "PYTHONPATH": str(ROOT)}, cwd=tmp_path, check=True)
            wait_until_ready(client, alive=lambda: service.poll() is None, seconds=60)
            for _ in range(6):  # every worker has the model: /readyz waits for all of them
                answer = client.post("/v1/score", json=rows, headers={"connection": "close"})
                assert answer.status_code == 200 and answer.json()["model"] == {"name": "outage", "version": "1"}
    finally:
        client.close()
        service.terminate()
        service.wait(timeout=30)
