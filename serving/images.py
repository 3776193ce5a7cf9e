"""Scoring images: the bodies of ``POST /v1/score`` and ``POST /invocations`` for an image model.

``/v1/score`` takes ``{"images": [{"data": "<base64 PNG/JPEG>"} | {"array": [[...]]}], "fpr": ...,
"maps": false}``; ``/invocations`` MLflow's formats with one column ``image`` of base64 files
(``dataframe_split``, ``dataframe_records``) or ``inputs`` / ``instances`` as a list of pixel arrays.
Decoding is the library's (its ``MAX_PIXELS`` refuses a decompression bomb from the file's header,
before decoding); an image it refuses is a 422 at the item's field path. Decoding and scoring run in a
worker thread: an image is milliseconds of CPU, which on the event loop would stall every other request,
``/healthz`` included.

With ``"maps": true`` each result carries its anomaly map twice: ``map_png``, a base64 PNG of the map's
heat colours over the image (white = the image's own highest pixel), and ``map``, the map averaged down
to at most ``MAP_SIDE`` x ``MAP_SIDE`` values (nats per pixel).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from starlette.responses import Response
from torch.nn import functional as F

from anomaly_vae.errors import RecordError
from anomaly_vae.image.data import decode_image_field, image_from_array
from anomaly_vae.image.detector import ImageVAEDetector
from anomaly_vae.image.pictures import encode_png, overlay
from serving.bodies import JSON, media_type, parse_json
from serving.dependencies import Services
from serving.errors import ApiError, Loc
from serving.model_store import LoadedModel
from serving.offload import json_answer
from serving.schemas import FORMATS, IMAGE_COLUMN, ImageScoreRequest, InvocationParams, validated

MAP_SIDE = 32


def decode_items(items: list[str | list[Any]], loc_of: Callable[[int], Loc]) -> list[np.ndarray]:
    """The images of base64 files (strings) and pixel arrays (nested lists); a refused one is a 422 at
    ``loc_of(position)``."""
    images = []
    for i, item in enumerate(items):
        try:
            if isinstance(item, str):
                images.append(decode_image_field(item, item=i))
            elif isinstance(item, list):
                images.append(image_from_array(item, item=i))
            else:
                raise ValueError(f"image {i}: expected a base64-encoded PNG/JPEG string or an array of pixel rows")
        except ValueError as error:
            raise ApiError(422, loc_of(i), str(error), "invalid_image") from None
    return images


def request_images(raw: bytes, max_images: int) -> tuple[ImageScoreRequest, list[np.ndarray]]:
    """The body of a ``/v1/score`` request for an image model, and its images."""
    body = validated(ImageScoreRequest, parse_json(raw))
    if len(body.images) > max_images:
        raise ApiError(413, ["body", "images"], f"at most {max_images} images per request", "too_many_records")
    items: list[str | list[Any]] = [item.data if item.data is not None else item.array for item in body.images]
    fields = ["data" if item.data is not None else "array" for item in body.images]
    return body, decode_items(items, lambda i: ["body", "images", i, fields[i]])


async def score_request(service: Services, model: LoadedModel, raw: bytes) -> Response:
    """``POST /v1/score`` for an image model: the same answer as for records, maps when asked. Parsing,
    decoding and scoring run in the worker thread."""
    body, images = await service.offload.run(True, request_images, raw, service.settings.max_records)
    results = await _scored(service, model, images, body.fpr, body.maps, ["body", "images"])
    fpr, resolvable = model.fpr_used(body.fpr)
    answer = {"model": {"name": model.name, "version": model.version}, "fpr": fpr, "fpr_resolvable": resolvable}
    return json_answer({**answer, "results": results})


async def invocation(service: Services, model: LoadedModel, raw: bytes, content_type: str | None) -> Response:
    """``POST /invocations`` for an image model (MLflow's JSON formats, see :func:`invocation_images`)."""
    if media_type(content_type, (JSON,)) != JSON:
        raise ApiError(415, ["header", "content-type"], "an image model takes JSON", "unsupported_media_type")
    data = await service.offload.run(True, parse_json, raw)
    params = validated(InvocationParams, data.get("params") or {}) if isinstance(data, dict) else None
    fpr = None if params is None else params.fpr
    images, loc = await service.offload.run(True, invocation_images, data, service.settings.max_records)
    results = await _scored(service, model, images, fpr, False, loc)
    used, resolvable = model.fpr_used(fpr)
    headers = {"anomaly-vae-fpr": repr(used), "anomaly-vae-fpr-resolvable": str(resolvable).lower()}
    return json_answer({"predictions": results}, headers)


async def _scored(
    service: Services, model: LoadedModel, images: list[np.ndarray], fpr: float | None, maps: bool, loc: Loc
) -> list[dict[str, Any]]:
    """Score in the worker thread; count the scores and feed the drift monitor on the loop."""
    detector = model.detector
    assert isinstance(detector, ImageVAEDetector)
    scores, results = await service.offload.run(True, _score, detector, images, fpr, maps, loc)
    service.metrics.observe_scores(scores, detector.default_score_)
    column = np.empty(len(images), dtype=object)
    column[:] = images
    service.monitor.observe(model, {"image": column}, scores[detector.default_score_])
    return results


def _score(
    detector: ImageVAEDetector, images: list[np.ndarray], fpr: float | None, maps: bool, loc: Loc
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """The score columns and one result dict per image, with its map when asked."""
    try:
        scores = detector.score_columns(images, fpr=fpr)
    except RecordError as error:
        raise ApiError(422, [*loc, *([] if error.row is None else [error.row])], str(error), "invalid_image") from None
    lists = {name: values.tolist() for name, values in scores.items()}
    results = [dict(zip(lists, values, strict=True)) for values in zip(*lists.values(), strict=True)]
    if maps:
        pixels = detector.preprocess(images)
        for result, image, heat in zip(results, pixels, detector.anomaly_maps(pixels), strict=True):
            picture = overlay(image[None], heat[None])[0]
            result["map_png"] = base64.b64encode(encode_png(picture)).decode("ascii")
            result["map"] = np.round(_downsampled(heat), 4).tolist()
    return scores, results


def _downsampled(heat: np.ndarray) -> np.ndarray:
    """An (H, W) map averaged down so that neither side exceeds ``MAP_SIDE``."""
    height, width = heat.shape
    size = (min(height, MAP_SIDE), min(width, MAP_SIDE))
    return F.adaptive_avg_pool2d(torch.from_numpy(heat)[None, None], size)[0, 0].numpy()


def invocation_images(data: Any, max_images: int) -> tuple[list[np.ndarray], Loc]:
    """The images of a parsed MLflow invocation body: ``dataframe_split`` / ``dataframe_records`` with one
    column ``image``, or ``inputs`` / ``instances`` as a list (or ``{"image": [...]}``); each image a
    base64 file or an array of pixel rows."""
    formats = [key for key in FORMATS if key in data] if isinstance(data, dict) else []
    if len(formats) != 1 or set(data) - {*FORMATS, "params"}:
        raise ApiError(422, ["body"], f"expected exactly one of {', '.join(FORMATS)} (and params)", "format")
    key = formats[0]
    value = data[key]
    loc: Loc = ["body", key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or value.get("columns") != [IMAGE_COLUMN]:
            raise ApiError(422, [*loc, "columns"], f"an image model takes the one column {IMAGE_COLUMN!r}", "format")
        rows, loc = value.get("data"), [*loc, "data"]
        values = [row[0] if isinstance(row, list) and len(row) == 1 else None for row in rows or []]
    elif key == "dataframe_records":
        values = [
            row.get(IMAGE_COLUMN) if isinstance(row, dict) and set(row) == {IMAGE_COLUMN} else None
            for row in value or []
        ]
    else:
        values = value[IMAGE_COLUMN] if isinstance(value, dict) and set(value) == {IMAGE_COLUMN} else value
    if not isinstance(values, list) or not values:
        raise ApiError(422, loc, "expected a non-empty list of images", "format")
    if len(values) > max_images:
        raise ApiError(413, loc, f"at most {max_images} images per request, got {len(values)}", "too_many_records")
    return decode_items(values, lambda i: [*loc, i]), loc
