"""The real service (two workers) on 127.0.0.1 after realistic traffic, for the checks of deploy/ against what
it exports."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.metrics import Metrics
from tests.conftest import mixed_frame
from tests.serving.conftest import free_port, model_folder, wait_until_ready  # noqa: F401  (model_folder: a fixture)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


class Traffic:
    """Scoring traffic against a running service, with the counts the service should report."""

    def __init__(self, client: httpx.Client) -> None:
        self.client, self.port = client, int(str(client.base_url).rsplit(":", 1)[1])
        frame, _ = mixed_frame(150, seed=11, n_anomalies=50)
        self.records = json.loads(frame.to_json(orient="records"))
        self.score_requests = self.scored = self.outliers = 0

    def send(self) -> None:
        """Typical and anomalous records through both APIs, and one request with a missing column."""
        for start in range(0, len(self.records), 25):
            answer = self.client.post("/v1/score", json={"records": self.records[start : start + 25]})
            assert answer.status_code == 200, answer.text
            self.outliers += sum(result["is_outlier"] for result in answer.json()["results"])
        invocation = self.client.post("/invocations", json={"dataframe_records": self.records[:10]})
        assert invocation.status_code == 200, invocation.text
        self.outliers += sum(result["is_outlier"] for result in invocation.json()["predictions"])
        assert self.client.post("/v1/score", json={"records": [{"amount": 1.0}]}).status_code == 422
        self.score_requests += len(range(0, len(self.records), 25)) + 1
        self.scored += len(self.records) + 10


def exported(client: httpx.Client) -> dict[str, list[dict[str, str]]]:
    """Every sample name on /metrics (``_bucket``, ``_count``, ... included) with the label sets it has."""
    names: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            names.setdefault(sample.name, []).append(sample.labels)
    return names


def declared() -> dict[str, set[str]]:
    """Every sample name the service declares, with its label names: a labelled metric is on /metrics only
    once a first series exists (``anomaly_vae_requests_shed_total`` after a first shed request)."""
    registry = Metrics().registry
    collectors = registry._names_to_collectors  # prometheus-client's own index of sample names
    return {name: set(getattr(collector, "_labelnames", ())) for name, collector in collectors.items()}


@pytest.fixture(scope="session")
def traffic(model_folder, tmp_path_factory) -> Iterator[Traffic]:  # noqa: F811
    """The service as deployed, `anomaly-vae serve` with two worker processes (multiprocess metrics), on
    127.0.0.1 after one round of traffic. Each request opens its own connection, so that both workers
    score (they take turns accepting) and every scrape adds up both."""
    port = free_port()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("metrics")),
        "ANOMALY_VAE_RELOAD_INTERVAL_SECONDS": "0",
        "ANOMALY_VAE_DRIFT_WINDOW": "40",
        "ANOMALY_VAE_DRIFT_STEP": "20",
        "ANOMALY_VAE_DRAIN_SECONDS": "0",
    }
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--model", str(model_folder), "--workers", "2"]
    process = subprocess.Popen([*command, "--port", str(port)], env=env)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"connection": "close"})
    try:
        wait_until_ready(client, alive=lambda: process.poll() is None, seconds=120)
        traffic = Traffic(client)
        traffic.send()
        deadline = time.monotonic() + 30  # drift windows are computed in a background thread
        while not re.search(r"^anomaly_vae_drift_windows_total [1-9]", client.get("/metrics").text, flags=re.M):
            assert time.monotonic() < deadline, "no drift window was computed"
            time.sleep(0.1)
        yield traffic
    finally:
        client.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
