"""`anomaly-vae score`: batch scoring of CSV or Parquet data (tabular models) or of images (image models:
see :mod:`pipelines.batch_images`), chunk by chunk, losing nothing.

Every input row ends up either in the output (with its scores) or in the rejects file (with its row
number, id columns and the reason), and the manifest checks that the two add up to the input. Files are
written under temporary names and renamed when complete: a killed job leaves no partial output, and a
rerun writes the same bytes. A job that rejects more than ``max_reject_fraction`` of its rows, or scores
none, still writes everything and then raises :class:`TooManyRejects`, so a scheduler sees a failure.

For a tabular model the manifest also totals what it scored without having seen it in training
(``missing_unseen``: missing values in columns that had none; ``unknown_categories``: categorical values
outside the model's vocabulary). Every manifest says whether the model's calibration resolves the
false-positive rate used (``fpr_resolvable``; below ``smallest_fpr`` no record can be flagged).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from anomaly_vae.persistence import atomic_path
from pipelines.data import AtomicTable, count_rows, is_parquet, no_rows, read_chunks
from pipelines.registry import load_detector

logger = logging.getLogger(__name__)
# Above this share of rejected rows the cause is a broken column or feed rather than a few bad records.
MAX_REJECT_FRACTION = 0.05
# per-record counts of the score table that the manifest totals over the scored rows
TOTALLED = ("missing_unseen", "unknown_categories")
TABLE_CHUNK = 100_000  # rows read and scored at a time by default (images: image_inputs.IMAGE_CHUNK)
Chunk = TypeVar("Chunk")


class TooManyRejects(RuntimeError):
    """More rows were rejected than allowed, or none scored; the outputs and the manifest are written."""

    def __init__(self, message: str, manifest: dict[str, Any]) -> None:
        super().__init__(message)
        self.manifest = manifest


def score_file(
    model: str,
    input_path: Path,
    output_path: Path,
    *,
    id_columns: Sequence[str] = (),
    fpr: float | None = None,
    contributions: int = 0,
    chunk_rows: int | None = None,
    max_reject_fraction: float = MAX_REJECT_FRACTION,
    progress: bool = True,
    image_column: str | None = None,
    maps: Path | None = None,
) -> dict[str, Any]:
    """Score ``input_path`` into ``output_path``; rejects and a manifest go beside it. Returns the manifest.

    The input follows the model's kind: a CSV or Parquet table for a tabular model; for an image model a
    folder of images, a list of paths, a table whose ``image_column`` holds image bytes or paths, or a
    ``.npy`` / ``.npz`` stack (see :mod:`pipelines.image_inputs`), rows keyed by ``name``, and with ``maps``
    a folder of overlay PNGs of the flagged images. ``chunk_rows``: rows (images) read and scored at a time,
    by default ``TABLE_CHUNK`` (``IMAGE_CHUNK``).
    ``contributions`` (tabular): add the top-K columns by contribution per row (``top1_column``, ...).
    Raises :class:`TooManyRejects` (after writing every file) when more than ``max_reject_fraction`` of the
    rows were rejected or none was scored.
    """
    if not 0 <= max_reject_fraction <= 1:
        raise ValueError(f"max_reject_fraction must be in [0, 1], got: {max_reject_fraction}")
    if chunk_rows is not None and chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got: {chunk_rows}")
    start = time.perf_counter()
    detector, identity = load_detector(model)
    resolution = _fpr_resolution(detector, detector.fpr if fpr is None else fpr)
    rejects_path = output_path.with_name(output_path.stem + ".rejects.csv")
    manifest_path = output_path.with_name(output_path.stem + ".manifest.json")
    scoring, default_chunk = _scoring(
        detector, Path(input_path), list(id_columns), fpr, contributions, image_column, maps
    )
    counts = scoring.into_files(Path(input_path), output_path, rejects_path, chunk_rows or default_chunk, progress)
    seconds = time.perf_counter() - start
    failure = _failure(counts, max_reject_fraction, rejects_path)
    manifest = {
        "input": str(input_path),
        "output": str(output_path),
        "rejects": str(rejects_path),
        **({"maps": str(maps)} if maps is not None else {}),
        "model": identity,
        "kind": detector.kind,
        "status": "failed" if failure else "succeeded",
        "failure": failure,
        **counts,
        "reject_fraction": round(counts["rows_rejected"] / counts["rows_in"], 6),
        "max_reject_fraction": max_reject_fraction,
        **resolution,
        "seconds": round(seconds, 3),
        "rows_per_second": round(counts["rows_in"] / seconds, 1) if seconds else None,
    }
    with atomic_path(manifest_path) as staging:
        staging.write_text(json.dumps(manifest, indent=1) + "\n")
    logger.info(
        "scored %d rows, rejected %d, %d outliers -> %s",
        counts["rows_scored"],
        counts["rows_rejected"],
        counts["outliers"],
        output_path,
    )
    if failure:
        raise TooManyRejects(failure, manifest)
    return manifest


def _scoring(
    detector: Any,
    source: Path,
    id_columns: list[str],
    fpr: float | None,
    contributions: int,
    image_column: str | None,
    maps: Path | None,
) -> tuple[Any, int]:
    """The scoring of ``source`` for the detector's kind, and its default chunk size."""
    if detector.kind == "image":
        from pipelines.batch_images import ImageScoring
        from pipelines.image_inputs import IMAGE_CHUNK, ImageSource

        if contributions:
            raise ValueError("--contributions is for tabular models: an image model's per-pixel maps come with --maps")
        images = ImageSource(source, image_column=image_column, id_columns=id_columns)
        return ImageScoring(detector, images, fpr, maps), IMAGE_CHUNK
    if image_column is not None or maps is not None:
        raise ValueError("--image-column and --maps are for image models; this model is tabular")
    return _Scoring(detector, id_columns, fpr, contributions), TABLE_CHUNK


