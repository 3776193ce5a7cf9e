"""Tabular schema: which columns exist, how each is encoded, and input validation.

A :class:`TabularSchema` is fitted on the training frame and saved with the model. It turns a frame into
an :class:`EncodedBatch` of three arrays (numeric, categorical, boolean) and rejects what it cannot
encode with a ``ValueError`` that names the column.

Numeric columns are robust-scaled, ``(x - median) / scale`` with ``scale`` the normal-consistent IQR
(falling back to the MAD, the standard deviation, then 1 for constant columns), and then soft-clipped
beyond ``±SOFT_CLIP`` with a logarithm so a heavy tail cannot dominate training. The transform is
monotone, so extreme values stay extreme. A numeric column whose values lie on a grid (counts, flags,
rounded values) keeps the grid's step (``Column.step``; its centre is then a grid point, and
:meth:`TabularSchema.decode` puts values back on the grid). Categorical columns keep a vocabulary of
their most frequent values; index 0 is the unknown bucket. Booleans are 0/1. Missing values are NaN
(numeric, boolean) or -1 (categorical) and are left out of the likelihood.

Context columns (``context_columns``, for a conditional model) are encoded the same way but are inputs,
not modelled: :meth:`TabularSchema.split` separates them, and a missing value in a context column that
had none in training is an invalid row. :meth:`TabularSchema.decode` inverts the encoding for sampling.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from anomaly_vae.errors import RecordError
from anomaly_vae.tabular.scaling import SOFT_CLIP, grid_step, robust_center_scale, snap, soft_clip
from anomaly_vae.tabular.validation import (
    TRUE,
    Columns,
    as_float,
    boolean_problems,
    check_columns,
    numeric_problems,
    plain_number_block,
)

UNKNOWN = "<unknown>"
NUMERIC, CATEGORICAL, BOOLEAN = "numeric", "categorical", "boolean"


@dataclass(frozen=True)
class EncodedBatch:
    """Model-ready arrays. Missing entries: NaN in ``numeric`` and ``boolean``, -1 in ``categorical``."""

    numeric: np.ndarray  # (n, n_numeric) float32
    categorical: np.ndarray  # (n, n_categorical) int64
    boolean: np.ndarray  # (n, n_boolean) float32

    def __len__(self) -> int:
        return len(self.numeric)


@dataclass
class Column:
    name: str
    kind: str
    center: float = 0.0
    scale: float = 1.0
    categories: list[str] = field(default_factory=list)  # without the unknown bucket
    missing_rate: float = 0.0
    step: float = 0.0  # of the grid a numeric column's values lie on (counts, flags); 0: continuous
    dtype: str = ""  # the training frame's dtype, restored by decode ("" for models saved before it was kept)
    context: bool = False  # an input of a conditional model, not modelled

    @property
    def n_categories(self) -> int:
        """Categories including the unknown bucket at index 0."""
        return len(self.categories) + 1


def decode_numeric(encoded: np.ndarray, column: Column) -> np.ndarray:
    """Raw values of encoded numeric values: the inverse of ``soft_clip((x - center) / scale)``."""
    encoded = np.asarray(encoded, dtype=np.float64)
    excess = np.maximum(np.abs(encoded) - SOFT_CLIP, 0.0)
    unclipped = np.where(excess > 0, np.sign(encoded) * (SOFT_CLIP + np.expm1(excess)), encoded)
    return column.center + column.scale * unclipped


def _infer_kind(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series.dtype):
        return BOOLEAN
    if pd.api.types.is_numeric_dtype(series.dtype):
        return NUMERIC
    present = series.dropna()
    if len(present) and present.map(lambda v: isinstance(v, (bool, np.bool_))).all():
        return BOOLEAN
    return CATEGORICAL


class TabularSchema:
    """The columns of the training frame and how each one is encoded."""

    def __init__(self, columns: list[Column]) -> None:
        self.columns = columns

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        *,
        categorical_columns: list[str] | tuple[str, ...] = (),
        max_categories: int = 100,
        context_columns: list[str] | tuple[str, ...] = (),
    ) -> TabularSchema:
        if frame.shape[1] == 0:
            raise ValueError("X has no columns")
        for option, names in (("categorical_columns", categorical_columns), ("condition_on", context_columns)):
            unknown = [c for c in names if c not in frame.columns]
            if unknown:
                raise ValueError(f"{option} not in X: {unknown}")
        if set(frame.columns) <= set(context_columns):
            raise ValueError("condition_on names every column: at least one column must be left to model")
        columns = []
        for name in frame.columns:
            series = frame[name]
            kind = CATEGORICAL if name in categorical_columns else _infer_kind(series)
            column = Column(
                name=name,
                kind=kind,
                missing_rate=float(series.isna().mean()),
                dtype=str(series.dtype),
                context=name in context_columns,
            )
            if kind == NUMERIC:
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                if np.isinf(values).any():
                    raise ValueError(f"column {name!r} contains infinite values")
                column.center, column.scale = robust_center_scale(values)
                column.step = grid_step(values)
                if column.step:  # keep the centre on the grid, so decoded values can be put back on it
                    column.center = float(snap(np.array([column.center]), np.nanmin(values), column.step)[0])
            elif kind == CATEGORICAL:
                counts = pd.Series(category_keys(series.dropna().to_numpy(dtype=object))).value_counts(sort=False)
                counts = counts.sort_index().sort_values(ascending=False, kind="stable")
                column.categories = [str(c) for c in counts.index[:max_categories]]
            _warn_if_uninformative(series, column)
            columns.append(column)
        return cls(columns)

    # ------------------------------------------------------------------ properties
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def subset(self, *, context: bool) -> TabularSchema:
        """The modelled columns (``context=False``) or the context columns, in the same order."""
        return TabularSchema([c for c in self.columns if c.context == context])

    def of_kind(self, kind: str) -> list[Column]:
        return [c for c in self.columns if c.kind == kind]

    @property
    def feature_order(self) -> list[str]:
        """Column names in the order the model's per-feature outputs use: numeric, categorical, boolean."""
        return [c.name for kind in (NUMERIC, CATEGORICAL, BOOLEAN) for c in self.of_kind(kind)]

    def typical_record(self) -> dict[str, Any]:
        """One record of ordinary values: numeric medians, the most frequent category, False."""
        record: dict[str, Any] = {}
        for column in self.columns:
            if column.kind == NUMERIC:
                record[column.name] = column.center
            elif column.kind == CATEGORICAL:
                record[column.name] = column.categories[0] if column.categories else None
            else:
                record[column.name] = False
        return record

    def layout(self, model_missingness: bool) -> dict[str, Any]:
        """How the columns sit in a network's input: the column fields of ``anomaly_vae.tabular.model.VAEConfig``
        (``missing_features`` are the indexes in :attr:`feature_order` with missing values in training)."""
        missing_rate = {c.name: c.missing_rate for c in self.columns}
        return {
            "n_numeric": len(self.of_kind(NUMERIC)),
            "category_sizes": tuple(c.n_categories for c in self.of_kind(CATEGORICAL)),
            "n_boolean": len(self.of_kind(BOOLEAN)),
            "missing_features": tuple(
                i for i, name in enumerate(self.feature_order) if model_missingness and missing_rate[name] > 0
            ),
        }

    # ------------------------------------------------------------------ validation
    def invalid_rows(self, columns: Columns) -> pd.Series:
        """Reason per row that cannot be encoded (wrong type, infinity); empty when all rows are fine.

        Indexed by row position, in order. Only the first problem of a row is reported.
        """
        check_columns(self.names, columns)
        return _reasons(self._checked_numeric(columns)[1])

    def _checked_numeric(self, columns: Columns) -> tuple[np.ndarray, dict[int, tuple[str, str]]]:
        """The numeric columns as one (n, n_numeric) float64 block, and the first bad column of each bad row
        with why, in row order."""
        numeric = self.of_kind(NUMERIC)
        arrays = [np.asarray(columns[c.name]) for c in numeric]
        block = plain_number_block(arrays, len(columns[self.names[0]]))
        if block is None:  # some column holds more than plain numbers: every column gets a close look
            block = np.column_stack([as_float(a) for a in arrays])
            suspect = set(range(len(arrays)))
        else:
            suspect = set(np.flatnonzero(np.isinf(block).any(axis=0)).tolist())
        position = {c.name: j for j, c in enumerate(numeric)}
        reasons: dict[int, tuple[str, str]] = {}
        for column in self.columns:  # in schema order, so a row reports its first bad column
            if column.context and column.missing_rate == 0:
                for gap in np.flatnonzero(pd.isna(np.asarray(columns[column.name]))).tolist():
                    reasons.setdefault(gap, (column.name, "context value is missing"))
            if column.kind == NUMERIC:
                j = position[column.name]
                if j not in suspect:
                    continue
                problems = numeric_problems(arrays[j], block[:, j])
            elif column.kind == BOOLEAN:
                problems = boolean_problems(np.asarray(columns[column.name]))
            else:
                continue  # any value is a category (unseen ones go to the unknown bucket)
            for row, why in problems:
                reasons.setdefault(row, (column.name, why))
        return block, dict(sorted(reasons.items()))

    # ------------------------------------------------------------------ encoding
    def encode(self, columns: Columns) -> EncodedBatch:
        """Encode a DataFrame or a mapping of column arrays; raises :class:`RecordError` at the first bad row
        and its column."""
        check_columns(self.names, columns)
        raw, reasons = self._checked_numeric(columns)
        if reasons:
            row, (column, why) = next(iter(reasons.items()))
            more = f" ({len(reasons) - 1} more bad rows)" if len(reasons) > 1 else ""
            raise RecordError(f"row {row}: column {column!r}: {why}{more}", row=row, column=column)
        return self._encode_rows(columns, raw, None)

    def partition(self, columns: Columns) -> tuple[EncodedBatch, pd.Series]:
        """The rows that can be encoded, encoded, and the reason for each row that cannot (as
        :meth:`invalid_rows`): one validation pass for callers that set bad rows aside instead of failing."""
        check_columns(self.names, columns)
        raw, reasons = self._checked_numeric(columns)
        if not reasons:
            return self._encode_rows(columns, raw, None), pd.Series(dtype=object)
        keep = np.ones(len(raw), dtype=bool)
        keep[list(reasons)] = False
        return self._encode_rows(columns, raw[keep], keep), _reasons(reasons)

    def _encode_rows(self, columns: Columns, raw: np.ndarray, keep: np.ndarray | None) -> EncodedBatch:
        """Encode the rows ``keep`` (all when None) of valid columns; ``raw``: their numeric block, float64,
        which is overwritten."""
        n = len(raw)
        centers = np.array([c.center for c in self.of_kind(NUMERIC)])
        scales = np.array([c.scale for c in self.of_kind(NUMERIC)])
        raw -= centers
        raw /= scales
        numeric = np.empty(raw.shape, dtype=np.float32)  # C order whatever the order of raw
        numeric[...] = soft_clip(raw, in_place=True)  # clipped first: a huge value must not overflow float32
        categorical = np.empty((n, len(self.of_kind(CATEGORICAL))), dtype=np.int64)
        for j, column in enumerate(self.of_kind(CATEGORICAL)):
            lookup = {c: i + 1 for i, c in enumerate(column.categories)}
            values = _rows(columns[column.name], keep)
            codes = np.fromiter((lookup.get(key, 0) for key in category_keys(values)), dtype=np.int64, count=n)
            codes[pd.isna(values)] = -1
            categorical[:, j] = codes
        boolean = np.empty((n, len(self.of_kind(BOOLEAN))), dtype=np.float32)
        for j, column in enumerate(self.of_kind(BOOLEAN)):
            values = _rows(columns[column.name], keep)
            boolean[:, j] = np.fromiter((v in TRUE for v in values), dtype=np.float32, count=n)
            boolean[pd.isna(values), j] = np.nan
        return EncodedBatch(numeric, categorical, boolean)

    def split(self, batch: EncodedBatch) -> tuple[EncodedBatch, EncodedBatch]:
        """The modelled part and the context part of a batch encoded by this schema."""
        if not any(c.context for c in self.columns):  # unconditional: no copies
            n = len(batch)
            return batch, EncodedBatch(
                np.empty((n, 0), np.float32), np.empty((n, 0), np.int64), np.empty((n, 0), np.float32)
            )
        parts = []
        for context in (False, True):
            keep = [[c.context == context for c in self.of_kind(kind)] for kind in (NUMERIC, CATEGORICAL, BOOLEAN)]
            parts.append(
                EncodedBatch(batch.numeric[:, keep[0]], batch.categorical[:, keep[1]], batch.boolean[:, keep[2]])
            )
        return parts[0], parts[1]

    def decode(self, batch: EncodedBatch) -> pd.DataFrame:
        """The inverse of :meth:`encode`: original units, category labels (the unknown bucket becomes
        ``"<unknown>"``), booleans, missing values, and the training dtypes where the values allow them."""
        values: dict[str, np.ndarray] = {}
        for j, column in enumerate(self.of_kind(NUMERIC)):
            decoded = decode_numeric(batch.numeric[:, j], column)
            values[column.name] = snap(decoded, column.center, column.step) if column.step else decoded
        for j, column in enumerate(self.of_kind(CATEGORICAL)):
            labels = np.array([None, *column.categories], dtype=object)  # None: filled with UNKNOWN below
            codes = batch.categorical[:, j]
            decoded = labels[codes.clip(min=0)]
            decoded[codes == 0] = UNKNOWN
            decoded[codes < 0] = None
            values[column.name] = decoded
        for j, column in enumerate(self.of_kind(BOOLEAN)):
            flags = batch.boolean[:, j]
            decoded = (flags > 0.5).astype(object)
            decoded[np.isnan(flags)] = None
            values[column.name] = decoded
        return pd.DataFrame({c.name: restore_dtype(values[c.name], c) for c in self.columns})

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {"columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TabularSchema:
        return cls([Column(**c) for c in data["columns"]])


def category_keys(values: np.ndarray) -> list[str]:
    """Categories as text; integral floats print as integers (a CSV column of ints with gaps reads as float)."""
    return [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in values]


def restore_dtype(values: np.ndarray, column: Column) -> pd.Series:
    """``values`` in the column's training dtype when they fit it (e.g. rounded integers, category
    labels back to numbers); as they are (float64 or object) otherwise, e.g. when some are missing."""
    series = pd.Series(values)
    if not column.dtype:
        return series
    target = pd.api.types.pandas_dtype(column.dtype)
    if column.kind == NUMERIC and target.kind in "iu":
        info = np.iinfo(getattr(target, "numpy_dtype", target))
        series = series.round().clip(info.min, info.max)
    if column.kind == CATEGORICAL and isinstance(target, pd.CategoricalDtype):
        return series.astype(pd.CategoricalDtype(column.categories))
    try:
        return series.astype(target)
    except (TypeError, ValueError):
        return series


class ColumnWarning(UserWarning):
    """A training column that will not help the model (an identifier, a constant)."""


ID_SHARE = 0.95  # a string or integer column with at least this share of distinct values looks like an id


def _warn_if_uninformative(series: pd.Series, column: Column) -> None:
    """Warn about identifier-like columns (nearly all values distinct strings or integers: every new record
    is unseen, so the column dominates the score) and constant ones (no information)."""
    present = series.dropna()
    distinct = present.nunique()
    drop = f"drop it before fitting (anomaly-vae train --drop-columns {column.name})"
    if distinct <= 1 and column.missing_rate == 0:
        message = f"column {column.name!r} is constant in the training data and carries no information; {drop}"
    elif len(present) >= 20 and distinct >= ID_SHARE * len(present) and _is_discrete(series):
        message = (
            f"column {column.name!r} looks like an identifier ({distinct:,} distinct values in {len(present):,} "
            f"rows): a key says nothing about what normal records look like, and new keys look anomalous; {drop}"
        )
    else:
        return
    warnings.warn(message, ColumnWarning, stacklevel=4)  # the caller of VAEDetector.fit


def _is_discrete(series: pd.Series) -> bool:
    """Integers, strings, objects or categories (not floats, whose values are all distinct as a rule)."""
    return not pd.api.types.is_float_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def _reasons(problems: dict[int, tuple[str, str]]) -> pd.Series:
    """Why each bad row cannot be encoded, as text, indexed by row position."""
    return pd.Series({row: f"column {column!r}: {why}" for row, (column, why) in problems.items()}, dtype=object)


def _rows(values: Any, keep: np.ndarray | None) -> np.ndarray:
    values = np.asarray(values, dtype=object)
    return values if keep is None else values[keep]
