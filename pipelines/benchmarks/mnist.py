"""The one-class MNIST benchmark of ../shared/data/README.md: :class:`ImageVAEDetector` trained on one
digit's images, all test images scored (the other digits are the anomalies), with baselines on raw pixels
in the same run. The same protocol runs on scikit-learn's 8 x 8 digits (``data="sklearn:digits"``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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
SKLEARN_DIGITS = "sklearn:digits"  # scikit-learn's load_digits: 1,797 images of 8 x 8, intensities 0-16
COMPARED = "ImageVAEDetector (compare-params)"


def mnist_methods(
    params: dict[str, Any] | None = None, compare_params: dict[str, Any] | None = None
) -> dict[str, Detector]:
    """ImageVAEDetector (with ``params`` over its defaults; with ``compare_params`` too, a second one with
    those over its defaults) and the baselines on raw pixels of
    :func:`~pipelines.benchmarks.baselines.pixel_baselines`."""

    def vae(extra: dict[str, Any] | None) -> Detector:
        return lambda seed: ImageVAEDetector(**{"random_state": seed, "device": "cpu", **(extra or {})})

    methods = {"ImageVAEDetector": vae(params)}
    if compare_params is not None:
        methods[COMPARED] = vae(compare_params)
    return methods | pixel_baselines()


def load_labelled(data: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Images and digits of an MNIST-like ``.npz`` (arrays X, y), or of scikit-learn's 8 x 8 digits
    (``SKLEARN_DIGITS``) as floats in [0, 1]."""
    if str(data) == SKLEARN_DIGITS:
        from sklearn.datasets import load_digits

        digits = load_digits()
        return (digits.images / 16.0).astype(np.float32), digits.target
    with np.load(data) as archive:
        return archive["X"], archive["y"]


def run_digit(
    task: tuple[Path | str, int, int, dict[str, Any], dict[str, Any] | None, bool | list[str], Path | None, int],
) -> list[Result]:
    """Every method on one (digit, seed): train on that digit's training images, score all test images
    (the image detectors' scoring time is measured too)."""
    import torch

    data, digit, seed, params, compare_params, baselines, grid_path, threads = task
    torch.set_num_threads(threads)  # tasks run in parallel, ``threads`` each
    X, y = load_labelled(data)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    normal, anomaly = X_train[y_train == digit], y_test != digit
    methods = mnist_methods(params, compare_params)
    results = []
    wanted = methods if baselines is True else [m for m in methods if m.startswith("Image") or m in (baselines or ())]
    for name in wanted:
        make = methods[name]
        detector = make(seed)
        start = time.perf_counter()
        detector.fit(normal)
        fit_seconds, score_seconds = time.perf_counter() - start, float("nan")
        if isinstance(detector, ImageVAEDetector):  # also the plain -log p(x), from the same fit
            start = time.perf_counter()
            frame = detector.score_frame(X_test)
            score_seconds = time.perf_counter() - start
            runs = {name: frame[detector.default_score_], f"{name}, -log p(x) only": frame["neg_log_likelihood"]}
        else:
            runs = {name: detector.decision_function(X_test)}
        for method, scores in runs.items():
            auroc, aupr = roc_auc_score(anomaly, scores), average_precision_score(anomaly, scores)
            results.append(Result(f"digit {digit}", method, seed, auroc, aupr, fit_seconds, score_seconds))
        if grid_path is not None and isinstance(detector, ImageVAEDetector):
            order = np.r_[np.flatnonzero(~anomaly)[:4], np.flatnonzero(anomaly)[:4]]
            grid_picture(detector, X_test[order], grid_path, select="first")
    logger.info("digit %d seed %d: %s", digit, seed, ", ".join(f"{r.method} {r.auroc:.3f}" for r in results))
    return results


def run_digit_tasks(
    worker: Callable[[Any], list[Any]],
    task: Callable[[int, int, Path | None], Any],
    digits: list[int],
    seeds: list[int],
    jobs: int,
    picture: Path,
) -> list[Any]:
    """``worker(task(digit, seed, picture path))`` for every digit and seed, ``jobs`` at a time in worker
    processes, the results in one list; only the first digit and seed get the path of the picture."""
    tasks = [task(d, s, picture if (d, s) == (digits[0], seeds[0]) else None) for s in seeds for d in digits]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return [r for rs in pool.map(worker, tasks) for r in rs]


def run_mnist(
    data: Path | str,
    output: Path,
    *,
    digits: list[int] | None = None,
    seeds: list[int] | None = None,
    jobs: int = 2,
    threads: int = 1,
    params: dict[str, Any] | None = None,
    compare_params: dict[str, Any] | None = None,
    baselines: bool | list[str] = True,
    stem: str = "mnist",
) -> str:
    """The one-class protocol on every digit and seed; writes ``<stem>.csv``, ``<stem>.md`` and
    ``<stem>_grid.png`` (first digit and seed: four normal test images, then four anomalies) to ``output``.
    ``data``: the mnist_5k.npz of ../shared/data/mnist (any .npz with X, y), or ``SKLEARN_DIGITS``;
    ``baselines``: all, none, or the names of those to run."""
    if str(data) != SKLEARN_DIGITS and not Path(data).is_file():
        raise FileNotFoundError(f"{data} not found (expected the mnist_5k.npz of ../shared/data/mnist)")
    digits = list(range(10)) if digits is None else digits
    seeds = [0, 1, 2] if seeds is None else seeds
    output.mkdir(parents=True, exist_ok=True)
    results = run_digit_tasks(
        run_digit,
        lambda d, s, grid: (data, d, s, params or {}, compare_params, baselines, grid, threads),
        digits,
        seeds,
        jobs,
        output / f"{stem}_grid.png",
    )
    name = "scikit-learn's 8 x 8 digits" if str(data) == SKLEARN_DIGITS else f"MNIST ({Path(data).name})"
    header = (
        f"One-class {name}, digits {digits}, seeds {seeds}: train on one digit's training "
        "images, score all test images (the other digits are the anomalies); AUROC and AUPR, mean over seeds; "
        f"{jobs} run(s) at a time, {threads} torch thread(s) each."
    )
    return write_tables(results, output, stem, header)
