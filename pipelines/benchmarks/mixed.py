"""Mixed-type dependence: records whose categorical or boolean value contradicts their numeric values.

Four numeric columns and four derived columns, each a function of numeric ones with its own shape:
- ``above`` (boolean), a threshold: ``a > 0.3``;
- ``band`` (categorical), an interval / bucket of ``b``: low < -0.8 <= mid < 0 <= high < 0.8 <= top;
- ``same_sign`` (boolean), the sign of a product: ``a * c > 0``;
- ``region`` (categorical), the nearest of five fixed centroids in the (c, d) plane.
With ``noise`` > 0 the rule reads its inputs with Gaussian noise of that scale (nearly determined).
An anomaly is a normal record with ONE derived column changed to another value that the column takes in
normal records (drawn from its marginal), so that the value contradicts the rule while every value is
plausible alone. ``anomaly-vae benchmark mixed`` fits each method on a contaminated training frame and
reports AUROC on a fresh test frame, overall and per broken shape.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.covariance import EmpiricalCovariance
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from anomaly_vae import VAEDetector
from pipelines.benchmarks.baselines import KNN

SHAPES = {"above": "threshold", "band": "bucket", "same_sign": "product sign", "region": "nearest centroid"}
CENTROIDS = np.array([[-1.5, 0.0], [1.5, 0.0], [0.0, 1.5], [0.0, -1.5], [0.0, 0.0]])
BANDS = np.array(["low", "mid", "high", "top"], dtype=object)


def rules(numeric: pd.DataFrame, noise: float = 0.0, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """The derived columns that the numeric columns ``a, b, c, d`` determine (see the module docstring)."""
    rng = rng or np.random.default_rng(0)

    def read(name: str) -> np.ndarray:
        values = numeric[name].to_numpy(np.float64)
        return values + noise * rng.normal(size=len(values)) if noise else values

    a, b, c, d = read("a"), read("b"), read("c"), read("d")
    distances = (c[:, None] - CENTROIDS[:, 0]) ** 2 + (d[:, None] - CENTROIDS[:, 1]) ** 2
    return pd.DataFrame(
        {
            "above": a > 0.3,
            "band": BANDS[np.searchsorted([-0.8, 0.0, 0.8], b, side="right")],
            "same_sign": a * c > 0,
            "region": np.array([f"r{k}" for k in range(len(CENTROIDS))], dtype=object)[distances.argmin(axis=1)],
        },
        index=numeric.index,
    )


def mixed_dependence_frame(
    n: int, seed: int, n_anomalies: int = 0, noise: float = 0.0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``n`` normal records and ``n_anomalies`` contradicting ones, shuffled: the frame, the labels (1 =
    anomaly) and the name of the column each anomaly breaks (``""`` for normal records)."""
    rng = np.random.default_rng(seed)
    m = n + n_anomalies
    a = rng.normal(size=m)
    numeric = pd.DataFrame(
        {
            "a": a,
            "b": 0.6 * a + 0.8 * rng.normal(size=m),  # correlated with a
            "c": rng.uniform(-2.5, 2.5, size=m),
            "d": 1.2 * rng.standard_t(5, size=m),  # heavier tails
        }
    )
    frame = pd.concat([numeric, rules(numeric, noise, rng)], axis=1)
    broken = np.full(m, "", dtype=object)
    for row in range(n, m):
        column = list(SHAPES)[rng.integers(len(SHAPES))]
        current = frame.at[row, column]
        others = frame.loc[: n - 1, column]
        others = others[others != current]
        frame.at[row, column] = others.iloc[rng.integers(len(others))]
        broken[row] = column
    frame = frame.astype({"above": bool, "same_sign": bool, "band": object, "region": object})
    labels = np.r_[np.zeros(n, int), np.ones(n_anomalies, int)]
    order = rng.permutation(m)
    return frame.iloc[order].reset_index(drop=True), labels[order], broken[order]


class OneHot:
    """Numbers for the baselines: numeric columns standardised (training mean and deviation), the other
    columns one-hot encoded over their training levels."""

    def fit(self, frame: pd.DataFrame) -> OneHot:
        self.numeric = [c for c in frame.columns if frame[c].dtype.kind in "iuf"]
        self.other = [c for c in frame.columns if c not in self.numeric]
        self.mean, self.std = frame[self.numeric].mean(), frame[self.numeric].std().replace(0.0, 1.0)
        self.levels = {c: sorted(frame[c].astype(str).unique()) for c in self.other}
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        parts = [((frame[self.numeric] - self.mean) / self.std).to_numpy(np.float64)]
        for c in self.other:
            values = frame[c].astype(str).to_numpy()
            parts.append(np.stack([values == level for level in self.levels[c]], axis=1).astype(np.float64))
        return np.hstack(parts)


