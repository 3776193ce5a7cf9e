"""The ADBench protocol for unsupervised detectors (see ../shared/data/README.md), with the project's
detector and baselines run side by side on the same splits."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

from anomaly_vae import VAEDetector
from pipelines.benchmarks.baselines import Detector, tabular_baselines
from pipelines.benchmarks.results import Result, write_tables


def protocol_split(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Resample to 1,000..10,000 rows, stratified 70/30 split, MinMax scaling fitted on the training part.

    The resampling draws from ``np.random.RandomState(seed)``, the generator of the reference protocol,
    so the rows (and the baselines' scores) are those of ``pyod_baselines_auroc.csv``.
    """
    rng = np.random.RandomState(seed)
    if len(X) < 1000:
        index = rng.choice(len(X), 1000, replace=True)
        X, y = X[index], y[index]
    elif len(X) > 10000:
        index = rng.choice(len(X), 10000, replace=False)
        X, y = X[index], y[index]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, shuffle=True, stratify=y, random_state=seed
    )
    scaler = MinMaxScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def default_methods(
    params: dict[str, Any] | None = None,
    baselines: Sequence[str] | None = None,
    compare: dict[str, Any] | None = None,
) -> dict[str, Detector]:
    """The detector (with ``params`` over its defaults), a second configuration of it with ``compare``
    over those when given, and the baselines of :func:`~pipelines.benchmarks.baselines.tabular_baselines`
    named in ``baselines`` (None: all of them)."""
    params = params or {}
    methods: dict[str, Detector] = {"VAEDetector": lambda seed: VAEDetector(**{"random_state": seed, **params})}
    if compare:
        name = "VAEDetector " + json.dumps(compare)
        methods[name] = lambda seed: VAEDetector(**{"random_state": seed, **params, **compare})
    available = tabular_baselines()
    unknown = sorted(set(baselines or ()) - set(available))
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; available: {sorted(available)}")
    return methods | {name: make for name, make in available.items() if baselines is None or name in baselines}


def run_dataset(
    path: Path, methods: dict[str, Detector], seeds: list[int], subsample: int | None = None
) -> list[Result]:
    """Every method on every seed of one data set. ``subsample``: first keep a stratified subsample of that
    many rows (seeded), the small-data variant in which the protocol then duplicates rows up to 1,000."""
    data = np.load(path)
    X, y = data["X"].astype(np.float64), data["y"].astype(int)
    if subsample and len(X) > subsample:
        X, _, y, _ = train_test_split(X, y, train_size=subsample, stratify=y, random_state=123)
    results = []
    for seed in seeds:
        X_train, X_test, _, y_test = protocol_split(X, y, seed)
        for name, make in methods.items():
            detector = make(seed)
            start = time.perf_counter()
            detector.fit(X_train)
            fit_seconds = time.perf_counter() - start
            scores = detector.decision_function(X_test)
            results.append(
                Result(
                    path.stem,
                    name,
                    seed,
                    roc_auc_score(y_test, scores),
                    average_precision_score(y_test, scores),
                    fit_seconds,
                )
            )
    return results


Task = tuple[Path, list[int], "int | None", dict[str, Any], "Sequence[str] | None", "dict[str, Any] | None"]


def _run_one(task: Task) -> list[Result]:
    import torch

    torch.set_num_threads(1)  # one thread per data set; data sets run in parallel
    path, seeds, subsample, params, baselines, compare = task
    return run_dataset(path, default_methods(params, baselines, compare), seeds, subsample)


def run_benchmark(
    data_dir: Path,
    seeds: list[int],
    output: Path,
    *,
    jobs: int = 2,
    subsample: int | None = None,
    params: dict[str, Any] | None = None,
    baselines: Sequence[str] | None = None,
    compare: dict[str, Any] | None = None,
) -> str:
    """Run every method on every ``*.npz`` in ``data_dir``; write ``adbench.csv`` and ``adbench.md``.

    Returns the markdown table: mean AUROC, mean AUPR, average AUROC rank and mean fit time per method.
    """
    files = sorted(Path(data_dir).glob("*.npz"))
    if not files:
        raise FileNotFoundError(f"no .npz files in {data_dir}")
    default_methods(params, baselines, compare)  # unknown baselines fail here, before any work
    tasks: list[Task] = [(f, seeds, subsample, params or {}, baselines, compare) for f in files]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = [r for rs in pool.map(_run_one, tasks) for r in rs]
    variant = f", each first subsampled to {subsample} rows" if subsample else ""
    header = f"{len(files)} data sets{variant}, seeds {seeds}; AUROC and AUPR on the 30% test part, mean over seeds."
    stem = f"adbench_subsample{subsample}" if subsample else "adbench"
    return write_tables(results, output, stem, header)
