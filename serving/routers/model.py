"""``GET /v1/model``: the served model's name, version, default score, fpr (and the smallest one its
calibration resolves), thresholds and its input: the columns of a tabular model, the image size of an
image model (images of other sizes are resized to it)."""

from __future__ import annotations

from fastapi import APIRouter

from anomaly_vae.image.data import MAX_PIXELS
from serving.dependencies import Auth, Model
from serving.openapi import ERRORS
from serving.schemas import ModelDescription

router = APIRouter()


@router.get("/v1/model", response_model=ModelDescription, responses={k: ERRORS[k] for k in (401, 503)})
async def describe(_: Auth, model: Model) -> ModelDescription:
    detector = model.detector
    fpr, resolvable = model.fpr_used(None)
    if detector.kind == "image":
        shape = detector.image_shape_
        image = {"height": shape.height, "width": shape.width, "channels": shape.channels, "max_pixels": MAX_PIXELS}
    return ModelDescription(
        name=model.name,
        version=model.version,
        kind=detector.kind,
        default_score=detector.default_score_,
        fpr=fpr,
        smallest_fpr=detector.calibration_.smallest_fpr,
        fpr_resolvable=resolvable,
        thresholds=detector.thresholds(),
        columns=[
            {
                "name": c.name,
                "kind": c.kind,
                "context": c.context,  # a conditional model's context column: required, not scored
                **({"categories": c.categories} if c.kind == "categorical" else {}),
            }
            for c in (detector.schema_.columns if detector.kind == "tabular" else [])
        ],
        image=image if detector.kind == "image" else None,
    )
