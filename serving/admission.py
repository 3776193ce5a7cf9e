"""Admission control: beyond ``max_in_flight`` scoring requests, answer 503 at once instead of queueing.

A worker scores on one core (on the event loop, or in its one offload thread for large requests:
serving/offload.py), so every admitted request waits for the ones ahead of it. Without a limit, load
past capacity grows the queue, and with it every request's latency, without bound; with one, excess
requests get ``503`` + ``Retry-After`` before their body is read, so clients (and load balancers) can
retry elsewhere while admitted requests keep their latency. A request counts as in flight until its
answer is sent, including while its work waits for the offload thread. Only the scoring endpoints are
limited: probes and /metrics always answer. The 503s are counted in the request metrics like any other
answer (serving/request_metrics.py) and in ``anomaly_vae_requests_shed_total``.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.metrics import Metrics

LIMITED_PATHS = frozenset({"/v1/score", "/invocations"})
RETRY_AFTER_SECONDS = "1"
_BODY = json.dumps(
    {"detail": [{"loc": [], "msg": "the server is at its limit of requests in flight; retry", "type": "overloaded"}]}
).encode()


class AdmissionControl:
    """Pure ASGI middleware counting scoring requests in flight; 0 = no limit."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_in_flight: int) -> None:
        self.app, self.metrics, self.limit = app, metrics, max_in_flight
        self.in_flight = 0  # the gauge is moved with it: set_function is ignored in multiprocess mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in LIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.limit and self.in_flight >= self.limit:
            self.metrics.shed.labels(scope["path"]).inc()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_BODY)).encode()),
                (b"retry-after", RETRY_AFTER_SECONDS.encode()),
            ]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": _BODY})
            return
        self.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.dec()
