"""What comes in, and whether it can be encoded: input adaptation (a DataFrame, a 2-D array or a mapping of
column arrays), the column check, and the per-row value checks a :class:`~anomaly_vae.tabular.schema.
TabularSchema` runs before encoding.

Problems are :class:`~anomaly_vae.errors.RecordError`: a ``ValueError`` that says which row (position)
and which column, so the batch job can set rows aside and the service can answer with the field path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from anomaly_vae.errors import RecordError

TRUE = {True, "true", "True", "TRUE", "1"}
FALSE = {False, "false", "False", "FALSE", "0"}

Columns = pd.DataFrame | Mapping[str, np.ndarray]  # column name -> values, one per row


def frame_from_input(X: Any, feature_names: list[str] | None = None) -> pd.DataFrame:
    """A DataFrame from a DataFrame or a 2-D array-like (columns ``x0..x{d-1}``)."""
    if isinstance(X, pd.DataFrame):
        if not all(isinstance(c, str) for c in X.columns):
            raise ValueError("column names must be strings, got: " + repr([c for c in X.columns][:5]))
        if X.columns.has_duplicates:
            raise ValueError(f"duplicate column names: {sorted(set(X.columns[X.columns.duplicated()]))}")
        return X
    if hasattr(X, "tocsr"):
        raise TypeError("sparse input is not supported: pass a dense array or a DataFrame")
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(
            f"expected a 2-D array (n_samples, n_features), got shape {array.shape}. "
            "Reshape your data: array.reshape(-1, 1) for one feature, array.reshape(1, -1) for one sample"
        )
    if np.iscomplexobj(array):
        raise ValueError("Complex data not supported")
    if array.shape[1] == 0:
        raise ValueError(f"0 feature(s) (shape={array.shape}) while a minimum of 1 is required")
    names = feature_names or [f"x{i}" for i in range(array.shape[1])]
    if len(names) != array.shape[1]:
        raise ValueError(f"X has {array.shape[1]} features, but the model was fitted with {len(names)}")
    return pd.DataFrame(array, columns=names)


def columns_from_input(X: Any, feature_names: list[str]) -> dict[str, np.ndarray]:
    """Column arrays from a DataFrame, a mapping of column name to 1-D values, or a 2-D array-like.

    The mapping form skips pandas entirely (the real-time API builds it straight from JSON records).
    """
    if isinstance(X, Mapping):
        columns = {str(name): np.asarray(values) for name, values in X.items()}
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns have different lengths: {sorted(lengths)}")
        return columns
    frame = frame_from_input(X, feature_names)
    return {name: frame[name].to_numpy() for name in frame.columns}


def check_columns(names: list[str], columns: Columns) -> None:
    """Every column of ``names`` present, and no other."""
    present = set(columns.keys())
    missing = [n for n in names if n not in present]
    if missing:
        raise RecordError(f"missing column(s): {missing}", column=missing[0])
    unknown = sorted(present - set(names), key=str)
    if unknown:
        raise RecordError(f"unknown column(s) not seen in training: {unknown}", column=str(unknown[0]))


def _is_missing(value: Any) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _is_boolish(value: Any) -> bool:
    try:
        return value in TRUE or value in FALSE
    except TypeError:  # unhashable
        return False


def plain_number_block(arrays: list[np.ndarray], n: int) -> np.ndarray | None:
    """The columns as one (n, len(arrays)) float64 block when every value is a plain number or None (the
    usual case, checked in one pass, not per column); None when a column needs a closer look."""
    if not arrays:
        return np.empty((n, 0))
    if all(a.dtype.kind in "fiu" for a in arrays):  # stacked as rows (plain copies), returned transposed
        return np.stack(arrays).astype(np.float64, copy=False).T
    block = np.column_stack(arrays)
    if block.dtype != object or not all(_is_plain_number(t) for t in set(map(type, block.flat))):
        return None
    try:
        return block.astype(np.float64)
    except OverflowError:  # an integer beyond float range
        return None


def _is_plain_number(kind: type) -> bool:
    return kind is type(None) or (issubclass(kind, (int, float, np.integer, np.floating)) and kind is not bool)


def as_float(values: np.ndarray) -> np.ndarray:
    """float64 values; anything that is not a number becomes NaN, integers beyond float range +-inf (rows
    are validated before)."""
    try:  # numbers, numeric strings and None convert directly
        return values.astype(np.float64)
    except (TypeError, ValueError, OverflowError):
        pass
    try:
        return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(np.float64, na_value=np.nan)
    except OverflowError:
        return np.fromiter(map(_one_float, values), dtype=np.float64, count=len(values))


def _one_float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond float range
        return math.inf if value > 0 else -math.inf
    except (TypeError, ValueError):
        return math.nan


def numeric_problems(values: np.ndarray, coerced: np.ndarray) -> list[tuple[int, str]]:
    """Bad rows of a numeric column; ``coerced`` is ``as_float(values)``."""
    if values.dtype.kind == "b":
        return [(i, "expected a number, got a boolean") for i in range(len(values))]
    if values.dtype.kind in "fiu":
        return [(int(i), "infinite value") for i in np.flatnonzero(np.isinf(coerced))]
    is_bool = np.fromiter((isinstance(v, (bool, np.bool_)) for v in values), dtype=bool, count=len(values))
    wrong = ~pd.isna(values) & (np.isnan(coerced) | is_bool)
    problems = [(int(i), f"expected a number, got {type(values[i]).__name__}") for i in np.flatnonzero(wrong)]
    return problems + [(int(i), "infinite value") for i in np.flatnonzero(np.isinf(coerced) & ~wrong)]


def boolean_problems(values: np.ndarray) -> list[tuple[int, str]]:
    if values.dtype.kind == "b":
        return []
    bad = [i for i, v in enumerate(values) if not _is_missing(v) and not _is_boolish(v)]
    return [(i, "expected a boolean") for i in bad]
