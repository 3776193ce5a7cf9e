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

from anomaly_vae.tabular.schema import TabularSchema
from serving.bodies import CSV, JSON, media_type, parse_csv, parse_json
from serving.errors import ApiError, Loc
from serving.records import Records, from_frame, from_records, from_rows, from_table
from serving.schemas import FORMATS, InvocationsRequest, validated

ACCEPTED = (JSON, CSV)


def read_invocation(
    body: bytes, content_type: str | None, schema: TabularSchema, max_records: int
) -> tuple[Records, float | None]:
    """The records of an invocation, and the requested fpr (None: the model's)."""
    if media_type(content_type, ACCEPTED) == CSV:
        return from_frame(parse_csv(body, max_records), schema, ["body"], max_records), None
    request = validated(InvocationsRequest, parse_json(body))
    given = [name for name in FORMATS if getattr(request, name) is not None]
    if len(given) != 1:
        raise ApiError(422, ["body"], f"give exactly one of {', '.join(FORMATS)}")
    fpr = None if request.params is None else request.params.fpr
    loc: Loc = ["body", given[0]]
    split = request.dataframe_split
    if split is not None:
        data: Loc = [*loc, "data"]
        if split.index is not None and len(split.index) != len(split.data):
            raise ApiError(422, [*loc, "index"], "index length differs from data")
        return from_rows(split.columns, split.data, schema, data, max_records), fpr
    if request.dataframe_records is not None:
        return from_records(request.dataframe_records, schema, loc, max_records), fpr
    return _records_or_columns(getattr(request, given[0]), schema, loc, max_records), fpr


def _records_or_columns(value: Any, schema: TabularSchema, loc: Loc, max_records: int) -> Records:
    """``inputs`` / ``instances``: a list of records, or an object of columns."""
    if isinstance(value, list):
        return from_records(value, schema, loc, max_records)
    if isinstance(value, dict):
        return from_table(value, schema, loc, max_records)
    raise ApiError(422, loc, "expected a list of records or an object of columns")
