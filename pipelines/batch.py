"""Batch scoring of a file with a saved model."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import pandas as pd

from pipelines.data import read_table
from pipelines.registry import load_detector

logger = logging.getLogger(__name__)


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
    model: str, input_path: Path, output_path: Path, *, fpr: float | None = None, contributions: bool = False
) -> pd.DataFrame:
    detector, _ = load_detector(model)
    frame = read_table(input_path)
    scores = detector.score_frame(frame, fpr=fpr, contributions=contributions)
    write_table_atomically(scores, output_path)
    logger.info("scored %d rows: %d outliers -> %s", len(scores), int(scores["is_outlier"].sum()), output_path)
    return scores
