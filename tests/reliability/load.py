"""An open-loop, constant-rate HTTP load generator for a server on 127.0.0.1 (wrk2's model, in asyncio).

Request i is due at ``start + i / rate`` whether or not earlier ones have been answered, and its latency
is measured from that due time: a stalled server makes every late request count, instead of quietly
slowing the generator down (the "coordinated omission" of closed-loop tools such as plain wrk). Every
run is bounded: ``rate * seconds`` requests, then it waits at most ``grace`` seconds for the answers.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import numpy as np

HEADERS = {"content-type": "application/json"}


@dataclass
class Run:
    rate: float
    seconds: float
    outcomes: Counter[int | str] = field(default_factory=Counter)  # status code, or the transport error's name
    latencies: dict[int | str, list[float]] = field(default_factory=lambda: defaultdict(list))

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
        return "; ".join(parts)


def _check_local(url: str) -> None:
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        raise ValueError("load is only ever sent to this machine (127.0.0.1)")


async def _open_loop(url: str, body: bytes, rate: float, seconds: float, connections: int, grace: float) -> Run:
    _check_local(url)
    run = Run(rate, seconds)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(limits=limits, timeout=grace) as client:

        async def one(due: float) -> None:
            try:
                outcome: int | str = (await client.post(url, content=body, headers=HEADERS)).status_code
            except httpx.HTTPError as error:
                outcome = type(error).__name__
            run.outcomes[outcome] += 1
            run.latencies[outcome].append(loop.time() - due)

        start, tasks = loop.time() + 0.05, []
        for i in range(int(rate * seconds)):
            due = start + i / rate
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=grace + 5)
    return run


def constant_rate(url: str, body: bytes, rate: float, seconds: float, connections: int = 32, grace: float = 30) -> Run:
    """Send ``body`` to ``url`` at ``rate`` requests/s for ``seconds``."""
    return asyncio.run(_open_loop(url, body, rate, seconds, connections, grace))


def capacity(url: str, body: bytes, seconds: float = 5, connections: int = 4) -> float:
    """Requests/s the server completes with ``connections`` requests always outstanding (closed loop)."""
    _check_local(url)

    async def measure() -> float:
        done, end = 0, time.monotonic() + seconds
        async with httpx.AsyncClient(timeout=30) as client:

            async def worker() -> None:
                nonlocal done
                while time.monotonic() < end:
                    (await client.post(url, content=body, headers=HEADERS)).raise_for_status()
                    done += 1

            await asyncio.gather(*(worker() for _ in range(connections)))
        return done / seconds

    return asyncio.run(measure())