class Encoded:
    """A detector of numbers run on :class:`OneHot`-encoded frames."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector

    def fit(self, frame: pd.DataFrame) -> Encoded:
        self.encoder = OneHot().fit(frame)
        self.detector.fit(self.encoder.transform(frame))
        return self

    def decision_function(self, frame: pd.DataFrame) -> np.ndarray:
        return self.detector.decision_function(self.encoder.transform(frame))


class Mahalanobis:
    """Squared Mahalanobis distance from the training rows (pseudo-inverse covariance, so the one-hot
    columns' linear dependence is no problem)."""

    def fit(self, X: np.ndarray) -> Mahalanobis:
        self.covariance = EmpiricalCovariance().fit(X)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.covariance.mahalanobis(X)


class _Forest:
    def __init__(self, seed: int) -> None:
        self.forest = IsolationForest(random_state=seed)

    def fit(self, X: np.ndarray) -> _Forest:
        self.forest.fit(X)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return -self.forest.score_samples(X)


def mixed_methods(params: dict[str, Any] | None = None) -> dict[str, Callable[[int], Any]]:
    """VAEDetector (``params`` over its defaults) on the frame; IsolationForest, Mahalanobis distance and
    KNN (5th neighbour) on the one-hot-encoded frame."""
    params = params or {}
    return {
        "VAEDetector": lambda seed: VAEDetector(**{"random_state": seed, **params}),
        "IsolationForest (one-hot)": lambda seed: Encoded(_Forest(seed)),
        "Mahalanobis (one-hot)": lambda seed: Encoded(Mahalanobis()),
        "KNN (one-hot)": lambda seed: Encoded(KNN()),
    }


def run_seed(seed: int, methods: dict[str, Callable[[int], Any]], sizes: dict[str, Any]) -> list[dict[str, Any]]:
    """One training and one test frame of ``seed``; per method the AUROC overall and per broken column."""
    n_train, contamination = sizes["train_rows"], sizes["contamination"]
    n_test, test_anomalies, noise = sizes["test_rows"], sizes["test_anomalies"], sizes["noise"]
    train, _, _ = mixed_dependence_frame(n_train, seed, round(contamination * n_train), noise)
    test, labels, broken = mixed_dependence_frame(n_test, seed + 10_000, test_anomalies, noise)
    rows = []
    for name, make in methods.items():
        start = time.perf_counter()
        scores = make(seed).fit(train).decision_function(test)
        row = {"method": name, "seed": seed, "all": roc_auc_score(labels, scores)}
        for column, shape in SHAPES.items():
            chosen = (labels == 0) | (broken == column)
            row[shape] = roc_auc_score(labels[chosen], scores[chosen])
        rows.append(row | {"seconds": time.perf_counter() - start})
    return rows


def run_mixed(
    seeds: list[int],
    *,
    train_rows: int = 5000,
    contamination: float = 0.02,
    test_rows: int = 2000,
    test_anomalies: int = 400,
    noise: float = 0.0,
    params: dict[str, Any] | None = None,
) -> str:
    """The markdown table: mean AUROC over ``seeds`` per method, overall and per dependence shape."""
    sizes = {
        "train_rows": train_rows,
        "contamination": contamination,
        "test_rows": test_rows,
        "test_anomalies": test_anomalies,
        "noise": noise,
    }
    methods = mixed_methods(params)
    frame = pd.DataFrame([row for seed in seeds for row in run_seed(seed, methods, sizes)])
    means = frame.groupby("method", sort=False).mean(numeric_only=True).drop(columns="seed")
    columns = ["all", *SHAPES.values()]
    lines = [
        f"Mixed-type dependence: {train_rows} training records ({contamination:.0%} contradicting, unlabelled), "
        f"{test_rows} + {test_anomalies} test records, rule noise {noise}, seeds {seeds}; AUROC, mean over seeds "
        "(per shape: that shape's anomalies against every normal test record).",
        "",
        "| method | " + " | ".join(f"AUROC {c}" for c in columns) + " | seconds (fit + score) |",
        "| --- |" + " --- |" * (len(columns) + 1),
        *(
            f"| {m} | " + " | ".join(f"{r[c]:.3f}" for c in columns) + f" | {r['seconds']:.1f} |"
            for m, r in means.iterrows()
        ),
    ]
    return "\n".join(lines)
