"""The CPU work of large requests runs in a thread, so that the event loop keeps answering.

Parsing a 4 MB body, scoring its records and encoding the answer take most of a second of CPU; on the
event loop that second is one in which nothing else is answered, the liveness probe included (an
overloaded pod would fail it and be restarted, making the overload worse). Such work runs in a worker
thread instead, one piece at a time per process (``THREADS``): the process has one core's worth of
GIL, so more threads would only contend, and the loop thread still gets the GIL every switch interval
(5 ms) to answer probes and small requests.

Small work stays on the loop: a single-record request is a fraction of a millisecond of CPU, and the
hop to a thread and back would add about as much. Admission control is unchanged: a request counts as
in flight while its work waits for the thread or runs in it.

A thread frees the loop only where it lets go of the GIL: Python code does every switch interval, but
one call into C code that never calls back (``json.dumps`` of a whole answer: 0.3 s for 28,000
results) holds it throughout. ``json_answer`` therefore encodes an answer's records a slice at a time.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import anyio.to_thread
from starlette.responses import Response

T = TypeVar("T")

INLINE_BYTES = 64_000  # bodies up to this size are parsed on the event loop (about 1 ms)
INLINE_RECORDS = 200  # batches and answers up to this many records are scored and encoded on the loop
THREADS = 1  # large pieces of work at once, per process
SLICE = 500  # records per json.dumps call in json_answer (about 5 ms)
_dumps = functools.partial(json.dumps, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class Offload:
    """Runs a function on the event loop when its work is small, else in this app's worker thread."""

    def __init__(self, threads: int = THREADS) -> None:
        self.limiter = anyio.CapacityLimiter(threads)

    async def run(self, large: bool, function: Callable[..., T], *args: object) -> T:
        if not large:
            return function(*args)
        return await anyio.to_thread.run_sync(function, *args, limiter=self.limiter)


def json_answer(content: dict[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    """``JSONResponse(content, headers=headers)``, the same bytes, its last value (the list of results)
    encoded ``SLICE`` records at a time, so that a thread encoding it lets other threads run between."""
    *head, (key, rows) = content.items()
    parts = [_dumps(dict(head))[:-1], "," if head else "", _dumps(key), ":["]
    parts.append(",".join(_dumps(rows[i : i + SLICE])[1:-1] for i in range(0, len(rows), SLICE)))
    parts.append("]}")
    return Response("".join(parts).encode(), media_type="application/json", headers=headers)
