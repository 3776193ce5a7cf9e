"""``POST /invocations``: MLflow's scoring protocol, as ``mlflow models serve`` reads it, so that the
service is a drop-in for it.

- ``application/json`` (the default) with exactly one of ``dataframe_split`` (``columns``, ``data`` and
  an optional ``index``, which is ignored), ``dataframe_records``, ``inputs`` or ``instances``, and
  optionally ``params`` (``{"fpr": ...}``). ``inputs`` and ``instances`` take records (a list of
  objects) or columns (an object of column: list of values, or column: one value), as MLflow turns
  either into a DataFrame.
- ``text/csv``: a header line, then one line per record, read as pandas reads it (as MLflow does, and
  the batch job); no parameters.
- Anything else, or a charset other than UTF-8: 415, as MLflow answers. Parquet, which MLflow also
  takes, is refused: decompressing a small untrusted body can take unbounded memory.

The answer is MLflow's: ``{"predictions": [one object of score columns per record]}``.
"""

from __future__ import annotations

from typing import Any

from serving.bodies import CSV, JSON, media_type, parse_csv, parse_json
from serving.errors import ApiError, Loc
from serving.model_store import LoadedModel
from serving.records import Columns, Where, check_batch, check_json_numbers, from_frame, from_records, from_table
from serving.schemas import FORMATS, DataframeSplit, InvocationsRequest, validated

ACCEPTED = (JSON, CSV)


def read_invocation(
    body: bytes, content_type: str | None, model: LoadedModel, max_records: int
) -> tuple[Columns, Where, Loc, float | None]:
    """The records of an invocation as columns, where each of them came from, and the requested fpr."""
    if media_type(content_type, ACCEPTED) == CSV:
        frame = parse_csv(body, max_records)
        check_batch(len(frame), max_records, ["body"])
        columns, where = from_frame(frame, model, ["body"])
        return columns, where, ["body"], None
    request = validated(InvocationsRequest, parse_json(body))
    given = [name for name in FORMATS if getattr(request, name) is not None]
    if len(given) != 1:
        raise ApiError(422, ["body"], f"give exactly one of {', '.join(FORMATS)}")
    fpr = (request.params or {}).get("fpr")
    if fpr is not None and not (isinstance(fpr, (int, float)) and not isinstance(fpr, bool) and 0 < fpr < 1):
        raise ApiError(422, ["body", "params", "fpr"], "fpr must be a number in (0, 1)")
    key = given[0]
    loc: Loc = ["body", key]
    if request.dataframe_split is not None:
        columns, where = _split(request.dataframe_split, model, max_records)
    elif request.dataframe_records is not None:
        check_batch(len(request.dataframe_records), max_records, loc)
        columns, where = from_records(request.dataframe_records, model, loc)
    else:
        columns, where = _records_or_columns(getattr(request, key), model, max_records, loc)
    check_json_numbers(columns, model, where)
    return columns, where, loc, fpr


def _split(split: DataframeSplit, model: LoadedModel, max_records: int) -> tuple[Columns, Where]:
    loc: Loc = ["body", "dataframe_split", "data"]
    check_batch(len(split.data), max_records, loc)
    for i, row in enumerate(split.data):
        if len(row) != len(split.columns):
            raise ApiError(422, [*loc, i], "row length differs from columns")
    if split.index is not None and len(split.index) != len(split.data):
        raise ApiError(422, ["body", "dataframe_split", "index"], "index length differs from data")
    records = [dict(zip(split.columns, row, strict=True)) for row in split.data]
    columns, _ = from_records(records, model, loc)
    position = {name: j for j, name in enumerate(split.columns)}
    return columns, lambda i, column: [*loc, i] if column is None else [*loc, i, position[column]]


def _records_or_columns(value: Any, model: LoadedModel, max_records: int, loc: Loc) -> tuple[Columns, Where]:
    """``inputs`` / ``instances``: a list of records, or an object of columns."""
    if isinstance(value, list):
        for i, record in enumerate(value):
            if not isinstance(record, dict):
                raise ApiError(422, [*loc, i], "expected a record: an object of column: value")
            for name, item in record.items():
                _check_value(item, [*loc, i, name])
        check_batch(len(value), max_records, loc)
        return from_records(value, model, loc)
    if isinstance(value, dict):
        for name, column in value.items():
            if isinstance(column, list):
                for i, item in enumerate(column):
                    _check_value(item, [*loc, name, i])
            else:
                _check_value(column, [*loc, name])
        lengths = [len(column) for column in value.values() if isinstance(column, list)]
        check_batch(max(lengths, default=1), max_records, loc)
        return from_table(value, model, loc)
    raise ApiError(422, loc, "expected a list of records or an object of columns")


def _check_value(value: Any, loc: Loc) -> None:
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise ApiError(422, loc, "expected a number, a string, a boolean or null")
