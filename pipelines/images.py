"""Images from the command line: fit an :class:`ImageVAEDetector` to a folder / ``.npz`` and draw the report
grid (inputs, reconstructions, anomaly maps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from anomaly_vae import ImageVAEDetector
from anomaly_vae.image.data import read_images
from anomaly_vae.image.pictures import grid, overlay, to_rgb, upscale, write_png


def fit_images(data: Path, output: Path, *, label: int | None = None, params: dict[str, Any] | None = None) -> str:
    """Fit a detector on the images at ``data`` (folder, ``.npz`` or ``.npy``) and save it to ``output``.

    ``label``: train only on the images whose ``y`` (in the ``.npz``) equals it, e.g. one MNIST digit.
    """
    images, _ = read_images(data)
    if label is not None:
        with np.load(data) as archive:
            if "y" not in archive:
                raise ValueError(f"--label needs an array 'y' of labels in {data}")
            images = np.asarray(images)[archive["y"] == label]
        if len(images) == 0:
            raise ValueError(f"no image in {data} has label {label}")
    detector = ImageVAEDetector(**{"device": "auto", "progress": True, **(params or {})}).fit(images)
    detector.save(output)
    shape = detector.image_shape_
    return f"fitted on {len(images)} images ({shape.height} x {shape.width} x {shape.channels}); saved to {output}"


SELECTIONS = ("most-anomalous", "least-anomalous", "first")
MIN_TILE_PIXELS = 96  # small images (8 x 8 digits, 28 x 28 MNIST) are enlarged to at least this per side


def select_images(detector: ImageVAEDetector, images: np.ndarray | list[np.ndarray], n: int, select: str) -> np.ndarray:
    """Positions of the ``n`` images to draw: the highest default scores first ("most-anomalous"), the lowest
    first ("least-anomalous"), or the first ``n`` in input order ("first")."""
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {', '.join(SELECTIONS)}, got: {select!r}")
    if n < 1:
        raise ValueError(f"n must be a positive integer, got: {n}")
    if select == "first":
        return np.arange(min(n, len(images)))
    order = np.argsort(detector.decision_function(images), kind="stable")
    return (order[::-1] if select == "most-anomalous" else order)[:n]


def grid_picture(
    detector: ImageVAEDetector,
    images: np.ndarray | list[np.ndarray],
    path: Path,
    n: int = 8,
    select: str = "most-anomalous",
) -> np.ndarray:
    """Write a PNG of three rows: ``n`` images chosen by ``select`` (see :func:`select_images`), their
    reconstructions and their anomaly maps (as heat overlays, one colour scale for the row, white = the
    highest per-pixel NLL shown), each tile enlarged to at least ``MIN_TILE_PIXELS`` per side by repeating
    pixels. Returns the positions of the images drawn, left to right."""
    chosen = select_images(detector, images, n, select)
    inputs = detector.preprocess([images[i] for i in chosen] if isinstance(images, list) else images[chosen])
    maps = detector.anomaly_maps(inputs)
    rows = [to_rgb(inputs), to_rgb(detector.reconstruct(inputs)), overlay(inputs, maps)]
    write_png(grid([upscale(row, MIN_TILE_PIXELS) for row in rows]), path)
    return chosen
