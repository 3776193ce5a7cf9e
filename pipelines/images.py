"""Images from the command line: fit an :class:`ImageVAEDetector` to a folder / ``.npz``, draw the report
grid (inputs, reconstructions, anomaly maps), and the one-class MNIST benchmark of
../shared/data/README.md with baselines on raw pixels in the same run."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

from anomaly_vae import ImageVAEDetector
from anomaly_vae.image.data import read_images
from anomaly_vae.image.pictures import grid, overlay, to_rgb, upscale, write_png
from pipelines.adbench import Detector, Result, _SklearnOutlier, write_tables

logger = logging.getLogger(__name__)


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


def mnist_methods(params: dict[str, Any] | None = None) -> dict[str, Detector]:
    """ImageVAEDetector (with ``params`` over its defaults), IsolationForest and PCA reconstruction error on
    raw pixels (scikit-learn), and PyOD's PCA, IForest and VAE when pyod is installed."""
    methods: dict[str, Detector] = {
        "ImageVAEDetector": lambda seed: ImageVAEDetector(**{"random_state": seed, "device": "cpu", **(params or {})}),
        "IsolationForest": lambda seed: _Flat(_SklearnOutlier(IsolationForest(random_state=seed))),
        "PCA reconstruction": lambda seed: _Flat(_PCAReconstruction(seed)),
    }
    try:
        from pyod.models.iforest import IForest
        from pyod.models.pca import PCA as PyodPCA
        from pyod.models.vae import VAE
    except ImportError:
        return methods
    methods["PyOD PCA"] = lambda seed: _Flat(PyodPCA(random_state=seed))
    methods["PyOD IForest"] = lambda seed: _Flat(IForest(random_state=seed))
    methods["PyOD VAE"] = lambda seed: _Flat(VAE(random_state=seed, verbose=0))
    return methods


class _Flat:
    """Pixels in [0, 1], flattened to one row per image, for detectors of tabular data."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector

    def fit(self, images: np.ndarray) -> _Flat:
        self.detector.fit(images.reshape(len(images), -1) / 255.0)
        return self

    def decision_function(self, images: np.ndarray) -> np.ndarray:
        return self.detector.decision_function(images.reshape(len(images), -1) / 255.0)


class _PCAReconstruction:
    """Squared reconstruction error from the principal components that explain 90% of the variance."""

    def __init__(self, seed: int) -> None:
        self.pca = PCA(n_components=0.9, random_state=seed)

    def fit(self, X: np.ndarray) -> _PCAReconstruction:
        self.pca.fit(X)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.square(X - self.pca.inverse_transform(self.pca.transform(X))).sum(axis=1)


def run_digit(task: tuple[Path, int, int, dict[str, Any], bool, Path | None]) -> list[Result]:
    """Every method on one (digit, seed): train on that digit's training images, score all test images."""
    import torch

    torch.set_num_threads(1)  # one thread per task; tasks run in parallel
    path, digit, seed, params, baselines, grid_path = task
    with np.load(path) as archive:
        X, y = archive["X"], archive["y"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    normal = X_train[y_train == digit]
    methods = mnist_methods(params)
    results = []
    for name, make in methods.items() if baselines else [("ImageVAEDetector", methods["ImageVAEDetector"])]:
        detector = make(seed)
        start = time.perf_counter()
        detector.fit(normal)
        fit_seconds = time.perf_counter() - start
        anomaly = y_test != digit
        if isinstance(detector, ImageVAEDetector):  # also the plain -log p(x), from the same fit
            frame = detector.score_frame(X_test)
            runs = {name: frame[detector.default_score], f"{name}, -log p(x) only": frame["neg_log_likelihood"]}
        else:
            runs = {name: detector.decision_function(X_test)}
        for method, scores in runs.items():
            auroc, aupr = roc_auc_score(anomaly, scores), average_precision_score(anomaly, scores)
            results.append(Result(f"digit {digit}", method, seed, auroc, aupr, fit_seconds))
        if grid_path is not None and isinstance(detector, ImageVAEDetector):
            order = np.r_[np.flatnonzero(~anomaly)[:4], np.flatnonzero(anomaly)[:4]]
            grid_picture(detector, X_test[order], grid_path, select="first")
    logger.info("digit %d seed %d: %s", digit, seed, ", ".join(f"{r.method} {r.auroc:.3f}" for r in results))
    return results


def run_mnist(
    data: Path,
    output: Path,
    *,
    digits: list[int] | None = None,
    seeds: list[int] | None = None,
    jobs: int = 2,
    params: dict[str, Any] | None = None,
    baselines: bool = True,
) -> str:
    """The one-class protocol on every digit and seed; writes ``mnist.csv``, ``mnist.md`` and
    ``mnist_grid.png`` (digit 0, seed 0: four normal test images, then four anomalies) to ``output``."""
    if not Path(data).is_file():
        raise FileNotFoundError(f"{data} not found (expected the mnist_5k.npz of ../shared/data/mnist)")
    digits = list(range(10)) if digits is None else digits
    seeds = [0, 1, 2] if seeds is None else seeds
    output.mkdir(parents=True, exist_ok=True)
    tasks = [
        (
            Path(data),
            d,
            s,
            params or {},
            baselines,
            output / "mnist_grid.png" if (d, s) == (digits[0], seeds[0]) else None,
        )
        for s in seeds
        for d in digits
    ]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = [r for rs in pool.map(run_digit, tasks) for r in rs]
    header = (
        f"One-class MNIST ({Path(data).name}), digits {digits}, seeds {seeds}: train on one digit's training "
        "images, score all test images (the other digits are the anomalies); AUROC and AUPR, mean over seeds."
    )
    return write_tables(results, output, "mnist", header)
