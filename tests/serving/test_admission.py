"""Admission control: past ANOMALY_VAE_MAX_IN_FLIGHT scoring requests, 503 + Retry-After at once."""

from __future__ import annotations

import json
import threading

import httpx

from serving.settings import Settings
from tests.serving.conftest import running


def test_excess_requests_are_shed_with_retry_after_and_the_server_recovers(model_folder, train_frame):
    big = json.dumps({"records": json.loads(train_frame.head(2000).to_json(orient="records"))}).encode()
    settings = Settings(model_uri=str(model_folder), max_in_flight=2, max_records=2000, max_body_bytes=10_000_000)
    with running(settings) as (client, _):
        base = str(client.base_url)
        start = threading.Barrier(12)
        answers: list[httpx.Response] = []

        def send() -> None:
            with httpx.Client(base_url=base, timeout=60) as own:
                start.wait()
                answers.append(own.post("/v1/score", content=big, headers={"content-type": "application/json"}))

        threads = [threading.Thread(target=send) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        codes = sorted(r.status_code for r in answers)
        assert len(codes) == 12 and set(codes) == {200, 503}, codes
        shed = [r for r in answers if r.status_code == 503]
        assert all(r.headers["retry-after"] == "1" and r.json()["detail"][0]["type"] == "overloaded" for r in shed)
        assert client.get("/readyz").status_code == 200 and client.get("/healthz").status_code == 200
        one = {"records": json.loads(train_frame.head(1).to_json(orient="records"))}
        assert client.post("/v1/score", json=one).status_code == 200  # recovered
        text = client.get("/metrics").text
    assert f'anomaly_vae_requests_shed_total{{endpoint="/v1/score"}} {float(len(shed))}' in text
    assert "anomaly_vae_requests_in_flight 0.0" in text
    # shed requests reach the request metrics too, so that the error and latency alerts see overload
    assert f'anomaly_vae_requests_total{{endpoint="/v1/score",status="503"}} {float(len(shed))}' in text
    admitted = len(answers) - len(shed) + 1  # and the recovery request
    assert f'anomaly_vae_requests_total{{endpoint="/v1/score",status="200"}} {float(admitted)}' in text
    count = f'anomaly_vae_request_duration_seconds_count{{endpoint="/v1/score"}} {float(len(answers) + 1)}'
    assert count in text


def test_the_in_flight_gauge_counts_in_multiprocess_mode(tmp_path, monkeypatch):
    """Workers share metrics through files (PROMETHEUS_MULTIPROC_DIR), where a gauge's set_function is
    ignored: the gauge must be moved by each request."""
    import asyncio

    from serving.admission import AdmissionControl
    from serving.metrics import Metrics

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics = Metrics()
    seen: list[float] = []

    async def app(scope, receive, send) -> None:
        seen.append(metrics.in_flight._value.get())

    control = AdmissionControl(app, metrics, max_in_flight=4)
    for path in ("/v1/score", "/healthz"):
        asyncio.run(control({"type": "http", "path": path}, None, None))
    assert seen == [1.0, 0.0]  # counted while scoring, not for a probe
    assert metrics.in_flight._value.get() == 0.0
