"""ADBench-style synthetic anomalies: counts, shapes, and what makes each type anomalous."""

import numpy as np
import pytest

from pipelines.benchmarks.synthetic_anomalies import TYPES, synthetic_anomalies


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 1))
    X = np.hstack([z, 2 * z + 0.1 * rng.normal(size=(400, 1)), rng.integers(0, 3, size=(400, 1))]) * 10 + 50
    y = np.r_[np.zeros(370, int), np.ones(30, int)]
    return X, y


@pytest.mark.parametrize("kind", TYPES)
def test_counts_shape_and_determinism(data, kind):
    X, y = data
    rows, labels = synthetic_anomalies(X, y, kind, seed=1, max_components=2)
    assert rows.shape == X.shape and labels.sum() == 30 and np.isfinite(rows).all()
    again, _ = synthetic_anomalies(X, y, kind, seed=1, max_components=2)
    np.testing.assert_array_equal(rows, again)


def test_each_type_is_anomalous_in_its_own_way(data):
    X, y = data
    normal = X[y == 0]
    residual = lambda rows: np.abs(rows[:, 1] - 2 * rows[:, 0] + 50)  # noqa: E731  the planted dependence
    rows, labels = synthetic_anomalies(X, y, "dependency", seed=0)
    assert set(np.unique(rows[:, 2])) <= set(np.unique(normal[:, 2]))  # real marginal values, discrete stays discrete
    assert np.median(residual(rows[labels == 1])) > 10 * np.median(residual(rows[labels == 0]))
    rows, labels = synthetic_anomalies(X, y, "local", seed=0, max_components=2)
    spread = rows[labels == 1, :2].std(axis=0) / rows[labels == 0, :2].std(axis=0)
    assert np.all(spread > 1.5)  # covariances scaled by 5: deviations by about 2.2 (the continuous columns)
    rows, labels = synthetic_anomalies(X, y, "global", seed=0, max_components=2)
    low, high = rows[labels == 0].min(axis=0), rows[labels == 0].max(axis=0)
    margin = 0.11 * (high - low)
    assert np.all(rows[labels == 1] >= low - margin) and np.all(rows[labels == 1] <= high + margin)
