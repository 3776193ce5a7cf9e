"""``GET /healthz`` (the process is alive), ``GET /readyz`` (a model is loaded and the process is not
draining; with several workers on one port, every worker has one: ``serving/workers.py``) and
``GET /metrics`` (Prometheus text format). Always open: no authentication, no admission limit; none of
them waits for the model."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from serving.dependencies import services

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz", responses={503: {"description": "Model not loaded yet, or draining before a stop"}})
async def readyz(request: Request) -> JSONResponse:
    model = services(request).store.current
    readiness = getattr(request.app.state, "readiness", None)  # set where several workers share the port
    if model is None or request.app.state.draining or (readiness is not None and not readiness.all_loaded()):
        return JSONResponse({"status": "not ready"}, status_code=503)
    return JSONResponse({"status": "ready", "version": model.version})


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus(request: Request) -> PlainTextResponse:
    return PlainTextResponse(services(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
