"""Long reliability runs (`make reliability`): a tiny model, and the service in a process of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from anomaly_vae import VAEDetector
from tests.conftest import TINY, mixed_frame
from tests.serving.conftest import free_port, wait_until_ready


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    frame, _ = mixed_frame(3000, seed=0)
    folder = tmp_path_factory.mktemp("reliability") / "model"
    VAEDetector(random_state=0, **TINY).fit(frame).save(folder)
    return folder


def body(n: int, seed: int = 1) -> bytes:
    frame, _ = mixed_frame(n, seed=seed)
    return json.dumps({"records": json.loads(frame.to_json(orient="records"))}).encode()


@contextmanager
def serve(model: Path, **settings: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`anomaly-vae serve` as users run it; settings as ANOMALY_VAE_* variables."""
    port = free_port()
    env = {**os.environ, **{f"ANOMALY_VAE_{k.upper()}": v for k, v in settings.items()}}
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--model", str(model), "--port", str(port)]
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            wait_until_ready(client, alive=lambda: process.poll() is None)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
