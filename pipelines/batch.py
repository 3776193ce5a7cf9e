"""Batch scoring of a file with a saved model."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import pandas as pd

from anomaly_vae import VAEDetector

logger = logging.getLogger(__name__)


def read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    if path.suffix.lower() in {".parquet", ".pq"} or path.is_dir():
        return pd.read_parquet(path)
    if path.suffix.lower() in {".csv", ".gz"}:
        return pd.read_csv(path)
    raise ValueError(f"{path}: expected a .csv or .parquet file")


def write_table_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write next to ``path`` under a temporary name, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame.to_parquet(temporary, index=False)
        else:
            frame.to_csv(temporary, index=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def score_file(
    model: Path, input_path: Path, output_path: Path, *, fpr: float | None = None, contributions: bool = False
) -> pd.DataFrame:
    detector = VAEDetector.load(model)
    frame = read_table(input_path)
    scores = detector.score_frame(frame, fpr=fpr, contributions=contributions)
    write_table_atomically(scores, output_path)
    logger.info("scored %d rows: %d outliers -> %s", len(scores), int(scores["is_outlier"].sum()), output_path)
    return scores
