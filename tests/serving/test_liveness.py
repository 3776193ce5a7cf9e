"""Liveness under load: while 4 MB scoring requests are parsed, scored and answered, the event loop stays
free, so ``/healthz`` (the liveness probe: 3 s timeout, 3 failures restart the pod) keeps answering. An
overloaded pod that failed liveness would be restarted, and the restart would make the overload worse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import httpx
import pytest
from starlette.responses import JSONResponse

from serving.offload import SLICE, json_answer
from tests.serving.conftest import free_port, wait_until_ready

BODY_BYTES = 3_900_000  # just under the default 4 MB body limit
PROBE_BOUND_SECONDS = 0.5  # measured: 0.09 s; 1.02 s when the work ran on the event loop


def large_body(train_frame) -> bytes:
    records = json.loads(train_frame.to_json(orient="records"))
    n = BODY_BYTES // (len(json.dumps(records[0])) + 1)
    return json.dumps({"records": (records * (n // len(records) + 1))[:n]}).encode()


def test_healthz_answers_while_large_requests_are_scored(model_folder, train_frame):
    body, port = large_body(train_frame), free_port()
    env = {**os.environ, "ANOMALY_VAE_MAX_RECORDS": "100000", "ANOMALY_VAE_DRIFT_WINDOW": "0"}
    command = [sys.executable, "-m", "serving", "--model", str(model_folder), "--workers", "1", "--port", str(port)]
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            wait_until_ready(client, alive=lambda: process.poll() is None)
            statuses: list[int] = []
            sent = time.monotonic()

            def send() -> None:
                response = httpx.post(f"{url}/v1/score", content=body, timeout=120)
                statuses.append(response.status_code)

            senders = [threading.Thread(target=send) for _ in range(4)]
            for sender in senders:
                sender.start()
            probes: list[float] = []
            while any(sender.is_alive() for sender in senders):
                start = time.monotonic()
                assert client.get("/healthz", timeout=10).status_code == 200
                probes.append(time.monotonic() - start)
                time.sleep(0.05)
            busy = time.monotonic() - sent
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(f"\n4 x {len(body):,} bytes scored in {busy:.1f} s; {len(probes)} probes, slowest {max(probes):.3f} s")
    assert statuses == [200] * 4
    assert len(probes) >= 5  # the probes ran while the requests were being served
    assert max(probes) < PROBE_BOUND_SECONDS


@pytest.mark.parametrize("n", [0, 1, SLICE - 1, SLICE, SLICE + 1, 3 * SLICE + 7])
def test_an_answer_encoded_in_slices_has_the_bytes_of_one_encoding(n):
    rows = [{"score": 0.1 * i, "is_outlier": i % 2 == 0, "note": "\u00e9", "missing": None} for i in range(n)]
    headers = {"anomaly-vae-fpr": "0.01"}
    for content in ({"model": {"name": "m", "version": "1"}, "fpr": 0.01, "results": rows}, {"predictions": rows}):
        sliced, whole = json_answer(content, headers), JSONResponse(content, headers=headers)
        assert sliced.body == whole.body
        assert sliced.headers.items() == whole.headers.items()
    with pytest.raises(ValueError):  # non-finite numbers are refused as JSONResponse refuses them
        json_answer({"results": [{"score": float("nan")}]})
