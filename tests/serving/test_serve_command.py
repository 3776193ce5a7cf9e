"""`anomaly-vae serve` as users run it: its help, and the log line announcing the port, which must come
only once the port accepts connections."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.serving.conftest import free_port, wait_until_ready


@pytest.mark.parametrize("command", [["pipelines.cli", "serve"], ["serving"]])
def test_help_shows_every_default(command):
    result = subprocess.run([sys.executable, "-m", *command, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps lines
    for option, default in [
        ("--model", "ANOMALY_VAE_MODEL_URI"),
        ("--host", "127.0.0.1"),
        ("--port", "8000"),
        ("--workers", "ANOMALY_VAE_WORKERS, else 0 = one per CPU available"),
    ]:
        assert re.search(rf"{option} \S+ [^-]*\(default: {re.escape(default)}\)", text), (option, text)


def lines_of(stream) -> queue.Queue[str | None]:
    """The stream's lines as they come, None at its end."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


@pytest.mark.parametrize("workers", [1, 2])
def test_the_port_is_announced_once_and_only_when_it_accepts(model_folder, workers):
    port = free_port()
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--model", str(model_folder), "--port", str(port)]
    env = {**os.environ, "ANOMALY_VAE_DRAIN_SECONDS": "0"}
    process = subprocess.Popen([*command, "--workers", str(workers)], env=env, stderr=subprocess.PIPE, text=True)
    lines, seen = lines_of(process.stderr), []
    try:
        deadline = time.monotonic() + 180
        while not any("Uvicorn running on" in line for line in seen):
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, "".join(seen)
            seen.append(line)
        with socket.create_connection(("127.0.0.1", port), timeout=5):  # refused if announced too early
            pass
        assert f"Uvicorn running on http://127.0.0.1:{port} " in seen[-1]
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200  # model or not
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_until_ready(client, alive=lambda: process.poll() is None)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    while (line := lines.get(timeout=30)) is not None:
        seen.append(line)
    assert sum("Uvicorn running on" in line for line in seen) == 1, "".join(seen)