class _Scoring:
    """One job's scoring of its input, chunk by chunk, into an output and a rejects table."""

    def __init__(self, detector: Any, id_columns: list[str], fpr: float | None, contributions: int) -> None:
        self.detector = detector
        self.names = list(detector.feature_names_in_)
        self.id_columns = id_columns
        self.fpr = fpr
        self.contributions = contributions
        self.counts = {"rows_in": 0, "rows_scored": 0, "rows_rejected": 0, "outliers": 0, **dict.fromkeys(TOTALLED, 0)}
        self.columns_out: list[str] = []

    def into_files(
        self, source: Path, output_path: Path, rejects_path: Path, chunk_rows: int, progress: bool
    ) -> dict[str, int]:
        """Score ``source`` into the output and rejects files, both renamed into place at the end (the
        output first); on an error neither is. Returns the row counts."""
        total = count_rows(source) if is_parquet(source) else None
        ids = self.id_columns
        with (
            AtomicTable(rejects_path) as rejects,
            AtomicTable(output_path) as output,
            tqdm(total=total, unit="row", unit_scale=True, desc="scoring", disable=not progress) as bar,
        ):
            chunks = (chunk for chunk in read_chunks(source, chunk_rows) if len(chunk))  # not header-only CSVs
            write_chunks(chunks, self.chunk, output, rejects, bar)
            if not self.counts["rows_in"]:
                raise no_rows(source)
            if self.counts["rows_scored"] + self.counts["rows_rejected"] != self.counts["rows_in"]:
                raise RuntimeError(f"row counts do not reconcile: {self.counts}")
            output.finish(pd.DataFrame(columns=self.columns_out or ["row", *ids]))
            rejects.finish(pd.DataFrame({"row": pd.Series(dtype=np.int64), **{c: [] for c in ids}, "reason": []}))
        return self.counts

    def chunk(self, chunk: pd.DataFrame) -> tuple[int, pd.DataFrame | None, pd.DataFrame]:
        """The size of ``chunk``, its scored rows (None when none could be scored) and its rejected rows;
        counts both."""
        absent_ids = [c for c in self.id_columns if c not in chunk.columns]
        if absent_ids:
            raise ValueError(f"id column(s) not in the input: {absent_ids}")
        rows = np.arange(self.counts["rows_in"], self.counts["rows_in"] + len(chunk))
        absent = [n for n in self.names if n not in chunk.columns]
        if not absent:
            scores, reasons = self.detector.score_valid(
                chunk[self.names], fpr=self.fpr, contributions=self.contributions > 0
            )
        else:
            scores, reasons = {}, pd.Series(f"missing column(s): {absent}", index=rows - rows[0], dtype=object)
        good = np.ones(len(chunk), dtype=bool)
        good[reasons.index.to_numpy(dtype=int)] = False
        rejected = pd.DataFrame(
            {
                "row": rows[~good],
                **{c: chunk[c].to_numpy()[~good] for c in self.id_columns},
                "reason": reasons.to_numpy(dtype=str),
            }
        )
        frame = None
        if good.any():
            frame = _output_frame(chunk.loc[good, self.id_columns], rows[good], scores, self.contributions)
            self.columns_out = list(frame.columns)
            self.counts["outliers"] += int(scores["is_outlier"].sum())
            for name in TOTALLED:
                self.counts[name] += int(scores[name].sum())
        self.counts["rows_in"] += len(chunk)
        self.counts["rows_scored"] += int(good.sum())
        self.counts["rows_rejected"] += int((~good).sum())
        return len(chunk), frame, rejected


