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
import pytest

from serving.workers import available_cpus, cpu_quota
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


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "200000 100000\n"}, 2.0),  # cgroup v2
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),  # v2, no limit
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3.0),  # cgroup v1
        ({"cpu,cpuacct/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1, no limit
        ({}, None),  # neither (not Linux, or no CPU controller)
        ({"cpu.max": "garbage\n"}, None),
    ],
)
def test_the_cpu_quota_is_read_from_cgroup_v2_or_v1(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cpu_quota(tmp_path) == quota


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000"}, 1),  # rounded down: a second worker would be throttled
        ({"cpu.max": "250000 100000"}, 2),
        ({"cpu.max": "50000 100000"}, 1),  # at least one
        ({"cpu/cpu.cfs_quota_us": "150000", "cpu/cpu.cfs_period_us": "100000"}, 1),
        ({"cpu/cpu.cfs_quota_us": "200000", "cpu/cpu.cfs_period_us": "100000"}, 2),
        ({"cpu.max": "max 100000"}, 8),  # no limit: every CPU of the affinity
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, 8),
        ({"cpu.max": "6400000 100000"}, 8),  # a quota above the affinity: the affinity
    ],
)
def test_workers_by_default_are_the_cpu_quota_rounded_down(tmp_path, monkeypatch, files, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))  # an 8-core node
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert available_cpus(tmp_path) == expected
