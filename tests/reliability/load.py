"""An open-loop, constant-rate HTTP load generator for a server on 127.0.0.1 (wrk2's model, in asyncio).

Request i is due at ``start + i / rate`` whether or not earlier ones have been answered, and its latency
is measured from that due time: a stalled server makes every late request count, instead of quietly
slowing the generator down (the "coordinated omission" of closed-loop tools such as plain wrk). Every
run is bounded: ``rate * seconds`` requests, then it waits at most ``grace`` seconds for the answers;
requests still unanswered then are counted as ``"unanswered"``.

The generator must cost the machine little, since it shares the cores with the service: it writes one
prepared HTTP/1.1 request on a fixed set of keep-alive connections and reads just the status line,
the headers and ``Content-Length`` bytes of each answer, about 0.1 ms of CPU per request. (The first
version used httpx's async client: 7.6 ms of CPU per request, so 200 requests/s took 1.5 of the two
cores, it fell ever further behind and its queue of waiting requests grew without bound; see
docs/reliability.md.) Each run reports the generator's own CPU time and how late it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np


@dataclass
class Run:
    rate: float
    seconds: float
    outcomes: Counter[int | str] = field(default_factory=Counter)  # status code, or the transport error's name
    latencies: dict[int | str, list[float]] = field(default_factory=lambda: defaultdict(list))
    client_cpu_seconds: float = 0.0  # the generator's process's CPU time (other threads of the test included)
    send_lag_max: float = 0.0  # the latest the generator put a request on its queue after its due time

    @property
    def sent(self) -> int:
        return sum(self.outcomes.values())

    def quantile_ms(self, q: float, outcome: int | str = 200) -> float:
        values = self.latencies.get(outcome)
        return float(np.quantile(values, q) * 1000) if values else float("nan")

    def summary(self) -> str:
        parts = [f"{self.sent} requests at {self.rate:.0f}/s for {self.seconds:.0f} s: {dict(self.outcomes)}"]
        for outcome in sorted(self.latencies, key=str):
            p50, p99, top = (self.quantile_ms(q, outcome) for q in (0.5, 0.99, 1.0))
            parts.append(f"{outcome}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {top:.1f} ms")
        cpu, lag = self.client_cpu_seconds / max(self.sent, 1) * 1000, self.send_lag_max * 1000
        parts.append(f"generator: {cpu:.2f} ms CPU per request, sent at most {lag:.1f} ms late")
        return "; ".join(parts)


class _Connection:
    """One keep-alive HTTP/1.1 connection that sends a prepared request and reads the answer's status."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def send(self, request: bytes) -> tuple[int, bool]:
        """The answer's status, and whether the server closes the connection after it."""
        self.writer.write(request)
        await self.writer.drain()
        line = await self.reader.readline()
        if not line:
            raise ConnectionResetError("the server closed the connection")
        status, length, close = int(line.split(b" ", 2)[1]), 0, False
        while (header := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = header.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value == b"close"
            elif name == b"transfer-encoding":
                raise ValueError("chunked answers are not read")
        await self.reader.readexactly(length)
        return status, close

    def close(self) -> None:
        self.writer.close()


def _target(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
        raise ValueError("load is only ever sent to this machine (127.0.0.1), on an explicit port")
    return parts.hostname, parts.port, parts.path or "/"


def _request(host: str, port: int, path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


async def _post(connection: _Connection | None, host: str, port: int, request: bytes) -> tuple[int, _Connection | None]:
    """One request on ``connection`` (opened when None); the status and the connection to use next."""
    if connection is None:
        connection = await _Connection.open(host, port)
    status, close = await connection.send(request)
    if close:
        connection.close()
        return status, None
    return status, connection


async def _open_loop(url: str, body: bytes, rate: float, seconds: float, connections: int, grace: float) -> Run:
    host, port, path = _target(url)
    request, run = _request(host, port, path, body), Run(rate, seconds)
    loop = asyncio.get_running_loop()
    due_times: asyncio.Queue[float] = asyncio.Queue()  # requests due and not yet sent: their wait counts

    async def sender() -> None:
        connection: _Connection | None = None
        try:
            while True:
                due = await due_times.get()
                try:
                    outcome: int | str
                    outcome, connection = await _post(connection, host, port, request)
                except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                    outcome = type(error).__name__
                    if connection is not None:
                        connection.close()
                    connection = None
                run.outcomes[outcome] += 1
                run.latencies[outcome].append(loop.time() - due)
                due_times.task_done()
        finally:
            if connection is not None:
                connection.close()

    cpu_start = time.process_time()
    senders = [asyncio.create_task(sender()) for _ in range(connections)]
    start, total = loop.time() + 0.05, int(rate * seconds)
    for i in range(total):
        due = start + i / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        run.send_lag_max = max(run.send_lag_max, loop.time() - due)
        due_times.put_nowait(due)
    with contextlib.suppress(TimeoutError):  # what is left is counted below
        await asyncio.wait_for(due_times.join(), timeout=grace)
    for task in senders:
        task.cancel()
    await asyncio.gather(*senders, return_exceptions=True)
    if run.sent < total:
        run.outcomes["unanswered"] += total - run.sent  # queued or in flight when the grace time ran out
    run.client_cpu_seconds = time.process_time() - cpu_start
    return run


def constant_rate(url: str, body: bytes, rate: float, seconds: float, connections: int = 32, grace: float = 30) -> Run:
    """Send ``body`` to ``url`` at ``rate`` requests/s for ``seconds``."""
    return asyncio.run(_open_loop(url, body, rate, seconds, connections, grace))


def capacity(url: str, body: bytes, seconds: float = 5, connections: int = 4) -> float:
    """Requests/s the server completes with ``connections`` requests always outstanding (closed loop)."""
    host, port, path = _target(url)
    request = _request(host, port, path, body)

    async def measure() -> float:
        done, end = 0, time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            connection: _Connection | None = None
            while time.monotonic() < end:
                status, connection = await _post(connection, host, port, request)
                if status != 200:
                    raise RuntimeError(f"capacity run answered {status}")
                done += 1
            if connection is not None:
                connection.close()

        await asyncio.gather(*(worker() for _ in range(connections)))
        return done / seconds

    return asyncio.run(measure())
