"""Several worker processes behind one port: every worker serves, metrics add up whichever worker
answers the scrape, and SIGTERM stops them all."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from serving.workers import available_cpus
from tests.serving.conftest import free_port, wait_until_ready


def test_two_workers_share_the_port_and_their_metrics(model_folder, train_frame, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"stale")  # left by an earlier run: must not be added up
    port = free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--model", str(model_folder), "--workers", "2"]
    process = subprocess.Popen([*command, "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    body = {"records": json.loads(train_frame.head(2).to_json(orient="records"))}
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            wait_until_ready(client, alive=lambda: process.poll() is None)

        def score(_: int) -> int:  # a fresh connection each: the workers take turns accepting
            return httpx.post(f"{url}/v1/score", json=body, headers={"connection": "close"}, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=6) as pool:
            assert list(pool.map(score, range(60))) == [200] * 60
        scrapes = [httpx.get(f"{url}/metrics", headers={"connection": "close"}).text for _ in range(10)]
        workers = {re.fullmatch(r"counter_(\d+)\.db", path.name)[1] for path in folder.glob("counter_*.db")}  # type: ignore[index]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert len(workers) == 2  # both workers counted requests
    for text in scrapes:  # the same totals from whichever worker answered
        assert "anomaly_vae_records_scored_total 120.0" in text
        assert 'anomaly_vae_requests_total{endpoint="/v1/score",status="200"} 60.0' in text
        assert 'anomaly_vae_model_info{name="model",version="local"} 1.0' in text
        assert "anomaly_vae_requests_in_flight 0.0" in text


def test_workers_stop_when_the_supervisor_is_killed(model_folder):
    port = free_port()
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--model", str(model_folder), "--workers", "2"]
    process = subprocess.Popen([*command, "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            wait_until_ready(client, alive=lambda: process.poll() is None)
    finally:
        process.kill()  # SIGKILL: the supervisor cannot tell its workers
        process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while True:  # the orphaned workers notice, drain and stop: the port closes
        try:
            httpx.get(f"{url}/healthz", timeout=2)
        except httpx.TransportError:
            break
        assert time.monotonic() < deadline, "workers outlived their supervisor"
        time.sleep(0.5)


def test_available_cpus_is_at_least_one_and_at_most_the_affinity():
    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))
