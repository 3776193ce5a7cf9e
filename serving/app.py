"""The FastAPI app: ``create_app(settings)`` wires the services, middleware, error handlers and routers
together; the model loads in the lifespan, never at import."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from serving.admission import AdmissionControl
from serving.dependencies import Services
from serving.errors import add_error_handlers
from serving.model_store import keep_current
from serving.openapi import install as install_openapi
from serving.request_metrics import RequestMetrics
from serving.routers import model, probes, score
from serving.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    services = Services.create(settings or get_settings())
    app = FastAPI(title="anomaly-vae", version="1", lifespan=_lifespan)
    app.state.services = services
    app.state.store, app.state.metrics, app.state.settings = services.store, services.metrics, services.settings
    app.state.draining = False
    max_in_flight = services.settings.max_in_flight
    app.add_middleware(AdmissionControl, metrics=services.metrics, max_in_flight=max_in_flight)
    # outermost, so that admission control's 503s are counted and timed as every other answer
    app.add_middleware(RequestMetrics, metrics=services.metrics)
    add_error_handlers(app)
    # FastAPI matches a path against included routers in order: scoring, nearly every request, comes first
    for router in (score.router, model.router, probes.router):
        app.include_router(router)
    install_openapi(app, services.store, services.settings.max_records)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    services: Services = app.state.services
    app.state.draining = False
    task = asyncio.create_task(keep_current(services.store, services.settings.reload_interval_seconds))
    yield
    app.state.draining = True
    task.cancel()
    services.monitor.close()
