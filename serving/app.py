"""The FastAPI app: ``create_app(settings)``; the model loads in the lifespan, never at import."""

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.admission import AdmissionControl
from serving.batching import ScoreBatcher
from serving.bodies import parse_json, read_body
from serving.drift import DriftMonitor
from serving.errors import MAX_MESSAGE, ApiError, Loc
from serving.invocations import read_invocation
from serving.metrics import Metrics
from serving.model_store import LoadedModel, ModelStore
from serving.openapi import ERRORS, UNSUPPORTED
from serving.openapi import install as install_openapi
from serving.records import Columns, Where, check_batch, check_json_numbers, from_records, library_error
from serving.schemas import (
    InvocationsRequest,
    InvocationsResponse,
    ModelDescription,
    ScoreRequest,
    ScoreResponse,
    validated,
)
from serving.settings import Settings, get_settings

logger = logging.getLogger(__name__)


class RequestMetrics:
    """Pure ASGI middleware: latency and status per route template (so labels stay bounded)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

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
            endpoint = getattr(scope.get("route"), "path", "other")
            self.metrics.request_seconds.labels(endpoint).observe(time.perf_counter() - start)
            self.metrics.requests.labels(endpoint, status[0]).inc()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = Metrics()
    monitor = DriftMonitor(
        metrics,
        settings.drift_window,
        settings.drift_step,
        settings.drift_max_features,
        settings.drift_min_interval_seconds,
    )
    store = ModelStore(settings.model_uri, metrics, settings.device, on_swap=monitor.model_loaded)
    batcher = ScoreBatcher(metrics, monitor)

    async def keep_model_current() -> None:
        while store.current is None:  # first load; retried until it works
            try:
                await asyncio.to_thread(store.load_initial)
            except Exception as error:
                logger.error("model %s failed to load, retrying: %s", settings.model_uri, error)
                await asyncio.sleep(5)
        while settings.reload_interval_seconds > 0:
            await asyncio.sleep(settings.reload_interval_seconds)
            await asyncio.to_thread(store.reload_if_moved)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.draining = False
        task = asyncio.create_task(keep_model_current())
        yield
        app.state.draining = True
        task.cancel()
        monitor.close()

    app = FastAPI(title="anomaly-vae", version="1", lifespan=lifespan)
    app.state.store, app.state.metrics, app.state.settings = store, metrics, settings

    # the settings allow visible ASCII tokens only; compared as bytes, since a client may send any bytes
    token = None if settings.auth_token is None else settings.auth_token.get_secret_value().encode("ascii")

    async def authorized(request: Request) -> None:  # async: a sync dependency runs in the thread pool
        if token is None:
            return
        # header values arrive as bytes, which starlette decodes as latin-1: encoding back gives those bytes
        scheme, _, credentials = request.headers.get("authorization", "").encode("latin-1").partition(b" ")
        if not (secrets.compare_digest(credentials, token) and scheme.lower() == b"bearer"):
            raise ApiError(401, ["header", "authorization"], "missing or wrong bearer token", "unauthorized")

    async def served_model() -> LoadedModel:
        if store.current is None:
            raise ApiError(503, [], "the model is not loaded yet", "not_ready")
        return store.current

    Auth = Annotated[None, Depends(authorized)]
    Model = Annotated[LoadedModel, Depends(served_model)]

    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(AdmissionControl, metrics=metrics, max_in_flight=settings.max_in_flight)  # outermost

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        detail = [{"loc": error.loc, "msg": error.msg[:MAX_MESSAGE], "type": error.kind}]
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse({"detail": detail}, status_code=error.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        detail = [{"loc": list(first["loc"]), "msg": str(first["msg"])[:MAX_MESSAGE], "type": first["type"]}]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"detail": [{"loc": [], "msg": "internal error", "type": "internal"}]}, status_code=500)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", responses={503: {"description": "Model not loaded yet, or draining before a stop"}})
    async def readyz(request: Request) -> JSONResponse:
        if store.current is None or request.app.state.draining:
            return JSONResponse({"status": "not ready"}, status_code=503)
        return JSONResponse({"status": "ready", "version": store.current.version})

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/model", response_model=ModelDescription, responses={k: ERRORS[k] for k in (401, 503)})
    async def describe(_: Auth, model: Model) -> ModelDescription:
        detector = model.detector
        return ModelDescription(
            name=model.name,
            version=model.version,
            default_score=detector.default_score,
            fpr=detector.fpr,
            thresholds=detector.thresholds(),
            columns=[
                {
                    "name": c.name,
                    "kind": c.kind,
                    "context": c.context,  # a conditional model's context column: required, not scored
                    **({"categories": c.categories} if c.kind == "categorical" else {}),
                }
                for c in detector.schema_.columns
            ],
        )

    # the body is read and parsed by hand (size limit first, strict numbers), so its schema is declared here;
    # once a model is loaded, serving.openapi replaces it with one that names the model's columns
    score_body = {"required": True, "content": {"application/json": {"schema": ScoreRequest.model_json_schema()}}}
    invocations_body = {
        "required": True,
        "content": {"application/json": {"schema": InvocationsRequest.model_json_schema()}},
    }
    install_openapi(app, store, settings.max_records)

    @app.post("/v1/score", response_model=ScoreResponse, responses=ERRORS, openapi_extra={"requestBody": score_body})
    async def score(request: Request, _: Auth, model: Model) -> JSONResponse:
        body = validated(ScoreRequest, parse_json(await read_body(request, settings.max_body_bytes)))
        loc: Loc = ["body", "records"]
        check_batch(len(body.records), settings.max_records, loc)
        columns, where = from_records(body.records, model, loc)
        check_json_numbers(columns, model, where)
        results = await _score(batcher, model, columns, body.fpr, body.contributions, where, loc)
        # returned as a response: the body is built from plain lists, so FastAPI's re-validation is skipped
        return JSONResponse({"model": {"name": model.name, "version": model.version}, "results": results})

    @app.post(
        "/invocations",
        response_model=InvocationsResponse,
        responses={**ERRORS, 415: UNSUPPORTED},
        openapi_extra={"requestBody": invocations_body},
        description="MLflow's scoring protocol: JSON (`dataframe_split`, `dataframe_records`, `inputs` or "
        "`instances`, optional `params.fpr`) or `text/csv` (a header line, then one line per record).",
    )
    async def invocations(request: Request, _: Auth, model: Model) -> JSONResponse:
        body = await read_body(request, settings.max_body_bytes)
        content_type = request.headers.get("content-type")
        columns, where, loc, fpr = read_invocation(body, content_type, model, settings.max_records)
        results = await _score(batcher, model, columns, fpr, False, where, loc)
        return JSONResponse({"predictions": results})

    return app


async def _score(
    batcher: ScoreBatcher,
    model: LoadedModel,
    columns: Columns,
    fpr: float | None,
    contributions: bool,
    where: Where,
    loc: Loc,
) -> list[dict[str, Any]]:
    """Scored on the event loop (a batch is ~ms of CPU; threads would only contend for the GIL)."""
    try:
        return await batcher.score(model, columns, fpr, contributions)
    except (ValueError, TypeError) as error:
        raise library_error(error, model, columns, where, loc) from None
