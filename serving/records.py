"""A request's records as the model's column arrays, built in one pass, each refusal with its field path.

Records come as a list of objects (``records``, ``dataframe_records``, ``inputs``/``instances`` as a
list), as split rows (``dataframe_split``), as an object of columns (``inputs``/``instances``) or as a
CSV table. This module checks what belongs to those formats: the batch size, that each record carries
every column and no other (``null`` is the way to send a missing value), that a JSON value is a scalar,
and that a numeric column holds JSON numbers or null ("1.5" is a string; CSV text, by contrast, is read
as numbers). Each value is looked at once, as the columns are built from the parsed JSON: numeric
columns as float64 (null: NaN), the others as object arrays. A CSV table's columns are pandas'.

Everything else about the values is the library's to judge, when it encodes them: its
:class:`~anomaly_vae.errors.RecordError` names the row and column, which
:meth:`Records.refused` turns into the field path of the format the request used (a ``Where``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from anomaly_vae.errors import RecordError
from anomaly_vae.tabular.schema import NUMERIC, TabularSchema
from serving.errors import ApiError, Loc

Columns = dict[str, np.ndarray]
Where = Callable[[int, str | None], Loc]  # the field path of record i's column (None: the record)
NUMBERS = frozenset({int, float, type(None)})  # what JSON numbers and null parse to
SCALARS = NUMBERS | {str, bool}
NOT_SCALAR = "expected a number, a string, a boolean or null"


@dataclass(frozen=True)
class Records:
    """Records as column arrays (the model's columns, in its order), where each value came from
    (``where``) and where the records are as a whole (``loc``)."""

    columns: Columns
    where: Where
    loc: Loc

    def refused(self, error: ValueError | TypeError) -> ApiError:
        """The library's refusal of these records as a 422 at the record and column it names (at the
        records as a whole when it names no record)."""
        if isinstance(error, RecordError) and error.row is not None:
            return ApiError(422, self.where(error.row, error.column), str(error))
        return ApiError(422, self.loc, str(error))


def check_batch(n: int, limit: int, loc: Loc) -> None:
    if n == 0:
        raise ApiError(422, loc, "at least one record is needed")
    if n > limit:
        raise ApiError(413, loc, f"{n} records; at most {limit} per request", "too_large")


def check_names(given: Collection[Any], expected: Collection[str], loc: Loc) -> None:
    """Every column of ``expected`` given, and no other."""
    missing = sorted(set(expected) - set(given))
    if missing:
        raise ApiError(422, loc, f"missing column(s): {missing}", "missing")
    unknown = sorted(set(given) - set(expected), key=str)
    if unknown:
        raise ApiError(422, loc, f"unknown column(s): {unknown}", "extra")


def from_records(records: list[Any], schema: TabularSchema, loc: Loc, max_records: int) -> Records:
    """A list of objects; record i's column is at ``[*loc, i, column]``."""
    check_batch(len(records), max_records, loc)
    layout = _layout(schema)
    for i, record in enumerate(records):
        if type(record) is not dict:
            raise ApiError(422, [*loc, i], "expected a record: an object of column: value")
        if record.keys() != layout.expected:
            check_names(record.keys(), layout.expected, [*loc, i])

    def where(i: int, column: str | None) -> Loc:
        return [*loc, i] if column is None else [*loc, i, column]

    return Records(_arrays(list(map(layout.values, records)), layout, where), where, loc)


def from_rows(names: list[str], rows: list[list[Any]], schema: TabularSchema, loc: Loc, max_records: int) -> Records:
    """Split rows: column ``names``, then one list of values per record; record i's column is at
    ``[*loc, i, position of the column in names]``."""
    check_batch(len(rows), max_records, loc)
    for i, row in enumerate(rows):
        if len(row) != len(names):
            raise ApiError(422, [*loc, i], "row length differs from columns")
    layout = _layout(schema)
    check_names(names, layout.expected, [*loc, 0])
    position = {name: j for j, name in enumerate(names)}  # a repeated name: its last position

    def where(i: int, column: str | None) -> Loc:
        return [*loc, i] if column is None else [*loc, i, position[column]]

    pick = _getter([position[name] for name in layout.names])
    return Records(_arrays(list(map(pick, rows)), layout, where), where, loc)


