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
worker accepts connections as soon as its app is built and loads its model in the background, as a
single process does: ``/healthz`` answers from then on, whether or not the registry is reachable.
``/readyz`` answers 200 only once every worker has its model (``Readiness``, one shared byte per
worker), since the kernel hands a connection to any of them; until then a scoring request that
reaches a worker without a model gets 503. "Uvicorn running on ..." is logged once the first worker
accepts connections, not when the port is bound.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import multiprocessing.sharedctypes
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

CGROUP_ROOT = Path("/sys/fs/cgroup")  # a container's own cgroup, under cgroup namespaces (v2) or v1's mounts
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
logger = logging.getLogger(__name__)


def announce(host: str, port: int) -> None:
    """Log that the service accepts connections (uvicorn's words, which people and tools look for)."""
    address = f"[{host}]" if ":" in host else host
    logger.info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", address, port)


class Readiness:
    """Which workers of a service have loaded a model: one byte each, in memory shared by the workers."""

    def __init__(self, flags: multiprocessing.sharedctypes.SynchronizedArray[int], index: int) -> None:
        self.flags, self.index = flags, index

    def mark_loaded(self) -> None:
        self.flags[self.index] = 1

    def all_loaded(self) -> bool:
        return all(self.flags[:])


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
    loaded = spawn.Array("b", workers)  # Readiness: set by each worker once it has a model
    arguments = (settings, host, port, listener, os.getpid(), started)
    children = [spawn.Process(target=_worker, args=(*arguments, Readiness(loaded, i))) for i in range(workers)]
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


def _worker(
    settings: Settings,
    host: str,
    port: int,
    listener: socket.socket,
    supervisor: int,
    started: Event,
    readiness: Readiness,
) -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)  # a fresh interpreter
    threading.Thread(target=_stop_with, args=(supervisor,), daemon=True).start()
    from serving.server import serve  # torch and the app: imported here, in the worker only

    serve(settings, host, port, [listener], on_started=lambda _: started.set(), readiness=readiness)


def _stop_with(supervisor: int) -> None:
    """A worker whose supervisor died (a SIGKILL gives it no chance to tell) drains and stops."""
    while os.getppid() == supervisor:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def available_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may use: its affinity, capped by the container's CPU quota, rounded down.

    The quota is read from cgroup v2 (``cpu.max``: "QUOTA PERIOD", or "max PERIOD" for none) or, on
    nodes still on cgroup v1, from ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (a quota of -1 for none).
    Rounded down, at least 1: a 1.5-CPU quota is one worker, since a second would be throttled.
    """
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota(cgroup_root)
    return count if quota is None else max(1, min(count, math.floor(quota)))


def cpu_quota(cgroup_root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota in CPUs (1.5 for 150 ms per 100 ms), or None when there is none or none can be read."""
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        pass
    for folder in ("cpu", "cpu,cpuacct", "cpuacct,cpu", "."):  # v1 controllers, mounted by name or alone
        try:
            quota_us = int((cgroup_root / folder / "cpu.cfs_quota_us").read_text())
            period_us = int((cgroup_root / folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    return None
