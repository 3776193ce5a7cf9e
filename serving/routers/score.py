"""``POST /v1/score`` (records, per-request fpr and contributions) and ``POST /invocations`` (MLflow's
scoring protocol, serving/invocations.py).

A body is read by hand (its size limit first, numbers strictly, serving/bodies.py), so its schema is
declared here; once a model is loaded, serving/openapi.py replaces it with one naming the model's columns.
Records are micro-batched with those of concurrent requests (serving/batching.py). Small work stays on
the event loop (a small batch is under a millisecond of CPU); parsing a large body, scoring a large
batch and encoding a large answer run in the app's worker thread (serving/offload.py), so that probes
and other requests are answered meanwhile.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from serving import images
from serving.batching import ScoreBatcher
from serving.bodies import parse_json, read_body
from serving.dependencies import Auth, Model, services
from serving.invocations import read_invocation
from serving.model_store import LoadedModel
from serving.offload import INLINE_BYTES, INLINE_RECORDS, json_answer
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
async def score(request: Request, _: Auth, model: Model) -> Response:
    service = services(request)
    settings = service.settings
    raw = await read_body(request, settings.max_body_bytes)
    if model.detector.kind == "image":
        return await images.score_request(service, model, raw)
    body, records = await service.offload.run(len(raw) > INLINE_BYTES, _read_score, raw, model, settings.max_records)
    results = await _scored(service.batcher, model, records, body.fpr, body.contributions)
    fpr, resolvable = model.fpr_used(body.fpr)
    # a response built from plain lists: FastAPI's validation against response_model is skipped
    return await service.offload.run(
        len(results) > INLINE_RECORDS,
        json_answer,
        {
            "model": {"name": model.name, "version": model.version},
            "fpr": fpr,
            "fpr_resolvable": resolvable,
            "results": results,
        },
    )


@router.post(
    "/invocations",
    response_model=InvocationsResponse,
    responses={**ERRORS, 415: UNSUPPORTED},
    openapi_extra=_json_body(InvocationsRequest.model_json_schema()),
    description="MLflow's scoring protocol: JSON (`dataframe_split`, `dataframe_records`, `inputs` or "
    "`instances`, optional `params.fpr`) or `text/csv` (a header line, then one line per record). The headers "
    "`anomaly-vae-fpr` and `anomaly-vae-fpr-resolvable` give the fpr used and whether the model's calibration "
    "resolves it (false: no record can be flagged at that rate).",
)
async def invocations(request: Request, _: Auth, model: Model) -> Response:
    service = services(request)
    settings = service.settings
    body = await read_body(request, settings.max_body_bytes)
    content_type = request.headers.get("content-type")
    if model.detector.kind == "image":
        return await images.invocation(service, model, body, content_type)
    schema, large = model.detector.schema_, len(body) > INLINE_BYTES
    records, fpr = await service.offload.run(large, read_invocation, body, content_type, schema, settings.max_records)
    results = await _scored(service.batcher, model, records, fpr, False)
    used, resolvable = model.fpr_used(fpr)
    # MLflow's answer has no room for them: the fpr used and whether it is resolved go in headers
    headers = {"anomaly-vae-fpr": repr(used), "anomaly-vae-fpr-resolvable": str(resolvable).lower()}
    large = len(results) > INLINE_RECORDS
    return await service.offload.run(large, json_answer, {"predictions": results}, headers)


def _read_score(raw: bytes, model: LoadedModel, max_records: int) -> tuple[ScoreRequest, Records]:
    body = validated(ScoreRequest, parse_json(raw))
    return body, from_records(body.records, model.detector.schema_, ["body", "records"], max_records)


async def _scored(
    batcher: ScoreBatcher, model: LoadedModel, records: Records, fpr: float | None, contributions: bool
) -> list[dict[str, Any]]:
    """One result per record; the library's refusal of a record as a 422 at its field path."""
    try:
        return await batcher.score(model, records.columns, fpr, contributions)
    except (ValueError, TypeError) as error:
        raise records.refused(error) from None
