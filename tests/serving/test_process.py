"""The service as users run it: `anomaly-vae serve` in a process of its own, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx

from tests.serving.conftest import free_port, wait_until_ready


def test_sigterm_turns_readiness_off_first_and_finishes_in_flight_requests(model_folder, train_frame):
    port = free_port()
    env = {**os.environ, "ANOMALY_VAE_DRAIN_SECONDS": "1.5", "ANOMALY_VAE_MAX_RECORDS": "5000"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "serve", "--model", str(model_folder), "--port", str(port)], env=env
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        wait_until_ready(client, alive=lambda: process.poll() is None)
        big = {"records": json.loads(train_frame.head(3000).to_json(orient="records"))}
        result: dict[str, int] = {}
        sender = threading.Thread(target=lambda: result.update(code=client.post("/v1/score", json=big).status_code))
        sender.start()
        time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert client.get("/readyz").status_code == 503  # draining: no new traffic please
        assert client.get("/healthz").status_code == 200  # but alive and still serving
        sender.join(timeout=60)
        assert result["code"] == 200  # the in-flight request completed
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop
    finally:
        client.close()
        if process.poll() is None:
            process.kill()
