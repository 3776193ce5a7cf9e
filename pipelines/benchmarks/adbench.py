"""The ADBench protocol for unsupervised detectors (see ../shared/data/README.md), with the project's
detector and baselines run side by side on the same splits."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

from anomaly_vae import VAEDetector

Detector = Callable[[int], Any]  # seed -> an unfitted detector with fit / decision_function


@dataclass(frozen=True)
class Result:
    dataset: str
    method: str
    seed: int
    auroc: float
    aupr: float
    fit_seconds: float


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


def default_methods(params: dict[str, Any] | None = None, baselines: bool = True) -> dict[str, Detector]:
    """The detector (with ``params`` over its defaults) and, unless ``baselines`` is off, the baselines:
    scikit-learn's IsolationForest, and PyOD's VAE, AutoEncoder, IForest and ECOD when pyod is installed."""
    methods: dict[str, Detector] = {"VAEDetector": lambda seed: VAEDetector(**{"random_state": seed, **(params or {})})}
    if not baselines:
        return methods
    methods["IsolationForest"] = lambda seed: _SklearnOutlier(IsolationForest(random_state=seed))
    try:
        from pyod.models.auto_encoder import AutoEncoder
        from pyod.models.ecod import ECOD
        from pyod.models.iforest import IForest
        from pyod.models.vae import VAE
    except ImportError:
        return methods
    methods["PyOD VAE"] = lambda seed: VAE(random_state=seed, verbose=0)
    methods["PyOD AutoEncoder"] = lambda seed: AutoEncoder(random_state=seed, verbose=0)
    methods["PyOD IForest"] = lambda seed: IForest(random_state=seed)
    methods["PyOD ECOD"] = lambda seed: ECOD()
    return methods


class _SklearnOutlier:
    """scikit-learn outlier estimators score inliers high; flip to higher = more anomalous."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: np.ndarray) -> _SklearnOutlier:
        self.estimator.fit(X)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return -self.estimator.score_samples(X)


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


def _run_one(args: tuple[Path, list[int], int | None, dict[str, Any], bool]) -> list[Result]:
    import torch

    torch.set_num_threads(1)  # one thread per data set; data sets run in parallel
    path, seeds, subsample, params, baselines = args
    return run_dataset(path, default_methods(params, baselines), seeds, subsample)


def run_benchmark(
    data_dir: Path,
    seeds: list[int],
    output: Path,
    *,
    jobs: int = 2,
    subsample: int | None = None,
    params: dict[str, Any] | None = None,
    baselines: bool = True,
) -> str:
    """Run every method on every ``*.npz`` in ``data_dir``; write ``adbench.csv`` and ``adbench.md``.

    Returns the markdown table: mean AUROC, mean AUPR, average AUROC rank and mean fit time per method.
    """
    files = sorted(Path(data_dir).glob("*.npz"))
    if not files:
        raise FileNotFoundError(f"no .npz files in {data_dir}")
    tasks = [(f, seeds, subsample, params or {}, baselines) for f in files]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = [r for rs in pool.map(_run_one, tasks) for r in rs]
    variant = f", each first subsampled to {subsample} rows" if subsample else ""
    header = f"{len(files)} data sets{variant}, seeds {seeds}; AUROC and AUPR on the 30% test part, mean over seeds."
    stem = f"adbench_subsample{subsample}" if subsample else "adbench"
    return write_tables(results, output, stem, header)


def write_tables(results: list[Result], output: Path, stem: str, header: str) -> str:
    """Write ``stem.csv`` (one row per data set, method and seed) and ``stem.md`` to ``output``.

    Returns the markdown: ``header``, then mean AUROC, mean AUPR, average AUROC rank and mean fit time per
    method, then AUROC per data set and method (means over seeds).
    """
    import pandas as pd

    frame = pd.DataFrame([r.__dict__ for r in results])
    output.mkdir(parents=True, exist_ok=True)
    frame.to_csv(output / f"{stem}.csv", index=False)
    per_set = frame.groupby(["dataset", "method"])[["auroc", "aupr", "fit_seconds"]].mean().reset_index()
    per_set["rank"] = per_set.groupby("dataset")["auroc"].rank(ascending=False)
    summary = per_set.groupby("method")[["auroc", "aupr", "rank", "fit_seconds"]].mean()
    summary = summary.sort_values("auroc", ascending=False)
    wide = per_set.pivot(index="dataset", columns="method", values="auroc")[summary.index]
    lines = [
        header,
        "",
        "| method | mean AUROC | mean AUPR | average rank | mean fit seconds |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {m} | {r.auroc:.3f} | {r.aupr:.3f} | {r['rank']:.2f} | {r.fit_seconds:.2f} |"
            for m, r in summary.iterrows()
        ),
        "",
        "| data set | " + " | ".join(wide.columns) + " |",
        "| --- |" + " --- |" * len(wide.columns),
        *(f"| {d} | " + " | ".join(f"{v:.3f}" for v in row) + " |" for d, row in wide.iterrows()),
    ]
    table = "\n".join(lines)
    (output / f"{stem}.md").write_text(table + "\n")
    return table
