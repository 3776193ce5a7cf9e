"""Reading training and scoring data: CSV, Parquet (file or folder of parts) and ``.npz``; writing
tables atomically (:class:`AtomicTable`).

Training never needs the whole of a large data set in memory: with ``max_rows`` set, a file with more
rows is read in batches and each row is kept with probability ``max_rows / total`` (seeded), so memory
stays bounded by the sample, not by the file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from anomaly_vae.persistence import atomic_path

logger = logging.getLogger(__name__)

PARQUET_SUFFIXES = {".parquet", ".pq"}
CSV_SUFFIXES = {".csv", ".gz", ".txt"}
CHUNK_ROWS = 100_000


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES or (path.is_dir() and any(path.glob("*.parquet")))


def count_rows(path: Path) -> int:
    """Rows of a Parquet data set (from its metadata) or of a CSV file (one pass over its lines)."""
    _check_not_empty(path)
    if is_parquet(path):
        return ds.dataset(path, format="parquet").count_rows()
    with open(path, "rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


def read_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A CSV or Parquet data set as DataFrames of at most ``chunk_rows`` rows, in order."""
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    _check_not_empty(path)
    if is_parquet(path):
        for batch in ds.dataset(path, format="parquet").to_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    elif path.suffix.lower() in CSV_SUFFIXES:
        try:
            chunks = pd.read_csv(path, chunksize=chunk_rows)
        except pd.errors.EmptyDataError:  # blank lines only
            raise ValueError(f"{path} has no header line of column names") from None
        yield from chunks
    else:
        raise ValueError(f"{path}: expected a .csv or .parquet (file or folder) input")


def _check_not_empty(path: Path) -> None:
    """A zero-byte file is named as such (pandas and pyarrow would say they found no columns or footer)."""
    if path.is_file() and path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes)")


def no_rows(path: Path) -> ValueError:
    """The error for a data set that has column names but no rows."""
    return ValueError(f"{path} has column names but no rows")


def read_table(path: Path, *, max_rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Read a CSV, Parquet or ``.npz`` data set; sample down to about ``max_rows`` rows if it is larger."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data not found: {path}")
    if path.suffix.lower() == ".npz":
        return _read_npz(path)
    if not (is_parquet(path) or path.suffix.lower() in CSV_SUFFIXES):
        raise ValueError(f"{path}: expected a .csv, .parquet (file or folder) or .npz data set")
    total = count_rows(path) if max_rows is not None else 0
    if max_rows is None or total <= max_rows:
        chunks = list(read_chunks(path, CHUNK_ROWS))
        if not sum(map(len, chunks)):
            raise no_rows(path)
        return pd.concat(chunks, ignore_index=True)
    rng = np.random.default_rng(seed)
    sampled = [chunk[rng.random(len(chunk)) < max_rows / total] for chunk in read_chunks(path, CHUNK_ROWS)]
    logger.info("sampled %d of %d rows from %s", sum(map(len, sampled)), total, path)
    return pd.concat(sampled, ignore_index=True)


def _read_npz(path: Path) -> pd.DataFrame:
    with np.load(path, allow_pickle=False) as data:
        if "X" not in data:
            raise ValueError(f"{path}: an .npz data set needs an array named 'X' (and optionally 'y')")
        X = data["X"]
        if X.ndim != 2:
            raise ValueError(f"{path}: 'X' must be 2-D (n_samples, n_features), got shape {X.shape}")
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        if "y" in data:
            frame["label"] = data["y"]
    return frame


def split_labels(frame: pd.DataFrame, label_column: str | None) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Features and 0/1 labels (1 = anomaly); the label column is never a feature."""
    if label_column is None:
        return frame, None
    if label_column not in frame.columns:
        raise ValueError(f"label column {label_column!r} is not in the data (columns: {list(frame.columns)[:20]})")
    labels = frame[label_column]
    if labels.isna().any():
        raise ValueError(f"label column {label_column!r} has missing values")
    values = set(pd.unique(labels.astype(object)))
    if not values <= {0, 1}:
        raise ValueError(f"label column {label_column!r} must hold 0/1 or booleans (1 = anomaly)")
    return frame.drop(columns=label_column), labels.astype(int).to_numpy()


class AtomicTable:
    """A CSV or Parquet file appended chunk by chunk at a staging path (:func:`atomic_path`).

    Used as a context manager: the file is renamed into place when the ``with`` block succeeds and
    removed when it fails. ``finish(empty)`` before the end gives a table with no rows its columns.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.parquet = self.path.suffix.lower() in PARQUET_SUFFIXES
        self.writer: pq.ParquetWriter | None = None
        self.started = False

    def __enter__(self) -> AtomicTable:
        with ExitStack() as stack:
            self.temporary = stack.enter_context(atomic_path(self.path))
            self.temporary.open("x").close()  # there from the start, with permissions from the umask
            self._staged = stack.pop_all()
        return self

    def __exit__(self, *error: Any) -> None:
        if self.writer is not None:
            self.writer.close()
        self._staged.__exit__(*error)

    def write(self, frame: pd.DataFrame) -> None:
        if self.parquet:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.writer is None:  # dictionary encoding pays for repeated strings, not for scores (3x slower)
                strings = [
                    f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                ]
                self.writer = pq.ParquetWriter(self.temporary, table.schema, use_dictionary=strings)
            self.writer.write_table(table.cast(self.writer.schema))
        else:
            frame.to_csv(self.temporary, mode="a" if self.started else "w", header=not self.started, index=False)
        self.started = True

    def finish(self, empty: pd.DataFrame) -> None:
        """With no row written, write ``empty`` (no rows): still a valid file with the columns."""
        if not self.started:
            self.write(empty)
