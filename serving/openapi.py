"""The OpenAPI document: error responses declared on every route, and request bodies that describe the
served model's columns, so that a request valid under the published schema is one the service scores
(checked by schemathesis in tests/serving/test_fuzz.py)."""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any

from fastapi import FastAPI

from anomaly_vae.image.data import CHANNEL_NAMES, ImageShape
from anomaly_vae.tabular.schema import BOOLEAN, NUMERIC, TabularSchema
from serving.model_store import ModelStore
from serving.schemas import IMAGE_COLUMN, ErrorBody, ImageScoreRequest

_ERROR = {"model": ErrorBody}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {**_ERROR, "description": "Body is not JSON, not UTF-8, or nested too deeply"},
    401: {**_ERROR, "description": "Missing or wrong bearer token (when auth is on)"},
    413: {**_ERROR, "description": "Body or batch larger than the configured limit"},
    422: {**_ERROR, "description": "A field or value is invalid; `loc` names it"},
    503: {**_ERROR, "description": "Model not loaded yet, or too many requests in flight (see Retry-After)"},
}
UNSUPPORTED = {**_ERROR, "description": "Content type other than application/json or text/csv, or not UTF-8"}
_LARGEST = sys.float_info.max
# The bound as JSON Schema reads it (the decimal number printed, 1.7976931348623157e+308): the service
# refuses any number beyond it, compared exactly, so that schema and service agree to the last digit.
LARGEST_NUMBER = Decimal(repr(_LARGEST))
_BOOLEAN_VALUES = [True, False, 1, 0, "true", "True", "TRUE", "1", "false", "False", "FALSE", "0", None]


def column_schema(kind: str) -> dict[str, Any]:
    """What the service accepts in a column of this kind (null = missing)."""
    if kind == NUMERIC:
        return {"anyOf": [{"type": "number", "minimum": -_LARGEST, "maximum": _LARGEST}, {"type": "null"}]}
    if kind == BOOLEAN:
        return {"enum": _BOOLEAN_VALUES}
    return {"type": ["string", "number", "boolean", "null"]}  # unknown categories are scored as such


def request_schemas(schema: TabularSchema, max_records: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The /v1/score and /invocations request bodies for a model with this schema."""
    names = [c.name for c in schema.columns]
    record = {
        "type": "object",
        "properties": {c.name: column_schema(c.kind) for c in schema.columns},
        "required": names,
        "additionalProperties": False,
    }
    records = {"type": "array", "items": record, "minItems": 1, "maxItems": max_records}
    fpr = {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, {"type": "null"}]}
    score = {
        "type": "object",
        "properties": {"records": records, "fpr": fpr, "contributions": {"type": "boolean"}},
        "required": ["records"],
        "additionalProperties": False,
    }
    row = {
        "type": "array",
        "prefixItems": [column_schema(c.kind) for c in schema.columns],
        "items": False,
        "minItems": len(names),
        "maxItems": len(names),
    }
    split = {
        "type": "object",
        "properties": {
            "columns": {"const": names},
            "data": {"type": "array", "items": row, "minItems": 1, "maxItems": max_records},
        },
        "required": ["columns", "data"],
        "additionalProperties": False,
    }
    params = {"anyOf": [{"type": "object", "properties": {"fpr": fpr}}, {"type": "null"}]}
    # inputs and instances also take an object of columns (serving/invocations.py); JSON Schema cannot say
    # that its lists must have one length, so only the records form is published
    formats = {"dataframe_split": split, "dataframe_records": records, "inputs": records, "instances": records}

    def protocol(key: str) -> dict[str, Any]:
        others = {other: {"type": "null"} for other in formats if other != key}
        return {
            "type": "object",
            "properties": {key: formats[key], **others, "params": params},
            "required": [key],
            "additionalProperties": False,
        }

    return score, {"oneOf": [protocol(key) for key in formats]}


def image_request_schemas(shape: ImageShape, max_images: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The /v1/score and /invocations request bodies for an image model of this shape."""
    size = f"{shape.height} x {shape.width} x {shape.channels} ({CHANNEL_NAMES[shape.channels]})"
    score = ImageScoreRequest.model_json_schema()
    score["properties"]["images"] |= {
        "maxItems": max_images,
        "description": f"the images to score; the model works at {size}, other sizes are resized to it",
    }
    image = {"type": "string", "description": "a PNG or JPEG file, base64-encoded"}
    images = {"type": "array", "items": image, "minItems": 1, "maxItems": max_images}
    split = {
        "type": "object",
        "properties": {
            "columns": {"const": [IMAGE_COLUMN]},
            "data": {"type": "array", "items": {"type": "array", "prefixItems": [image], "items": False}},
        },
        "required": ["columns", "data"],
    }
    records = {
        "type": "array",
        "items": {"type": "object", "properties": {IMAGE_COLUMN: image}, "required": [IMAGE_COLUMN]},
    }
    formats = {"dataframe_split": split, "dataframe_records": records, "inputs": images, "instances": images}
    return score, {
        "oneOf": [{"type": "object", "properties": {key: value}, "required": [key]} for key, value in formats.items()]
    }


def install(app: FastAPI, store: ModelStore, max_records: int) -> None:
    """Serve an OpenAPI document whose request bodies follow the model being served."""

    def openapi() -> dict[str, Any]:
        app.openapi_schema = None  # rebuilt on each call (rare): the model may have been reloaded
        spec = FastAPI.openapi(app)
        detector = None if store.current is None else store.current.detector
        if detector is not None:
            if detector.kind == "image":
                score, invocations = image_request_schemas(detector.image_shape_, max_records)
            else:
                score, invocations = request_schemas(detector.schema_, max_records)
            for path, body in (("/v1/score", score), ("/invocations", invocations)):
                spec["paths"][path]["post"]["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                }
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
