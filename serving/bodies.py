"""Reading request bodies: the size limit while reading (before parsing anything), UTF-8, strict JSON and
CSV. Every refusal is an ``ApiError`` naming where in the body the problem is."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from decimal import Decimal
from typing import Any

import pandas as pd
from starlette.requests import ClientDisconnect, Request

from serving.errors import ApiError, Loc
from serving.openapi import LARGEST_NUMBER

JSON, CSV = "application/json", "text/csv"


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body; more than ``limit`` bytes, declared or sent, is refused before it is all read."""
    declared = request.headers.get("content-length")
    if declared is not None and not (declared.isascii() and declared.isdigit()):
        raise ApiError(400, ["header", "content-length"], "Content-Length is not a number", "invalid_header")
    if declared is not None and int(declared) > limit:
        raise ApiError(413, ["body"], f"request body is larger than {limit} bytes", "too_large")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiError(413, ["body"], f"request body is larger than {limit} bytes", "too_large")
    except ClientDisconnect:
        raise ApiError(400, ["body"], "the client disconnected before sending the whole body", "disconnect") from None
    return bytes(body)


def media_type(header: str | None, accepted: tuple[str, ...]) -> str:
    """The media type of a Content-Type header, one of ``accepted`` (JSON when the header is missing); as
    MLflow's scoring server: UTF-8 only, and no parameter but charset."""
    if header is None:
        return JSON
    kind, *parameters = (part.strip() for part in header.split(";"))
    pairs = (parameter.partition("=") for parameter in parameters)
    values = {name.strip().lower(): value.strip().strip('"') for name, _, value in pairs}
    loc: Loc = ["header", "content-type"]
    unsupported = "unsupported_media_type"
    if values.get("charset", "utf-8").lower() != "utf-8":
        raise ApiError(415, loc, "only the UTF-8 charset is supported", unsupported)
    if values.keys() - {"charset"}:
        raise ApiError(415, loc, "content type parameters other than charset are not supported", unsupported)
    if kind.lower() not in accepted:
        raise ApiError(415, loc, f"supported content types: {', '.join(accepted)}", unsupported)
    return kind.lower()


def parse_json(body: bytes) -> Any:
    """The body as JSON. ``NaN``, ``Infinity`` and numbers beyond the float range are refused (422) with
    the path to the first of them, e.g. ``["body", "records", 3, "amount"]``."""
    numbers = _StrictNumbers()
    try:
        document = json.loads(
            _text(body),
            parse_constant=numbers.parse_constant,
            parse_float=numbers.parse_float,
            parse_int=numbers.parse_int,
        )
    except json.JSONDecodeError as error:
        raise ApiError(
            400, ["body"], f"invalid JSON at line {error.lineno} column {error.colno}", "invalid_json"
        ) from None
    except RecursionError:
        raise ApiError(400, ["body"], "JSON is nested too deeply", "invalid_json") from None
    if numbers.refused:
        path, reason = _first_refused(document) or ([], numbers.refused[0])
        raise ApiError(422, ["body", *path], reason.message, "non_finite")
    return document


def parse_csv(body: bytes, max_records: int) -> pd.DataFrame:
    """The body as CSV (a header line of column names, then one line per record), read as the batch job
    reads files. Every line must have as many fields as the header, and names must not repeat."""
    text = _text(body).removeprefix("\ufeff")
    lines = csv.reader(io.StringIO(text))
    try:  # the structure first, cheaply: pandas would guess at ragged lines and is slow on wide headers
        header = next((line for line in lines if line), None)
        if header is None:
            raise ApiError(400, ["body"], "empty CSV: expected a header line of column names", "invalid_csv")
        repeated = sorted(name for name, count in Counter(header).items() if count > 1)
        if repeated:
            raise ApiError(422, ["body"], f"repeated column name(s): {repeated}", "invalid_csv")
        n = 0
        for fields in lines:
            if not fields:  # blank lines are skipped, as pandas does
                continue
            if len(fields) != len(header):
                message = f"line {lines.line_num} has {len(fields)} fields, the header {len(header)}"
                raise ApiError(400, ["body", n], message, "invalid_csv")
            n += 1
            if n > max_records:
                raise ApiError(413, ["body"], f"more than {max_records} records; at most {max_records}", "too_large")
    except csv.Error as error:
        raise ApiError(400, ["body"], f"invalid CSV at line {lines.line_num}: {error}", "invalid_csv") from None
    try:
        frame = pd.read_csv(io.StringIO(text), index_col=False)
    except ValueError as error:
        raise ApiError(400, ["body"], f"invalid CSV: {error}", "invalid_csv") from None
    if list(frame.columns) != header or len(frame) != n:
        raise ApiError(400, ["body"], "ambiguous CSV: quote fields with commas, quotes or line breaks", "invalid_csv")
    return frame


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, ["body"], "request body is not valid UTF-8", "invalid_encoding") from None


class _Refused:
    """Stands in for a refused number in the parsed document, so that its path can be named."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _StrictNumbers:
    """json.loads hooks for one document: numbers as usual; NaN, Infinity and out-of-range ones refused."""

    def __init__(self) -> None:
        self.refused: list[_Refused] = []

    def parse_constant(self, token: str) -> _Refused:
        return self._refuse(f"{token} is not a JSON number; send null for a missing value")

    def parse_float(self, text: str) -> float | _Refused:
        value = float(text)
        if abs(value) >= 1e307 and self._out_of_range(Decimal(text)):  # exactly as the published bound reads
            return self._refuse("a number is out of range for a 64-bit float")
        return value

    def parse_int(self, text: str) -> int | _Refused:
        value = int(text)
        if len(text) > 300 and self._out_of_range(Decimal(value)):
            return self._refuse("a number is out of range for a 64-bit float")
        return value

    @staticmethod
    def _out_of_range(value: Decimal) -> bool:
        return value.copy_abs() > LARGEST_NUMBER  # copy_abs: exact (abs() rounds to 28 digits)

    def _refuse(self, message: str) -> _Refused:
        refused = _Refused(message)
        self.refused.append(refused)
        return refused


def _first_refused(document: Any) -> tuple[Loc, _Refused] | None:
    """The path to the first refused number in document order (iterative: documents may be deep)."""
    stack: list[tuple[Any, Loc]] = [(document, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _Refused):
            return path, node
        if isinstance(node, dict):
            children: list[tuple[str | int, Any]] = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        else:
            continue
        stack.extend((child, [*path, key]) for key, child in reversed(children))
    return None
