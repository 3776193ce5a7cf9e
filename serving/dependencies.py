"""What the routes depend on: the app's services, the caller's authorization and the served model.

``create_app`` builds one :class:`Services` per app and keeps it on ``app.state.services``; a route
reaches it with :func:`services`. ``Auth`` and ``Model`` are FastAPI dependencies, async because FastAPI
runs a sync dependency in its thread pool. Admission control is middleware (``serving/admission.py``),
since it answers before a request's body is read.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from serving.batching import ScoreBatcher
from serving.drift import DriftMonitor
from serving.errors import ApiError
from serving.metrics import Metrics
from serving.model_store import LoadedModel, ModelStore
from serving.offload import Offload
from serving.settings import Settings


@dataclass(frozen=True)
class Services:
    """One app's metrics, model store, drift monitor, micro-batcher and offload thread, and the settings
    they follow."""

    settings: Settings
    metrics: Metrics
    store: ModelStore
    monitor: DriftMonitor
    batcher: ScoreBatcher
    offload: Offload  # runs large requests' CPU work off the event loop
    token: bytes | None  # the bearer token's bytes; None: no authentication

    @classmethod
    def create(cls, settings: Settings) -> Services:
        metrics = Metrics()
        monitor = DriftMonitor(
            metrics,
            settings.drift_window,
            settings.drift_step,
            settings.drift_max_features,
            settings.drift_min_interval_seconds,
        )
        store = ModelStore(settings.model_uri, metrics, settings.device, on_swap=monitor.model_loaded)
        # the settings allow visible ASCII tokens only; compared as bytes, since a client may send any bytes
        secret = settings.auth_token
        token = None if secret is None else secret.get_secret_value().encode("ascii")
        offload = Offload()
        return cls(settings, metrics, store, monitor, ScoreBatcher(metrics, monitor, offload), offload, token)


def services(request: Request) -> Services:
    return request.app.state.services


async def authorized(request: Request) -> None:
    """401 unless the request carries ``Authorization: Bearer <token>`` (when a token is configured)."""
    token = services(request).token
    if token is None:
        return
    # header values arrive as bytes, which starlette decodes as latin-1: encoding back gives those bytes
    scheme, _, credentials = request.headers.get("authorization", "").encode("latin-1").partition(b" ")
    if not (secrets.compare_digest(credentials, token) and scheme.lower() == b"bearer"):
        raise ApiError(401, ["header", "authorization"], "missing or wrong bearer token", "unauthorized")


async def served_model(request: Request) -> LoadedModel:
    """The model being served; 503 until one is loaded."""
    model = services(request).store.current
    if model is None:
        raise ApiError(503, [], "the model is not loaded yet", "not_ready")
    return model


Auth = Annotated[None, Depends(authorized)]
Model = Annotated[LoadedModel, Depends(served_model)]
