"""A real uvicorn server on 127.0.0.1 running the real app, for real HTTP requests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from serving.app import create_app
from serving.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(client: httpx.Client, alive: Callable[[], bool], seconds: float = 60) -> None:
    """Poll /readyz until it answers 200; fail if the server dies or the time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if not alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not become ready")
        time.sleep(0.05)


@contextmanager
def running(settings: Settings) -> Iterator[tuple[httpx.Client, object]]:
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    wait_until_ready(client, alive=thread.is_alive)
    try:
        yield client, app
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def model_folder(fitted, tmp_path_factory):
    folder = tmp_path_factory.mktemp("served") / "model"
    fitted.save(folder)
    return folder


@pytest.fixture(scope="module")
def server(model_folder):
    with running(Settings(model_uri=str(model_folder), max_records=100, max_body_bytes=200_000)) as (client, app):
        yield client, app
