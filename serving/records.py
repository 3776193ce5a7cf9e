"""Request data as the model's column arrays, in its column order, each error with its field path.

Records come as a list of objects (``records``, ``dataframe_records``, ``inputs``/``instances`` as a
list), as an object of columns (``inputs``/``instances``), as split rows (``dataframe_split``) or as a
CSV table. A record must carry every column and no other (``null`` is the way to send a missing value).
Values are validated by the library; its errors name the row and column, which ``library_error`` turns
into the field path of the format the request used (a ``Where``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from anomaly_vae.tabular.schema import NUMERIC
from serving.errors import ApiError, Loc
from serving.model_store import LoadedModel

Columns = dict[str, np.ndarray]
Where = Callable[[int, str | None], Loc]  # the field path of record i's column (None: the record)
_JSON_NUMBER_TYPES = {int, float, type(None)}


def check_batch(n: int, limit: int, loc: Loc) -> None:
    if n == 0:
        raise ApiError(422, loc, "at least one record is needed")
    if n > limit:
        raise ApiError(413, loc, f"{n} records; at most {limit} per request", "too_large")


def from_records(records: list[dict[str, Any]], model: LoadedModel, loc: Loc) -> tuple[Columns, Where]:
    """Columns of a list of records; record i's column is at ``[*loc, i, column]``."""
    names = list(model.detector.feature_names_in_)
    expected = set(names)
    for i, record in enumerate(records):
        if record.keys() != expected:
            _check_names(record.keys(), expected, [*loc, i])
    columns = {}
    for name in names:
        values = np.empty(len(records), dtype=object)
        values[:] = [record[name] for record in records]
        columns[name] = values
    return columns, lambda i, column: [*loc, i] if column is None else [*loc, i, column]


def from_table(table: dict[str, Any], model: LoadedModel, loc: Loc) -> tuple[Columns, Where]:
    """Columns of an object of columns, each a list of values or one value (repeated for every record, as
    pandas does; all values single: one record); record i's column is at ``[*loc, column, i]``."""
    names = list(model.detector.feature_names_in_)
    _check_names(table.keys(), set(names), loc)
    lengths = {len(values) for values in table.values() if isinstance(values, list)}
    if len(lengths) > 1:
        raise ApiError(422, loc, f"columns have different lengths: {sorted(lengths)}")
    n = lengths.pop() if lengths else 1
    columns = {}
    for name in names:
        values = np.empty(n, dtype=object)
        values[:] = table[name] if isinstance(table[name], list) else [table[name]] * n
        columns[name] = values

    def where(i: int, column: str | None) -> Loc:
        if column is None:
            return loc
        return [*loc, column, i] if isinstance(table[column], list) else [*loc, column]

    return columns, where


def from_frame(frame: pd.DataFrame, model: LoadedModel, loc: Loc) -> tuple[Columns, Where]:
    """Columns of a parsed CSV table; record i's column is at ``[*loc, i, column]``."""
    names = list(model.detector.feature_names_in_)
    _check_names(frame.columns, set(names), loc)
    columns = {name: frame[name].to_numpy() for name in names}
    return columns, lambda i, column: [*loc, i] if column is None else [*loc, i, column]


def check_json_numbers(columns: Columns, model: LoadedModel, where: Where) -> None:
    """Numeric columns take JSON numbers or null only: "1.5" is a string (CSV text is read as numbers)."""
    for column in model.detector.schema_.of_kind(NUMERIC):
        values = columns[column.name]
        if not set(map(type, values)) <= _JSON_NUMBER_TYPES:
            i = next(i for i, v in enumerate(values) if type(v) not in _JSON_NUMBER_TYPES)
            kind = "boolean" if isinstance(values[i], bool) else "string"
            message = f"column {column.name!r}: expected a number or null, got a {kind}"
            raise ApiError(422, where(i, column.name), message)


def library_error(error: Exception, model: LoadedModel, columns: Columns, where: Where, loc: Loc) -> ApiError:
    """The library's refusal of a batch as a 422 at the first bad record and column it names."""
    schema = model.detector.schema_
    try:
        reasons = schema.invalid_rows(columns)
    except (ValueError, TypeError):
        reasons = pd.Series(dtype=object)
    if reasons.empty:
        return ApiError(422, loc, str(error))
    row, reason = int(reasons.index[0]), str(reasons.iloc[0])
    column = next((name for name in schema.names if reason.startswith(f"column {name!r}:")), None)
    return ApiError(422, where(row, column), str(error))


def _check_names(given: Any, expected: set[str], loc: Loc) -> None:
    missing = sorted(expected - set(given))
    if missing:
        raise ApiError(422, loc, f"missing column(s): {missing}", "missing")
    unknown = sorted(set(given) - expected, key=str)
    if unknown:
        raise ApiError(422, loc, f"unknown column(s): {unknown}", "extra")
