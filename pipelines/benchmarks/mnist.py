"""The one-class MNIST benchmark of ../shared/data/README.md: :class:`ImageVAEDetector` trained on one
digit's images, all test images scored (the other digits are the anomalies), with baselines on raw pixels
in the same run."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

from anomaly_vae import ImageVAEDetector
from pipelines.benchmarks.baselines import Detector, pixel_baselines
from pipelines.benchmarks.results import Result, write_tables
from pipelines.images import grid_picture

logger = logging.getLogger(__name__)


def mnist_methods(params: dict[str, Any] | None = None) -> dict[str, Detector]:
    """ImageVAEDetector (with ``params`` over its defaults) and the baselines on raw pixels of
    :func:`~pipelines.benchmarks.baselines.pixel_baselines`."""
    methods: dict[str, Detector] = {
        "ImageVAEDetector": lambda seed: ImageVAEDetector(**{"random_state": seed, "device": "cpu", **(params or {})})
    }
    return methods | pixel_baselines()


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
