"""``GET /v1/model``: the served model's name, version, default score, fpr, thresholds and columns."""

from __future__ import annotations

from fastapi import APIRouter

from serving.dependencies import Auth, Model
from serving.openapi import ERRORS
from serving.schemas import ModelDescription

router = APIRouter()


@router.get("/v1/model", response_model=ModelDescription, responses={k: ERRORS[k] for k in (401, 503)})
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
