"""Request latency and status per route template (so labels stay bounded), as pure ASGI middleware.

It is the outermost middleware: every answer is counted, including admission control's 503s, which
are given before routing (their endpoint is the scoring path that was refused)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.admission import LIMITED_PATHS
from serving.metrics import Metrics


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics
        # labelled series by label values: prometheus-client's own lookup takes a lock and builds a key
        self._latency: dict[str, Histogram] = {}
        self._count: dict[tuple[str, str], Counter] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), ["500"]

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")  # set by routing; absent when the request was answered before it
            endpoint = route.path if route is not None else scope["path"] if scope["path"] in LIMITED_PATHS else "other"
            self._observe(endpoint, status[0], time.perf_counter() - start)

    def _observe(self, endpoint: str, status: str, seconds: float) -> None:
        latency = self._latency.get(endpoint)
        if latency is None:
            latency = self._latency[endpoint] = self.metrics.request_seconds.labels(endpoint)
        count = self._count.get((endpoint, status))
        if count is None:
            count = self._count[endpoint, status] = self.metrics.requests.labels(endpoint, status)
        latency.observe(seconds)
        count.inc()
