"""What `anomaly-vae train` does differently for an image data set: reading it, the held-out evaluation
part, pixel-level AUROC of the anomaly maps, the pictures of the run and the pyfunc's input example.

Evaluation images: the ``test/`` part of an MVTec-AD tree (``test/good`` normal, every other folder
anomalous, masks from ``ground_truth/``); with a label column of a table of images, a stratified share
as for tabular data (``evaluation.test_fraction``); otherwise a sample of up to ``PICTURE_IMAGES``
training images, for the pictures only. With masks, ``test_pixel_auroc`` is the AUROC of the anomaly
maps' pixels against the masks' pixels (normal images count as all-normal masks), at the model's size.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch.nn import functional as F

from anomaly_vae import ImageVAEDetector
from anomaly_vae.image.data import to_unit_range
from anomaly_vae.image.datasets import read_image_dataset
from anomaly_vae.image.pictures import encode_png
from pipelines import evaluation, plots
from pipelines.images import grid_picture

PICTURE_IMAGES = 500  # images scored for the pictures when there are no labels
GRID_IMAGES = 8
EXAMPLE_IMAGES = 3  # images in the logged model's input example


@dataclass(frozen=True)
class ImageSplit:
    rows: evaluation.Split  # train and test are lists of images (arrays)
    test_masks: list[np.ndarray | None] | None


def split(data: Path, label_column: str | None, test_fraction: float, train_on: str) -> ImageSplit:
    """The training images and the evaluation images of the data set at ``data``."""
    dataset = read_image_dataset(data, label_column=label_column)
    if dataset.test is not None:  # an MVTec-AD tree: train/good is the training part, test/ the evaluation
        test = dataset.test
        assert test.labels is not None
        held_out = np.bincount(test.labels, minlength=2)
        counts = {
            "rows": len(dataset.images) + len(test.images),
            "train_rows": len(dataset.images),
            "train_anomalous_rows": 0,
            "test_rows": len(test.images),
            "test_normal_rows": int(held_out[0]),
            "test_anomalous_rows": int(held_out[1]),
        }
        rows = evaluation.Split(list(dataset.images), list(test.images), test.labels, counts)
        return ImageSplit(rows, test.masks)
    positions = pd.DataFrame({"position": np.arange(len(dataset.images))})
    parts = evaluation.split(positions, dataset.labels, test_fraction, train_on)
    test = parts.test.head(PICTURE_IMAGES) if dataset.labels is None else parts.test
    counts = parts.counts | {"test_rows": len(test)}

    def pick(frame: pd.DataFrame) -> list[np.ndarray]:
        return [dataset.images[i] for i in frame["position"]]

    return ImageSplit(evaluation.Split(pick(parts.train), pick(test), parts.test_labels, counts), None)


def pixel_metrics(detector: ImageVAEDetector, images: list[np.ndarray], masks: list[np.ndarray | None]) -> dict:
    """``test_pixel_auroc`` of the anomaly maps against the masks (an image without a mask: all normal)."""
    if all(mask is None for mask in masks):
        return {}
    maps = detector.anomaly_maps(images)
    shape = maps.shape[1:]
    truth = np.stack([_resized_mask(mask, shape) for mask in masks])
    if truth.min() == truth.max():
        return {}
    return {"test_pixel_auroc": float(roc_auc_score(truth.ravel(), maps.ravel()))}


def _resized_mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if mask is None:
        return np.zeros(shape, dtype=bool)
    tensor = torch.from_numpy((np.asarray(mask) > 0).astype(np.float32))[None, None]
    return F.interpolate(tensor, size=tuple(shape), mode="nearest")[0, 0].numpy() > 0.5


def log_pictures(
    detector: ImageVAEDetector, scores: pd.DataFrame, output: Path, *, images: list[np.ndarray], labels: Any
) -> list[Path]:
    """Loss curves, the score distribution and the grids (input, reconstruction, map) of the most and least
    anomalous evaluation images; returns the files written."""
    described = "held-out test images" if labels is not None else f"{len(images):,} training images (no labels)"
    files = [output / "loss_curves.png", output / "score_distribution.png"]
    plots.loss_curves(detector, files[0])
    plots.score_distribution(detector, scores, labels, files[1], rows=described)
    n = min(GRID_IMAGES, len(images))
    for select in ("most-anomalous", "least-anomalous"):
        files.append(output / f"{select}.png")
        grid_picture(detector, images, files[-1], n=n, select=select)
    return files


def input_example(images: list[np.ndarray]) -> pd.DataFrame:
    """A few images as the pyfunc model takes them: a column ``image`` of base64-encoded PNGs."""
    return pd.DataFrame({"image": [png_base64(image) for image in images[:EXAMPLE_IMAGES]]})


def png_base64(image: np.ndarray) -> str:
    """One image (uint8, uint16 or float in [0, 1]) as base64 text of its PNG file."""
    image = np.asarray(image)
    return base64.b64encode(encode_png(image if image.dtype == np.uint8 else to_unit_range(image))).decode("ascii")
