"""Pictures: anomaly-map overlays, report grids, PNG files.

This module and :mod:`anomaly_vae.image.data` use Pillow, and import it inside the functions that read
or write files, so ``import anomaly_vae`` never needs it (tests/test_layering.py allows exactly this).
Overlays and grids are plain uint8 arrays (H, W, 3) until written.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def write_png(image: np.ndarray, path: str | Path) -> None:
    """Write a uint8 (H, W) or (H, W, 3) array (or float in [0, 1]) as a PNG file."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(encode_png(image))


def encode_png(image: np.ndarray) -> bytes:
    """The PNG file of a uint8 (H, W) or (H, W, 1 or 3) array, or of one in float in [0, 1]."""
    from PIL import Image

    if image.dtype != np.uint8:
        image = (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1 else image).save(buffer, "PNG")
    return buffer.getvalue()


def to_rgb(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) floats in [0, 1] with C = 1 or 3 -> (N, H, W, 3)."""
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def heat(maps: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """(N, H, W) non-negative maps -> (N, H, W, 3) black-red-yellow-white colours, 0 -> black and ``vmax``
    (default: the largest value) -> white."""
    vmax = float(maps.max()) if vmax is None else vmax
    t = np.clip(maps / max(vmax, 1e-12), 0.0, 1.0)[..., None]
    return np.clip(np.concatenate([3 * t, 3 * t - 1, 3 * t - 2], axis=-1), 0.0, 1.0)


def overlay(images: np.ndarray, maps: np.ndarray, vmax: float | None = None, alpha: float = 0.6) -> np.ndarray:
    """Anomaly maps over their images: (N, H, W, C) in [0, 1] and (N, H, W) -> (N, H, W, 3) in [0, 1], the
    image in gray with the map's heat colours blended in where it is high."""
    gray = to_rgb(images).mean(axis=-1, keepdims=True)
    colours = heat(maps, vmax)
    weight = alpha * colours.max(axis=-1, keepdims=True)
    return np.clip((1.0 - weight) * gray + weight * colours, 0.0, 1.0)


def upscale(pictures: np.ndarray, min_side: int) -> np.ndarray:
    """(N, H, W, ...) pictures enlarged by the smallest whole factor that makes both sides at least
    ``min_side`` pixels, each pixel repeated as a block (nearest neighbour: no smoothing, so a pixel's value
    stays readable); pictures already that large come back unchanged."""
    factor = -(-min_side // min(pictures.shape[1:3]))  # ceiling division
    if factor <= 1:
        return pictures
    return np.repeat(np.repeat(pictures, factor, axis=1), factor, axis=2)


def grid(rows: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """Tile rows of (N, H, W, 3) pictures (floats in [0, 1]) into one (H', W', 3) uint8 picture."""
    n, height, width = rows[0].shape[:3]
    picture = np.ones((len(rows) * (height + pad) + pad, n * (width + pad) + pad, 3), dtype=np.float32)
    for r, row in enumerate(rows):
        for c in range(n):
            top, left = pad + r * (height + pad), pad + c * (width + pad)
            picture[top : top + height, left : left + width] = row[c]
    return (picture * 255.0).round().astype(np.uint8)
