"""The ADBench protocol for unsupervised detectors (see ../shared/data/README.md), with the project's
detector and baselines run side by side on the same splits.

Two settings: ``contaminated`` (the data README's protocol: the training part keeps its anomalies) and
``one-class`` (DTE, Livernoche et al. ICLR 2024: subsample to 10,000 rows, split the normal rows 50/50,
train on one half, test on the other half plus every anomaly). The anomalies are the data set's own
(``real``) or ADBench-style synthetic ones made from its normal rows
(:mod:`pipelines.benchmarks.synthetic_anomalies`). The tables report the tuning and confirmation groups
of :mod:`pipelines.benchmarks.groups` apart."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

from anomaly_vae import VAEDetector
from pipelines.benchmarks.baselines import Detector, tabular_baselines
from pipelines.benchmarks.groups import CHOICES, grouped_tables, in_group
from pipelines.benchmarks.results import Result, per_set_means, write_tables
from pipelines.benchmarks.synthetic_anomalies import TYPES, synthetic_anomalies

SETTINGS = ("contaminated", "one-class")
ANOMALIES = ("real", *(f"synthetic-{t}" for t in TYPES))
MAX_ROWS = 10_000
ONE_CLASS_BASELINES = ("IsolationForest", "KNN", "PyOD VAE")  # the one-class setting's default baselines


def protocol_split(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Resample to 1,000..10,000 rows, stratified 70/30 split, MinMax scaling fitted on the training part.

    The resampling draws from ``np.random.RandomState(seed)``, the generator of the reference protocol,
    so the rows (and the baselines' scores) are those of ``pyod_baselines_auroc.csv``.
    """
    if len(X) < 1000:
        index = np.random.RandomState(seed).choice(len(X), 1000, replace=True)
        X, y = X[index], y[index]
    X, y = at_most_max_rows(X, y, seed)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, shuffle=True, stratify=y, random_state=seed
    )
    scaler = MinMaxScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def at_most_max_rows(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A set of more than ``MAX_ROWS`` rows subsampled to that many, drawn without replacement by
    ``np.random.RandomState(seed)`` (the reference protocol's draw); smaller sets as they are."""
    if len(X) <= MAX_ROWS:
        return X, y
    index = np.random.RandomState(seed).choice(len(X), MAX_ROWS, replace=False)
    return X[index], y[index]


def one_class_split(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The one-class setting: subsample to 10,000 rows (the protocol's ``RandomState(seed)`` draw; smaller
    sets are not resampled), split the normal rows 50/50 (seeded), train on one half, test on the other half
    plus every anomaly; MinMax scaling fitted on the training part. Returns X_train, X_test, y_train (all
    0), y_test."""
    X, y = at_most_max_rows(X, y, seed)
    normal = np.flatnonzero(y == 0)
    train, held_out = train_test_split(normal, test_size=0.5, shuffle=True, random_state=seed)
    test = np.concatenate([held_out, np.flatnonzero(y != 0)])
    scaler = MinMaxScaler().fit(X[train])
    return scaler.transform(X[train]), scaler.transform(X[test]), y[train], y[test]


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


def with_anomalies(X: np.ndarray, y: np.ndarray, anomalies: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The data set itself (``real``) or, for ``synthetic-TYPE``, synthetic rows of that type made from the
    normal rows of the protocol's 10,000-row subsample (the same ``RandomState(seed)`` draw)."""
    if anomalies == "real":
        return X, y
    if anomalies not in ANOMALIES:
        raise ValueError(f"unknown anomalies {anomalies!r}; choose from {ANOMALIES}")
    X, y = at_most_max_rows(X, y, seed)
    return synthetic_anomalies(X, y, anomalies.removeprefix("synthetic-"), seed)


def evaluate(
    methods: dict[str, Detector], seed: int, dataset: str, X_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray
) -> list[Result]:
    """Fit every method on ``X_train`` (without labels); AUROC and AUPR of its scores on ``X_test``."""
    results = []
    for name, make in methods.items():
        detector = make(seed)
        start = time.perf_counter()
        detector.fit(X_train)
        fit_seconds = time.perf_counter() - start
        scores = detector.decision_function(X_test)
        auroc, aupr = roc_auc_score(y_test, scores), average_precision_score(y_test, scores)
        results.append(Result(dataset, name, seed, auroc, aupr, fit_seconds))
    return results


def run_dataset(
    path: Path,
    methods: dict[str, Detector],
    seeds: list[int],
    subsample: int | None = None,
    *,
    setting: str = "contaminated",
    anomalies: Sequence[str] = ("real",),
) -> list[Result]:
    """Every method on every seed of one data set, in ``setting`` (:data:`SETTINGS`), once per kind of
    ``anomalies`` (:data:`ANOMALIES`; results of ``synthetic-TYPE`` are named ``STEM:TYPE``). ``subsample``:
    first keep a stratified subsample of that many rows (seeded), the small-data variant in which the
    contaminated protocol then duplicates rows up to 1,000."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; choose from {SETTINGS}")
    data = np.load(path)
    X, y = data["X"].astype(np.float64), data["y"].astype(int)
    if subsample and len(X) > subsample:
        X, _, y, _ = train_test_split(X, y, train_size=subsample, stratify=y, random_state=123)
    split = protocol_split if setting == "contaminated" else one_class_split
    results = []
    for seed in seeds:
        for kind in anomalies:
            X_kind, y_kind = with_anomalies(X, y, kind, seed)
            X_train, X_test, _, y_test = split(X_kind, y_kind, seed)
            name = path.stem if kind == "real" else f"{path.stem}:{kind.removeprefix('synthetic-')}"
            results += evaluate(methods, seed, name, X_train, X_test, y_test)
    return results


@dataclass(frozen=True)
class Options:
    """What every data set's run shares (sent to the worker processes)."""

    seeds: list[int]
    subsample: int | None = None
    setting: str = "contaminated"
    anomalies: tuple[str, ...] = ("real",)
    params: dict[str, Any] = field(default_factory=dict)
    baselines: Sequence[str] | None = None
    compare: dict[str, Any] | None = None


def _run_one(task: tuple[Path, Options]) -> list[Result]:
    import torch

    torch.set_num_threads(1)  # one thread per data set; data sets run in parallel
    path, o = task
    methods = default_methods(o.params, o.baselines, o.compare)
    return run_dataset(path, methods, o.seeds, o.subsample, setting=o.setting, anomalies=o.anomalies)


def describe(options: Options, n_sets: int, group: str) -> tuple[str, str]:
    """The table's first line and the output files' stem (``adbench`` for the contaminated protocol on
    every real set, as before the settings existed)."""
    variant = f", each first subsampled to {options.subsample} rows" if options.subsample else ""
    sets = f"{n_sets} data sets" + ("" if group == "all" else f" (group {group})")
    if options.setting == "one-class":
        protocol = "one-class setting (train on half the normal rows; test on the other half and every anomaly)"
    else:
        protocol = "contaminated protocol, AUROC and AUPR on the 30% test part"
    kinds = [a.removeprefix("synthetic-") for a in options.anomalies]
    anomalies = "" if kinds == ["real"] else f"; anomalies: {', '.join(kinds)} (one point per set and type)"
    header = f"{sets}{variant}, seeds {options.seeds}; {protocol}{anomalies}; mean over seeds."
    stem = "adbench" + (f"_subsample{options.subsample}" if options.subsample else "")
    stem += "" if options.setting == "contaminated" else "_one-class"
    stem += "" if kinds == ["real"] else "_" + "-".join(kinds)
    return header, stem + ("" if group == "all" else f"_{group}")


def run_benchmark(
    data_dir: Path,
    seeds: list[int],
    output: Path,
    *,
    jobs: int = 2,
    group: str = "all",
    **options: Any,
) -> str:
    """Run every method on every ``*.npz`` of ``group`` (:data:`~pipelines.benchmarks.groups.CHOICES`) in
    ``data_dir``; write ``STEM.csv`` and ``STEM.md`` (see :func:`describe`). ``options``: the fields of
    :class:`Options` (``subsample``, ``setting``, ``anomalies``, ``params``, ``baselines``, ``compare``);
    the one-class setting's baselines default to :data:`ONE_CLASS_BASELINES` (those installed).

    Returns the markdown: mean AUROC, mean AUPR, average AUROC rank and mean fit time per method, AUROC per
    data set, then per group the paired comparison with the detector (wins and Wilcoxon p-values).
    """
    if group not in CHOICES:
        raise ValueError(f"unknown group {group!r}; choose from {CHOICES}")
    if options.get("setting") == "one-class" and options.get("baselines") is None:
        options["baselines"] = [b for b in ONE_CLASS_BASELINES if b in tabular_baselines()]
    run = Options(seeds=list(seeds), **{k: v for k, v in options.items() if v is not None})
    files = [f for f in sorted(Path(data_dir).glob("*.npz")) if in_group(f.stem, group)]
    if not files:
        raise FileNotFoundError(f"no .npz files of group {group} in {data_dir}")
    default_methods(run.params, run.baselines, run.compare)  # unknown baselines fail here, before any work
    unknown = sorted(set(run.anomalies) - set(ANOMALIES))
    if unknown:
        raise ValueError(f"unknown anomalies {unknown}; choose from {ANOMALIES}")
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = [r for rs in pool.map(_run_one, [(f, run) for f in files]) for r in rs]
    header, stem = describe(run, len(files), group)
    return write_tables(results, output, stem, header, grouped_tables(per_set_means(results), "VAEDetector"))