def from_table(table: dict[str, Any], schema: TabularSchema, loc: Loc, max_records: int) -> Records:
    """An object of columns, each a list of values or one value (repeated for every record, as pandas
    does; all values single: one record); record i's column is at ``[*loc, column, i]``, a single value
    at ``[*loc, column]``."""
    layout = _layout(schema)
    check_names(table.keys(), layout.expected, loc)
    lengths = {len(values) for values in table.values() if isinstance(values, list)}
    if len(lengths) > 1:
        raise ApiError(422, loc, f"columns have different lengths: {sorted(lengths)}")
    n = lengths.pop() if lengths else 1
    check_batch(n, max_records, loc)

    def where(i: int, column: str | None) -> Loc:
        if column is None:
            return loc
        return [*loc, column, i] if isinstance(table[column], list) else [*loc, column]

    values = [table[name] if isinstance(table[name], list) else [table[name]] * n for name in layout.names]
    return Records(_arrays(list(zip(*values, strict=True)), layout, where), where, loc)


def from_frame(frame: pd.DataFrame, schema: TabularSchema, loc: Loc, max_records: int) -> Records:
    """A parsed CSV table, its values as pandas read them; record i's column is at ``[*loc, i, column]``."""
    check_batch(len(frame), max_records, loc)
    names = schema.names
    check_names(frame.columns, names, loc)

    def where(i: int, column: str | None) -> Loc:
        return [*loc, i] if column is None else [*loc, i, column]

    return Records({name: frame[name].to_numpy() for name in names}, where, loc)


@dataclass(frozen=True)
class _Layout:
    """A schema's columns as the request path needs them (computed once per model)."""

    names: list[str]
    expected: frozenset[str]
    numeric: list[int]  # positions of the numeric columns
    values: Callable[[Any], tuple[Any, ...]]  # a record's values in column order


@functools.lru_cache(maxsize=4)  # the served model, and those just replaced by a reload
def _layout(schema: TabularSchema) -> _Layout:
    names = schema.names
    numeric = [j for j, column in enumerate(schema.columns) if column.kind == NUMERIC]
    return _Layout(names, frozenset(names), numeric, _getter(names))


def _getter(keys: Sequence[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """``itemgetter(*keys)``, a tuple even for one key."""
    if len(keys) == 1:
        key = keys[0]
        return lambda item: (item[key],)
    return itemgetter(*keys)


def _arrays(rows: list[tuple[Any, ...]], layout: _Layout, where: Where) -> Columns:
    """The column arrays of rows of values in column order. The types of all values are looked at once;
    only when some value is not a number or null is each numeric column looked at."""
    types = set(map(type, chain.from_iterable(rows)))
    if types <= NUMBERS and len(layout.numeric) == len(layout.names):  # the usual case: one conversion
        return dict(zip(layout.names, np.array(rows, dtype=np.float64).T, strict=True))
    if not types <= SCALARS:
        found = _first(rows, range(len(layout.names)), lambda value: type(value) not in SCALARS)
        if found is not None:
            raise ApiError(422, where(found[0], layout.names[found[1]]), NOT_SCALAR)
    if not types <= NUMBERS:
        _check_numbers(rows, layout, where)
    values = np.empty((len(rows), len(layout.names)), dtype=object)
    values[...] = rows
    columns = dict(zip(layout.names, values.T, strict=True))
    numbers = values[:, layout.numeric].astype(np.float64)  # null: NaN
    columns.update(zip((layout.names[j] for j in layout.numeric), numbers.T, strict=True))
    return columns


def _check_numbers(rows: list[tuple[Any, ...]], layout: _Layout, where: Where) -> None:
    """Numeric columns take JSON numbers or null only."""
    found = _first(rows, layout.numeric, lambda value: type(value) not in NUMBERS)
    if found is not None:
        i, j = found
        kind = "boolean" if isinstance(rows[i][j], bool) else "string"
        message = f"column {layout.names[j]!r}: expected a number or null, got a {kind}"
        raise ApiError(422, where(i, layout.names[j]), message)


def _first(rows: list[tuple[Any, ...]], positions: Sequence[int], bad: Callable[[Any], bool]) -> tuple[int, int] | None:
    """(row, position) of the first value at ``positions`` that is ``bad``, rows in order; None if none."""
    return next(((i, j) for i, row in enumerate(rows) for j in positions if bad(row[j])), None)
