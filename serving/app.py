"""The FastAPI app: ``create_app(settings)``; the model loads in the lifespan, never at import."""

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anomaly_vae.schema import NUMERIC
from serving.admission import AdmissionControl
from serving.batching import ScoreBatcher
from serving.drift import DriftMonitor
from serving.metrics import Metrics
from serving.model_store import LoadedModel, ModelStore
from serving.openapi import ERRORS, LARGEST_NUMBER
from serving.openapi import install as install_openapi
from serving.schemas import InvocationsRequest, InvocationsResponse, ModelDescription, ScoreRequest, ScoreResponse
from serving.settings import Settings, get_settings

logger = logging.getLogger(__name__)
MAX_MESSAGE = 300  # error messages are cut here: they may quote column names, never values


class ApiError(Exception):
    """A client error: status code, the field path, a readable message."""

    def __init__(self, status: int, loc: list[str | int], msg: str, kind: str = "value_error") -> None:
        super().__init__(msg)
        self.status, self.loc, self.msg, self.kind = status, loc, msg, kind


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

    async def authorized(request: Request) -> None:  # async: a sync dependency runs in the thread pool
        if settings.auth_token is None:
            return
        expected = f"Bearer {settings.auth_token.get_secret_value()}"
        if not secrets.compare_digest(request.headers.get("authorization", ""), expected):
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
        body = _validated(ScoreRequest, await _read_json(request, settings.max_body_bytes))
        _check_batch(len(body.records), settings.max_records, ["body", "records"])
        columns = _records_columns(body.records, model, ["body", "records"])
        results = await _score(batcher, model, columns, body.fpr, body.contributions)
        # returned as a response: the body is built from plain lists, so FastAPI's re-validation is skipped
        return JSONResponse({"model": {"name": model.name, "version": model.version}, "results": results})

    @app.post(
        "/invocations",
        response_model=InvocationsResponse,
        responses=ERRORS,
        openapi_extra={"requestBody": invocations_body},
    )
    async def invocations(request: Request, _: Auth, model: Model) -> JSONResponse:
        body = _validated(InvocationsRequest, await _read_json(request, settings.max_body_bytes))
        if (body.dataframe_split is None) == (body.dataframe_records is None):
            raise ApiError(422, ["body"], "give exactly one of dataframe_split or dataframe_records")
        fpr = (body.params or {}).get("fpr")
        if fpr is not None and not (isinstance(fpr, (int, float)) and 0 < fpr < 1):
            raise ApiError(422, ["body", "params", "fpr"], "fpr must be a number in (0, 1)")
        if body.dataframe_split is not None:
            split = body.dataframe_split
            _check_batch(len(split.data), settings.max_records, ["body", "dataframe_split", "data"])
            for i, row in enumerate(split.data):
                if len(row) != len(split.columns):
                    raise ApiError(422, ["body", "dataframe_split", "data", i], "row length differs from columns")
            records = [dict(zip(split.columns, row, strict=True)) for row in split.data]
            loc: list[str | int] = ["body", "dataframe_split", "data"]
        else:
            records = body.dataframe_records or []
            loc = ["body", "dataframe_records"]
            _check_batch(len(records), settings.max_records, loc)
        columns = _records_columns(records, model, loc)
        results = await _score(batcher, model, columns, fpr, False)
        return JSONResponse({"predictions": results})

    return app


async def _read_json(request: Request, limit: int) -> Any:
    """The request body as JSON, enforcing the size limit while reading (before parsing anything)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ApiError(413, ["body"], f"request body is larger than {limit} bytes", "too_large")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiError(413, ["body"], f"request body is larger than {limit} bytes", "too_large")
    except ClientDisconnect:
        raise ApiError(400, ["body"], "the client disconnected before sending the whole body", "disconnect") from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, ["body"], "request body is not valid UTF-8", "invalid_encoding") from None
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_bounded_float, parse_int=_bounded_int)
    except json.JSONDecodeError as error:
        raise ApiError(
            400, ["body"], f"invalid JSON at line {error.lineno} column {error.colno}", "invalid_json"
        ) from None
    except RecursionError:
        raise ApiError(400, ["body"], "JSON is nested too deeply", "invalid_json") from None


def _reject_constant(token: str) -> float:
    raise ApiError(422, ["body"], f"{token} is not a JSON number; send null for a missing value", "non_finite")


def _bounded_float(text: str) -> float:
    value = float(text)
    if abs(value) >= 1e307:  # exactly as the published bound reads
        _check_range(Decimal(text))
    return value


def _bounded_int(text: str) -> int:
    value = int(text)
    if len(text) > 300:
        _check_range(Decimal(value))
    return value


def _check_range(value: Decimal) -> None:
    if value.copy_abs() > LARGEST_NUMBER:  # copy_abs: exact (abs() rounds to 28 digits)
        raise ApiError(422, ["body"], "a number is out of range for a 64-bit float", "non_finite")


def _validated(schema: type[BaseModel], data: Any) -> Any:
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        raise ApiError(422, ["body", *first["loc"]], first["msg"], first["type"]) from None


def _check_batch(n: int, limit: int, loc: list[str | int]) -> None:
    if n == 0:
        raise ApiError(422, loc, "at least one record is needed")
    if n > limit:
        raise ApiError(413, loc, f"{n} records; at most {limit} per request", "too_large")


def _records_columns(records: list[dict[str, Any]], model: LoadedModel, loc: list[str | int]) -> dict[str, np.ndarray]:
    """Column arrays in the model's order; a record lacking a column or carrying an unknown one is an error
    (null is the way to send a missing value)."""
    names = list(model.detector.feature_names_in_)
    expected = set(names)
    for i, record in enumerate(records):
        if record.keys() != expected:
            missing = sorted(expected - record.keys())
            if missing:
                raise ApiError(422, [*loc, i], f"missing column(s): {missing}", "missing")
            raise ApiError(422, [*loc, i], f"unknown column(s): {sorted(record.keys() - expected)}", "extra")
    numeric = model.detector.schema_.of_kind(NUMERIC)
    columns = {}
    for name in names:
        values = np.empty(len(records), dtype=object)
        values[:] = [record[name] for record in records]
        columns[name] = values
    for column in numeric:  # JSON numbers only: "1.5" is a string (batch scoring of CSV text accepts it)
        values = columns[column.name]
        if not set(map(type, values)) <= _JSON_NUMBER_TYPES:
            i = next(i for i, v in enumerate(values) if type(v) not in _JSON_NUMBER_TYPES)
            kind = "boolean" if isinstance(values[i], bool) else "string"
            message = f"column {column.name!r}: expected a number or null, got a {kind}"
            raise ApiError(422, [*loc, i, column.name], message)
    return columns


_JSON_NUMBER_TYPES = {int, float, type(None)}


async def _score(
    batcher: ScoreBatcher, model: LoadedModel, columns: dict[str, np.ndarray], fpr: float | None, contributions: bool
) -> list[dict[str, Any]]:
    """Scored on the event loop (a batch is ~ms of CPU; threads would only contend for the GIL)."""
    try:
        return await batcher.score(model, columns, fpr, contributions)
    except (ValueError, TypeError) as error:
        raise ApiError(422, ["body", "records"], str(error)) from None
