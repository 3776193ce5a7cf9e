"""Do samples at the defaults look like the data? `anomaly-vae benchmark fidelity`.

The detector (defaults unless ``params``) is fitted on a data set, draws ``n_samples`` records, and
:func:`pipelines.fidelity.compare` sets them against the training rows: the largest per-column KS
statistic (numeric columns), the largest difference of a category's share (categorical and boolean
columns, missing counted as a category), the largest difference of a column's missing share, and the
largest difference between Spearman correlations. Two data sets: the mixed synthetic frame of
:func:`pipelines.synthetic.mixed_frame` (numeric, categorical, boolean columns, missing values) and the
demo's training frame (:func:`pipelines.demo.demo_frames`, breast cancer, label column dropped).
Issue #22's target: max KS <= 0.10 and category shares within 0.05.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from anomaly_vae import VAEDetector

Loader = Callable[[int, int], pd.DataFrame]  # (rows, seed) -> training frame


def mixed_data(rows: int, seed: int) -> pd.DataFrame:
    from pipelines.synthetic import mixed_frame

    return mixed_frame(rows, seed)[0]


def demo_data(rows: int, seed: int) -> pd.DataFrame:
    """The demo's training frame (its size is fixed: ``rows`` is ignored), without the label column."""
    from pipelines.demo import demo_frames

    return demo_frames(seed)[0].drop(columns="malignant")


DATA: dict[str, Loader] = {"mixed synthetic": mixed_data, "demo (breast cancer)": demo_data}


def _worst(columns: pd.DataFrame, kind: str) -> str:
    """The largest statistic of the columns of ``kind`` and its column, or ``none`` without such columns."""
    chosen = columns[columns["kind"] == kind]["value"].dropna()
    return f"{chosen.max():.3f} ({chosen.idxmax()})" if len(chosen) else "none"


def measure(name: str, data: pd.DataFrame, seed: int, n_samples: int, params: dict[str, Any]) -> dict[str, Any]:
    """Fit on ``data``, draw ``n_samples`` records, compare them with ``data``: one row of the table."""
    from pipelines import fidelity

    start = time.perf_counter()
    detector = VAEDetector(**{"random_state": seed, **params}).fit(data)
    fit_seconds = time.perf_counter() - start
    samples = detector.sample(n_samples, random_state=seed)
    result = fidelity.compare(samples, data)
    columns = result.columns
    return {
        "data": name,
        "seed": seed,
        "rows": len(data),
        "max KS": _worst(columns, "numeric"),
        "max share difference": _worst(columns, "categorical"),
        "max missing difference": float((columns["missing_samples"] - columns["missing_data"]).abs().max()),
        "max correlation difference": result.max_correlation_difference,
        "fit seconds": fit_seconds,
    }


def run_fidelity(
    seeds: list[int],
    *,
    rows: int = 5000,
    n_samples: int = 5000,
    params: dict[str, Any] | None = None,
    data: dict[str, Loader] | None = None,
) -> str:
    """The markdown table: one row per data set and seed (``rows`` training rows of the mixed frame)."""
    records = [
        measure(name, load(rows, seed), seed, n_samples, params or {})
        for name, load in (data or DATA).items()
        for seed in seeds
    ]
    lines = [
        f"Sample fidelity at {params if params else 'the defaults'}: {n_samples} samples against the training "
        f"rows, seeds {seeds}. Target (#22): max KS <= 0.10, category shares within 0.05.",
        "",
        "| data | seed | rows | max KS (column) | max share difference (column) | max missing difference "
        "| max correlation difference | fit seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *(
            f"| {r['data']} | {r['seed']} | {r['rows']} | {r['max KS']} "
            f"| {r['max share difference']} | {r['max missing difference']:.3f} "
            f"| {r['max correlation difference']:.3f} | {r['fit seconds']:.1f} |"
            for r in records
        ),
    ]
    return "\n".join(lines)