def _fpr_resolution(detector: Any, fpr: float) -> dict[str, Any]:
    """The false-positive rate used, the smallest one the model's calibration resolves, and whether ``fpr``
    is resolved (else ``is_outlier`` is False for every record, whatever its score): logged at once."""
    resolvable = math.isfinite(detector.calibration_.threshold(detector.default_score_, fpr))
    smallest = detector.calibration_.smallest_fpr
    if not resolvable:
        digits = 2 - math.floor(math.log10(smallest))  # three significant digits, rounded up
        logger.warning(
            "warning: the model's %d calibration scores cannot resolve fpr=%g (the smallest rate they resolve "
            "is %.3g): is_outlier is False for every row; use --fpr %g or more, or a model calibrated on more rows",
            detector.calibration_.size,
            fpr,
            smallest,
            math.ceil(smallest * 10**digits) / 10**digits,
        )
    return {"fpr": fpr, "smallest_fpr": smallest, "fpr_resolvable": resolvable}


def _failure(counts: dict[str, int], max_reject_fraction: float, rejects_path: Path) -> str | None:
    """Why the job failed, or None: nothing scored, or more rows rejected than allowed."""
    rejected, total = counts["rows_rejected"], counts["rows_in"]
    if not counts["rows_scored"]:
        return f"no row was scored: all {total} rejected (reasons in {rejects_path})"
    if rejected / total > max_reject_fraction:
        return (
            f"{rejected} of {total} rows rejected ({rejected / total:.2%}), more than the maximum "
            f"{max_reject_fraction:.2%} (reasons in {rejects_path})"
        )
    return None


def write_chunks(
    chunks: Iterator[Chunk],
    score: Callable[[Chunk], tuple[int, pd.DataFrame | None, pd.DataFrame]],
    output: AtomicTable,
    rejects: AtomicTable,
    bar: Any,
) -> None:
    """Score each chunk (``score`` gives its size, scored rows and rejected rows) into ``output`` and
    ``rejects``. The next chunk is read and the previous one written in background threads while this one
    is scored (pyarrow, Pillow and torch release the GIL). One write at a time keeps the output in order
    and memory flat."""
    with ThreadPoolExecutor(max_workers=1) as writer:
        written: Future[None] | None = None
        for chunk in _prefetched(chunks):
            size, frame, rejected = score(chunk)
            if written is not None:
                written.result()  # raises what the previous write raised
            written = writer.submit(_write, output, frame, rejects, rejected)
            bar.update(size)
        if written is not None:
            written.result()


def _prefetched(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """The chunks of ``chunks``, the next one read in a background thread while the caller works on this one."""
    with ThreadPoolExecutor(max_workers=1) as reader:
        upcoming = reader.submit(next, chunks, None)
        while (chunk := upcoming.result()) is not None:
            upcoming = reader.submit(next, chunks, None)
            yield chunk


def _write(output: AtomicTable, frame: pd.DataFrame | None, rejects: AtomicTable, rejected: pd.DataFrame) -> None:
    if frame is not None:
        output.write(frame)
    if len(rejected):
        rejects.write(rejected)


def _output_frame(ids: pd.DataFrame, rows: np.ndarray, scores: dict[str, np.ndarray], top: int) -> pd.DataFrame:
    columns: dict[str, Any] = {"row": rows, **{c: ids[c].to_numpy() for c in ids.columns}}
    contribution_names = [name for name in scores if name.startswith("contribution_")]
    columns |= {name: values for name, values in scores.items() if name not in contribution_names}
    if top and contribution_names:
        values = np.column_stack([scores[name] for name in contribution_names])
        order = np.argsort(-values, axis=1, kind="stable")[:, :top]
        labels = np.array([name.removeprefix("contribution_") for name in contribution_names], dtype=object)
        for k in range(order.shape[1]):
            columns[f"top{k + 1}_column"] = labels[order[:, k]]
            columns[f"top{k + 1}_nats"] = np.take_along_axis(values, order[:, k : k + 1], axis=1)[:, 0]
    return pd.DataFrame(columns)
