"""``POST /v1/score`` (records, per-request fpr and contributions) and ``POST /invocations`` (MLflow's
scoring protocol, serving/invocations.py).

A body is read by hand (its size limit first, numbers strictly, serving/bodies.py), so its schema is
declared here; once a model is loaded, serving/openapi.py replaces it with one naming the model's columns.
Records are scored on the event loop, micro-batched with those of concurrent requests
(serving/batching.py): a batch is under a millisecond of CPU, and threads would only contend for the GIL.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from serving.batching import ScoreBatcher
from serving.bodies import parse_json, read_body
from serving.dependencies import Auth, Model, services
from serving.invocations import read_invocation
from serving.model_store import LoadedModel
from serving.openapi import ERRORS, UNSUPPORTED
from serving.records import Records, from_records
from serving.schemas import InvocationsRequest, InvocationsResponse, ScoreRequest, ScoreResponse, validated

router = APIRouter()


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@router.post(
    "/v1/score",
    response_model=ScoreResponse,
    responses=ERRORS,
    openapi_extra=_json_body(ScoreRequest.model_json_schema()),
)
async def score(request: Request, _: Auth, model: Model) -> JSONResponse:
    service = services(request)
    settings = service.settings
    body = validated(ScoreRequest, parse_json(await read_body(request, settings.max_body_bytes)))
    records = from_records(body.records, model.detector.schema_, ["body", "records"], settings.max_records)
    results = await _scored(service.batcher, model, records, body.fpr, body.contributions)
    # a response built from plain lists: FastAPI's validation against response_model is skipped
    return JSONResponse({"model": {"name": model.name, "version": model.version}, "results": results})


@router.post(
    "/invocations",
    response_model=InvocationsResponse,
    responses={**ERRORS, 415: UNSUPPORTED},
    openapi_extra=_json_body(InvocationsRequest.model_json_schema()),
    description="MLflow's scoring protocol: JSON (`dataframe_split`, `dataframe_records`, `inputs` or "
    "`instances`, optional `params.fpr`) or `text/csv` (a header line, then one line per record).",
)
async def invocations(request: Request, _: Auth, model: Model) -> JSONResponse:
    service = services(request)
    settings = service.settings
    body = await read_body(request, settings.max_body_bytes)
    content_type = request.headers.get("content-type")
    records, fpr = read_invocation(body, content_type, model.detector.schema_, settings.max_records)
    results = await _scored(service.batcher, model, records, fpr, False)
    return JSONResponse({"predictions": results})


async def _scored(
    batcher: ScoreBatcher, model: LoadedModel, records: Records, fpr: float | None, contributions: bool
) -> list[dict[str, Any]]:
    """One result per record; the library's refusal of a record as a 422 at its field path."""
    try:
        return await batcher.score(model, records.columns, fpr, contributions)
    except (ValueError, TypeError) as error:
        raise records.refused(error) from None
