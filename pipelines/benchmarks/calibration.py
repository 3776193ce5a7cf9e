"""`anomaly-vae benchmark calibration`: how far one fitted model's false-positive rate can be from the
``fpr`` it was asked for, with split and with out-of-bag calibration, side by side in one run.

Split-conformal calibration promises P(p_value <= fpr) <= fpr on average over the draw of the
calibration set. For one fitted model the realised rate (the share of fresh normal records flagged) is
a random variable: with n calibration scores and k = floor(fpr (n + 1)), the threshold is the k-th
largest calibration score, and the share of fresh records above it follows Beta(k, n + 1 - k) (mean
k / (n + 1) <= fpr), whatever the model. Out-of-bag calibration scores each training record with the
members that left it out, not with the whole ensemble, so no such law is proven for it: its rates are
what this benchmark measures. The benchmark fits the default detector on fresh draws of the synthetic
mixed-type data (:mod:`pipelines.synthetic`; a new data set and a new split per seed), with each
calibration method, scores one large fresh sample from the same generator, and sets the realised rates
beside the Beta law of the split method.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from anomaly_vae import VAEDetector
from anomaly_vae.calibration import UnresolvableFprWarning
from pipelines.synthetic import mixed_frame

FRESH_SEED = 1_000_000  # the fresh sample's seed, apart from the training seeds


def beta_law(n_cal: int, fpr: float) -> stats.rv_continuous:
    """Distribution of the realised false-positive rate of a threshold from ``n_cal`` calibration scores."""
    k = math.floor(fpr * (n_cal + 1) + 1e-9)  # the rounding of anomaly_vae.calibration.Calibration.threshold
    return stats.beta(k, n_cal + 1 - k)


def realised_rates(
    train_rows: int, seeds: Sequence[int], fprs: Sequence[float], fresh: pd.DataFrame, params: dict[str, Any]
) -> tuple[list[int], np.ndarray]:
    """Calibration-set sizes and realised rates (one row per seed, one column per fpr) of detectors
    fitted on ``train_rows`` fresh rows each, scored on ``fresh``."""
    sizes, rates = [], []
    for seed in seeds:
        with warnings.catch_warnings():  # an unresolvable fpr is part of what is measured
            warnings.simplefilter("ignore", UnresolvableFprWarning)
            detector = VAEDetector(**{"random_state": seed, **params}).fit(mixed_frame(train_rows, seed=seed)[0])
        scores = detector.decision_function(fresh)
        sizes.append(detector.calibration_.size)
        rates.append([np.mean(scores > detector.calibration_.threshold(detector.default_score_, f)) for f in fprs])
    return sizes, np.asarray(rates)


def _percent(x: float) -> str:
    return f"{100 * x:.2f}%"


def summary_row(method: str, train_rows: int, fpr: float, sizes: list[int], rates: np.ndarray) -> str:
    """One table row: the realised rates and, for split calibration, the Beta law mixed over the seeds'
    calibration sizes."""
    cells = [method, f"{train_rows:,}", f"{min(sizes):,}-{max(sizes):,}", f"{fpr:g}", str(len(rates))]
    low, high = np.percentile(rates, [5, 95])
    cells += [_percent(x) for x in (rates.mean(), low, high, rates.max())]
    cells.append(f"{np.mean(rates > fpr):.0%}")
    if method == "split":  # a calibration set that cannot resolve fpr flags nothing: a point mass at 0
        laws = [beta_law(n, fpr) if math.floor(fpr * (n + 1) + 1e-9) else None for n in sizes]
        grid = np.linspace(0.0, 4 * fpr, 4001)
        cdf = np.mean([np.ones_like(grid) if law is None else law.cdf(grid) for law in laws], axis=0)
        theory_low, theory_high = grid[np.searchsorted(cdf, 0.05)], grid[np.searchsorted(cdf, 0.95)]
        mean = float(np.mean([0.0 if law is None else law.mean() for law in laws]))
        cells += [_percent(mean), f"{_percent(theory_low)}-{_percent(theory_high)}"]
    else:
        cells += ["-", "-"]
    return "| " + " | ".join(cells) + " |"


def run_calibration_benchmark(
    train_rows: Sequence[int] = (100, 300, 1000, 10_000),
    seeds: Sequence[int] = tuple(range(100)),
    fprs: Sequence[float] = (0.01, 0.05, 0.1),
    fresh_rows: int = 50_000,
    params: dict[str, Any] | None = None,
    methods: Sequence[str] = ("split", "out_of_bag"),
) -> str:
    """Markdown table of realised false-positive rates per calibration method, training size and fpr
    (``params``: detector arguments over the defaults)."""
    torch.set_num_threads(1)
    fresh = mixed_frame(fresh_rows, seed=FRESH_SEED)[0]
    lines = [
        f"Default VAEDetector fitted on n rows of `mixed_frame(n, seed)` for seeds {seeds[0]}..{seeds[-1]} (a new "
        f"data set per seed), with each calibration method; realised false-positive rate = share of {fresh_rows:,} "
        "fresh rows of the same generator above the model's threshold (0 where the calibration set cannot resolve "
        "the fpr). Theory (split only): Beta(k, n_cal + 1 - k), k = floor(fpr (n_cal + 1)), mixed over the seeds' "
        "calibration sizes.",
        "",
        "| calibration | training rows | calibration rows | fpr | models | realised mean | 5% | 95% | max "
        "| models above fpr | theory mean | theory 5-95% |",
        "|" + " --- |" * 12,
    ]
    for n in train_rows:
        for method in methods:
            sizes, rates = realised_rates(n, seeds, fprs, fresh, {**(params or {}), "calibration": method})
            lines += [summary_row(method, n, fpr, sizes, rates[:, j]) for j, fpr in enumerate(fprs)]
    return "\n".join(lines)
