"""Quality tests' data and baselines: data whose anomalies only break a dependence between columns (what
a density model should learn and a linear baseline cannot), and the simple baselines a detector must
beat on the same data to pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.covariance import EmpiricalCovariance
from sklearn.ensemble import IsolationForest

# a small detector trained long enough to learn a curved dependence (about 5 s on one core); the
# defaults stop after at most 800 steps and reach only 0.70-0.82 AUROC on manifold_frame, below the
# Mahalanobis baseline
QUALITY = {
    "n_members": 1,
    "hidden": (32, 16),
    "learning_rate": 3e-3,
    "max_steps": 2000,
    "patience": 40,
    "batch_size": 256,
}


def manifold_frame(n: int, seed: int, n_anomalies: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows on a curved two-dimensional surface: eight numeric columns are saturating functions of a
    two-dimensional latent factor (plus small noise) and the category ``kind`` is the largest of three
    projections of it. An anomaly is a row with two of its columns copied from another random row: every
    marginal distribution stays the same, only the dependence between the columns breaks. The surface is
    the same for every seed; the rows are drawn from ``seed``."""
    surface = np.random.default_rng(12345)
    weights, offsets = 2.0 * surface.normal(size=(2, 8)), surface.normal(size=8)
    scales, kinds = surface.uniform(0.5, 2.0, size=8), surface.normal(size=(2, 3))
    rng = np.random.default_rng(seed)
    m = n + n_anomalies
    z = rng.normal(size=(m, 2))
    frame = pd.DataFrame(scales * np.tanh(z @ weights + offsets), columns=[f"x{j}" for j in range(8)])
    frame += 0.05 * rng.normal(size=frame.shape)
    frame["kind"] = np.array(["a", "b", "c"], dtype=object)[np.argmax(z @ kinds, axis=1)]
    for row in range(n, m):
        columns = frame.columns[rng.choice(frame.shape[1], size=2, replace=False)]
        frame.loc[row, columns] = frame.loc[rng.integers(n), columns].to_numpy()
    labels = np.r_[np.zeros(n, int), np.ones(n_anomalies, int)]
    order = rng.permutation(m)
    return frame.iloc[order].reset_index(drop=True), labels[order]


class OneHot:
    """Numbers for any frame: numeric columns standardised with NaN set to the training mean plus a
    missing-value indicator, other columns one-hot encoded (a missing value is a category of its own)."""

    def fit(self, frame: pd.DataFrame) -> OneHot:
        self.numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and frame[c].dtype != bool]
        self.other = [c for c in frame.columns if c not in self.numeric]
        self.mean = frame[self.numeric].mean()
        self.std = frame[self.numeric].std().replace(0.0, 1.0)
        self.levels = {c: sorted(set(_labels(frame[c]))) for c in self.other}
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        numeric = frame[self.numeric].astype(float)
        parts = [((numeric - self.mean) / self.std).fillna(0.0).to_numpy(), numeric.isna().to_numpy(float)]
        for c in self.other:
            values = _labels(frame[c])
            parts.append(np.stack([values == level for level in self.levels[c]], axis=1).astype(float))
        return np.hstack(parts)


def mahalanobis_scores(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Squared Mahalanobis distance of the one-hot-encoded test rows from the training rows (higher = more
    anomalous); the pseudo-inverse handles the one-hot columns' linear dependence."""
    encoder = OneHot().fit(train)
    return EmpiricalCovariance().fit(encoder.transform(train)).mahalanobis(encoder.transform(test))


def isolation_forest_scores(train: pd.DataFrame, test: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """scikit-learn's IsolationForest at its defaults on the one-hot-encoded rows (higher = more anomalous)."""
    encoder = OneHot().fit(train)
    forest = IsolationForest(random_state=seed).fit(encoder.transform(train))
    return -forest.score_samples(encoder.transform(test))


def _labels(column: pd.Series) -> np.ndarray:
    return np.array([str(value) for value in column])  # None and NaN become labels of their own
