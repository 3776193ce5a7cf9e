"""Serving speed side by side: ``mlflow models serve`` and ``anomaly-vae serve`` on the same model.

Each server runs alone (one after the other, same machine, same run) under wrk with single-record POST
requests over a fixed number of connections. Besides wrk's throughput and latency, the CPU time the
server's processes used per request is read from /proc: unlike throughput it hardly moves when other
work shares the machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from pipelines.registry import configure_tracking, load_detector


@dataclass
class Run:
    server: str
    endpoint: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms_per_request: float


@dataclass(frozen=True)
class Server:
    """One server under wrk: its name in the table, the command that starts it, its port, the path that
    answers 200 once it is ready, and the endpoint and JSON body to POST."""

    name: str
    command: list[str]
    port: int
    ready: str
    endpoint: str
    body: object


def run_serving_speed(model_uri: str, seconds: int = 15, connections: int = 8, workers: int = 0) -> str:
    """Markdown table of both servers on ``/invocations`` (and ours on ``/v1/score``), and the ratios: each
    at its defaults (mlflow: one worker; ours: one per CPU) and with the same number of workers.
    ``workers``: ours at its default when 0, and that many for the like-for-like rows."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    configure_tracking()  # servers started below inherit MLFLOW_TRACKING_URI from it
    record = load_detector(model_uri)[0].schema_.typical_record()
    n = workers or len(os.sched_getaffinity(0))
    runs = [measure(server, seconds, connections) for server in servers(model_uri, record, n)]
    return _table(runs, n, seconds, connections)


def servers(model_uri: str, record: dict[str, object], n: int) -> list[Server]:
    """The five runs, in the order :func:`_table` reads them: mlflow with 1 and ``n`` workers, ours with 1
    and ``n`` on ``/invocations``, ours with ``n`` on ``/v1/score``."""
    mlflow_cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local"]
    ours_cmd = [sys.executable, "-m", "serving", "--model", model_uri]
    invocations, score = {"dataframe_records": [record]}, {"records": [record]}
    return [
        Server(
            "mlflow models serve (1 worker, its default)",
            [*mlflow_cmd, "-p", "8131"],
            8131,
            "/ping",
            "/invocations",
            invocations,
        ),
        Server(
            f"mlflow models serve --workers {n}",
            [*mlflow_cmd, "-p", "8132", "-w", str(n)],
            8132,
            "/ping",
            "/invocations",
            invocations,
        ),
        Server(
            "anomaly-vae serve --workers 1",
            [*ours_cmd, "--port", "8133", "--workers", "1"],
            8133,
            "/readyz",
            "/invocations",
            invocations,
        ),
        Server(
            f"anomaly-vae serve --workers {n}",
            [*ours_cmd, "--port", "8134", "--workers", str(n)],
            8134,
            "/readyz",
            "/invocations",
            invocations,
        ),
        Server(
            f"anomaly-vae serve --workers {n}",
            [*ours_cmd, "--port", "8135", "--workers", str(n)],
            8135,
            "/readyz",
            "/v1/score",
            score,
        ),
    ]


def _table(runs: list[Run], n: int, seconds: int, connections: int) -> str:
    lines = [
        f"wrk -t2 -c{connections} -d{seconds}s, one record per POST, each server alone in turn; {n} CPUs.",
        "",
        "| server | endpoint | requests/s | p50 ms | p99 ms | errors | server CPU ms / request |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        lines.append(
            f"| {run.server} | {run.endpoint} | {run.requests_per_second:,.0f} | {run.p50_ms:.2f} | {run.p99_ms:.2f}"
            f" | {run.errors} | {run.cpu_ms_per_request:.3f} |"
        )
    mlflow_default, mlflow_n, ours_1, ours_n, ours_n_score = runs
    for ours, theirs, what in (
        (ours_n, mlflow_default, "each at its defaults"),
        (ours_n_score, mlflow_default, "each at its defaults, ours on /v1/score"),
        (ours_n, mlflow_n, f"{n} workers each"),
        (ours_1, mlflow_default, "1 worker each"),
    ):
        lines.append(
            f"\n{what}: {ours.requests_per_second / theirs.requests_per_second:.1f}x the requests/s of "
            f"`mlflow models serve`, {theirs.cpu_ms_per_request / ours.cpu_ms_per_request:.1f}x less CPU per request."
        )
    return "\n".join(lines)


def measure(server: Server, seconds: int, connections: int) -> Run:
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = [==[{json.dumps(server.body)}]==]\n"  # a level-2 long string: JSON may hold "]]"
        )
        # mlflow starts `uvicorn` by name: this interpreter's scripts folder goes first on PATH
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        process = subprocess.Popen(server.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            _wait_ready(f"http://127.0.0.1:{server.port}{server.ready}", process)
            cpu_before = _tree_cpu_seconds(process.pid)
            url = f"http://127.0.0.1:{server.port}{server.endpoint}"
            wrk = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
            output = subprocess.run(wrk, capture_output=True, text=True, check=True).stdout
            cpu = _tree_cpu_seconds(process.pid) - cpu_before
        finally:
            process.terminate()
            process.wait(timeout=60)
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket.groups())) if socket else 0)
    return Run(
        server.name,
        server.endpoint,
        float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        _latency_ms(output, "50%"),
        _latency_ms(output, "99%"),
        errors,
        1000 * cpu / max(total, 1),
    )


def _wait_ready(url: str, server: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"server for {url} did not become ready")


def _latency_ms(output: str, quantile: str) -> float:
    value, unit = re.search(rf"{quantile}\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process ended meanwhile
                continue
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            total += (int(stats[current][11]) + int(stats[current][12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        todo.extend(children.get(current, []))
    return total
