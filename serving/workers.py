"""Running the service: one worker (``serving/server.py``) or several sharing a port.

Workers: one process serves on one core (the GIL), so by default there is one worker process per CPU
this service may use (its CPU affinity, capped by a container's CPU quota), all accepting on one
listening socket. Each worker holds its own copy of the model, follows the registry alias and keeps
its own drift windows; their metrics add up through prometheus-client's multiprocess mode
(``serving/metrics.py``). The supervising process forwards SIGTERM to every worker and, if a worker
dies on its own, stops the others and exits with an error, so that the orchestrator restarts the
service whole. (This module, not ``__main__``, holds the worker's entry point: spawned processes
import it by name.)

Start-up: the supervisor binds the port and starts the workers at once; it imports neither torch nor
the app (seconds of CPU each), so the workers' imports are the only ones on the way to readiness. A
worker loads its model before it accepts; "Uvicorn running on ..." is logged once the first worker
accepts connections, not when the port is bound.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from types import FrameType

from serving.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
logger = logging.getLogger(__name__)


def announce(host: str, port: int) -> None:
    """Log that the service accepts connections (uvicorn's words, which people and tools look for)."""
    address = f"[{host}]" if ":" in host else host
    logger.info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", address, port)


def bind(host: str, port: int) -> socket.socket:
    """The socket the workers share, bound as uvicorn binds one; it accepts once a worker listens on it."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        logger.error("cannot listen on %s port %d: %s", host, port, error)
        raise SystemExit(1) from None
    sock.set_inheritable(True)
    return sock


def supervise(settings: Settings, host: str, port: int, workers: int) -> None:
    """``workers`` processes serving one listening socket, their metrics in a shared folder."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:  # this service's own folder: emptied, stale files would be added up
        for stale in Path(given).glob("*.db"):
            stale.unlink()
    folder = given or tempfile.mkdtemp(prefix="anomaly-vae-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # prometheus-client reads it when a worker imports it
    listener = bind(host, port)
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters: no torch state copied by fork
    started = spawn.Event()  # set by the first worker that accepts connections
    arguments = (settings, host, port, listener, os.getpid(), started)
    children = [spawn.Process(target=_worker, args=arguments) for _ in range(workers)]
    for child in children:
        child.start()
    bound = listener.getsockname()[1]  # the port asked for, or the one the system chose for port 0

    def announce_when_started() -> None:
        started.wait()
        announce(host, bound)

    threading.Thread(target=announce_when_started, daemon=True).start()
    stopping = False

    def stop(signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.is_alive():
                os.kill(child.pid, signal.SIGTERM)  # type: ignore[arg-type]

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = False
    try:
        while any(child.is_alive() for child in children):
            for child in children:
                child.join(timeout=0.2)
                if child.exitcode is not None and not stopping:  # died on its own
                    logging.error("worker %s exited with %s: stopping the service", child.pid, child.exitcode)
                    failed = True
                    stop()
    finally:
        listener.close()
        if not given:
            shutil.rmtree(folder, ignore_errors=True)
    if failed:
        raise SystemExit(1)


def _worker(settings: Settings, host: str, port: int, listener: socket.socket, supervisor: int, started: Event) -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)  # a fresh interpreter
    threading.Thread(target=_stop_with, args=(supervisor,), daemon=True).start()
    from serving.server import serve  # torch and the app: imported here, in the worker only

    serve(settings, host, port, [listener], on_started=lambda _: started.set())


def _stop_with(supervisor: int) -> None:
    """A worker whose supervisor died (a SIGKILL gives it no chance to tell) drains and stops."""
    while os.getppid() == supervisor:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a container's limit)."""
    count = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count
