"""`anomaly-vae score` for image models: the images of the input (:mod:`pipelines.image_inputs`: a folder, a
list of paths, a table's image column, a stack), chunk by chunk, into the output (rows keyed by ``row`` and
``name``, every score column of ``score_frame``) and the rejects (with the reason), and with ``--maps DIR``
one overlay PNG per flagged image. :func:`pipelines.batch.score_file` writes the manifest around it.
"""

from __future__ import annotations

import re
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from anomaly_vae.persistence import atomic_path
from pipelines.data import AtomicTable, no_rows
from pipelines.image_inputs import ImageSource, Item, decoded, model_inputs


def map_file_name(name: str) -> str:
    """The overlay PNG's file name for the image ``name``: the path's parts joined by ``__``, characters
    other than letters, digits, ``.``, ``-`` and ``_`` replaced by ``_``, and ``.png`` added unless it ends so."""
    flat = re.sub(r"[^A-Za-z0-9._-]", "_", "__".join(part for part in name.split("/") if part))
    flat = flat.lstrip(".") or "image"
    return flat if flat.lower().endswith(".png") else flat + ".png"


class ImageScoring:
    """One job's scoring of an image input, chunk by chunk, into an output and a rejects table (rows keyed
    by ``row`` and ``name``), and with ``maps`` a folder of overlay PNGs of the flagged images."""

    def __init__(self, detector: Any, source: ImageSource, fpr: float | None, maps: Path | None) -> None:
        self.detector = detector
        self.source = source
        self.fpr = fpr
        self.maps = maps
        if maps is not None:
            _check_maps_folder(maps)
        self.counts = {"rows_in": 0, "rows_scored": 0, "rows_rejected": 0, "outliers": 0}
        if maps is not None:
            self.counts["maps_written"] = 0
        self.columns_out: list[str] = []
        self.staged_maps: Path | None = None

    def into_files(
        self, source: Path, output_path: Path, rejects_path: Path, chunk_rows: int, progress: bool
    ) -> dict[str, int]:
        """Score the images into the output and rejects files (and the maps folder), renamed into place at
        the end (the output first, the maps folder last); on an error none is. Returns the counts."""
        from pipelines.batch import write_chunks

        ids = self.source.id_columns
        with ExitStack() as stack:
            if self.maps is not None:
                self.staged_maps = stack.enter_context(atomic_path(self.maps))
                self.staged_maps.mkdir()
            rejects = stack.enter_context(AtomicTable(rejects_path))
            output = stack.enter_context(AtomicTable(output_path))
            bar = stack.enter_context(tqdm(total=self.source.total, unit="image", desc="scoring", disable=not progress))
            chunks = (decoded(items) for items in self.source.chunks(chunk_rows))
            write_chunks(chunks, self.chunk, output, rejects, bar)
            if not self.counts["rows_in"]:
                raise no_rows(source)
            if self.counts["rows_scored"] + self.counts["rows_rejected"] != self.counts["rows_in"]:
                raise RuntimeError(f"image counts do not reconcile: {self.counts}")
            output.finish(pd.DataFrame(columns=self.columns_out or ["row", "name", *ids]))
            empty = {"row": pd.Series(dtype=np.int64), "name": pd.Series(dtype=str), **{c: [] for c in ids}}
            rejects.finish(pd.DataFrame({**empty, "reason": pd.Series(dtype=str)}))
        return self.counts

    def chunk(
        self, read: tuple[list[Item], list[np.ndarray], list[tuple[Item, str]]]
    ) -> tuple[int, pd.DataFrame | None, pd.DataFrame]:
        """The size of a chunk, its scored images (None when none could be scored) and its rejected ones;
        counts them and writes the flagged images' overlays."""
        good, images, rejected = read
        size = len(good) + len(rejected)
        inputs, reasons = model_inputs(self.detector, images)
        rejected = rejected + [(item, reason) for item, reason in zip(good, reasons, strict=True) if reason]
        scored = [item for item, reason in zip(good, reasons, strict=True) if reason is None]
        frame = None
        if scored:
            scores = self.detector.score_columns(inputs, fpr=self.fpr)
            frame = pd.DataFrame({**_keys(scored, self.source.id_columns), **scores})
            self.columns_out = list(frame.columns)
            flagged = np.flatnonzero(scores["is_outlier"])
            self.counts["outliers"] += len(flagged)
            if self.staged_maps is not None and len(flagged):
                self._write_maps([scored[i].name for i in flagged], inputs[flagged])
        rejected.sort(key=lambda pair: pair[0].row)
        keys = _keys([item for item, _ in rejected], self.source.id_columns)
        rejects = pd.DataFrame({**keys, "reason": [reason for _, reason in rejected]})
        self.counts["rows_in"] += size
        self.counts["rows_scored"] += len(scored)
        self.counts["rows_rejected"] += len(rejected)
        return size, frame, rejects

    def _write_maps(self, names: list[str], inputs: np.ndarray) -> None:
        """One PNG per image: its anomaly map over it (white = its own highest per-pixel NLL), enlarged."""
        from anomaly_vae.image.pictures import encode_png, overlay, upscale
        from pipelines.images import MIN_TILE_PIXELS

        assert self.staged_maps is not None
        maps = self.detector.anomaly_maps(inputs)
        for name, image, pixels in zip(names, inputs, maps, strict=True):
            picture = upscale(overlay(image[None], pixels[None]), MIN_TILE_PIXELS)[0]
            (self.staged_maps / map_file_name(name)).write_bytes(encode_png(picture))
            self.counts["maps_written"] += 1


def _keys(items: list[Item], id_columns: list[str]) -> dict[str, Any]:
    columns: dict[str, Any] = {
        "row": np.array([item.row for item in items], dtype=np.int64),
        "name": [item.name for item in items],
    }
    return columns | {c: [item.ids[c] for item in items] for c in id_columns}


def _check_maps_folder(path: Path) -> None:
    """``--maps DIR`` is replaced as a whole at the end: refuse a folder that holds anything but PNGs."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"--maps {path} is a file: give a folder for the overlay PNGs")
    if path.is_dir():
        others = [p.name for p in path.iterdir() if not (p.is_file() and p.suffix.lower() == ".png")]
        if others:
            raise ValueError(
                f"--maps {path} holds files other than PNGs ({others[:3]}): it is replaced as a whole, so give a "
                "new or empty folder, or one an earlier run wrote"
            )
