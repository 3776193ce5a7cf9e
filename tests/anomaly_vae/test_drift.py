"""Drift statistics, the reference profile saved with a model, and drift reports on planted shifts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anomaly_vae import VAEDetector, drift
from tests.conftest import mixed_frame

WINDOW = 500  # the window size the planted shifts below are flagged within


def test_statistics_are_zero_on_identical_inputs_and_grow_with_the_difference():
    counts = np.array([100, 200, 300, 400])
    assert drift.psi(counts, counts) == pytest.approx(0.0, abs=1e-12)
    assert 0 < drift.psi(counts, counts[::-1] // 2) < drift.psi(counts, np.array([0, 0, 0, 500]))
    values = np.random.default_rng(0).normal(size=5000)
    sketch = drift.quantile_sketch(values, 100)
    assert drift.ks_statistic(sketch, values) <= 0.01
    assert drift.ks_statistic(sketch, values + 100) == 1.0
    assert drift.ks_statistic(sketch, values + 0.5) == pytest.approx(0.197, abs=0.02)  # Phi(0.25) - Phi(-0.25)
    assert drift.jensen_shannon(counts, 3 * counts) == pytest.approx(0.0, abs=1e-7)
    assert drift.jensen_shannon(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    identity = np.eye(2)
    assert drift.gaussian_kl(np.zeros(2), identity, np.zeros(2), identity) == pytest.approx(0.0)
    assert drift.gaussian_kl(np.array([1.0, 0.0]), identity, np.zeros(2), identity) == pytest.approx(0.5)


def test_bins_keep_ties_together_and_leave_missing_values_out():
    values = np.array([1.0, 1.0, 1.0, 2.0, 3.0, np.nan])
    edges = drift.quantile_edges(values, 10)
    assert edges.tolist() == [1.0, 2.0, 3.0]  # repeated quantiles of a discrete column collapse
    assert drift.bin_counts(values, edges).tolist() == [3, 1, 1, 0]
    assert drift.missing_rate(values) == pytest.approx(1 / 6)


def test_outlier_count_p_value_matches_simulation():
    """The beta-binomial tail: outlier rate Beta-distributed through the calibration, counts binomial."""
    n_cal, fpr, n = 600, 0.01, 500
    rng = np.random.default_rng(0)
    k = np.floor(fpr * (n_cal + 1))
    rates = rng.beta(k, n_cal + 1 - k, size=400_000)
    counts = rng.binomial(n, rates)
    for flagged in (0, 5, 12, 20):
        assert drift.outlier_count_p_value(flagged, n, n_cal, fpr) == pytest.approx(
            (counts >= flagged).mean(), rel=0.05, abs=2e-4
        )
    assert drift.expected_outlier_rate(fpr, n_cal) == pytest.approx(6 / 601)


@pytest.fixture(scope="module")
def iid_windows(fitted):
    """100 windows of WINDOW fresh rows from the training distribution, scored once."""
    frame = mixed_frame(100 * WINDOW, seed=11)[0]
    return frame, fitted.decision_function(frame)


def test_no_alarm_on_iid_data_at_the_default_thresholds(fitted, iid_windows):
    """False-alarm rate over 100 windows of i.i.d. records (any alarm of any statistic counts)."""
    frame, scores = iid_windows
    reports = [
        fitted.drift(frame.iloc[i : i + WINDOW], scores=scores[i : i + WINDOW]) for i in range(0, len(frame), WINDOW)
    ]
    alarms = [r.alarms for r in reports if r.drifted]
    assert alarms == []  # none in 100
    p_values = [f.p_value for r in reports for f in r.features] + [r.score_p_value for r in reports]
    assert 0.3 < np.median(p_values) < 0.7  # tests of unchanged data: p-values spread over (0, 1)


def test_the_training_data_and_small_windows_raise_no_alarm(fitted, train_frame, iid_windows):
    assert fitted.drift(train_frame).alarms == []
    frame, scores = iid_windows
    small = [fitted.drift(frame.iloc[i : i + 40], scores=scores[i : i + 40]) for i in range(0, 4000, 40)]
    assert [r.alarms for r in small] == [[]] * 100
    # on 40 rows PSI alone is noise: most windows pass 0.2 somewhere, a fixed threshold would cry wolf
    assert np.mean([max(f.psi for f in r.features) > 0.2 for r in small]) > 0.5


def shifted(frame: pd.DataFrame, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    numeric = frame.copy()
    numeric["duration"] += frame["duration"].std()  # one standard deviation
    mix = frame.copy()
    mix["channel"] = np.where(rng.random(len(frame)) < 0.8, "web", "store").astype(object)  # 50/50 -> 80/20
    unseen = frame.copy()
    unseen.loc[rng.random(len(frame)) < 0.3, "tier"] = "platinum"
    missing = frame.copy()
    missing.loc[rng.random(len(frame)) < 0.3, "amount"] = np.nan
    return {"duration": numeric, "channel": mix, "tier": unseen, "amount": missing}


@pytest.mark.parametrize("feature", ["duration", "channel", "tier", "amount"])
def test_a_planted_shift_is_flagged_on_that_feature_within_one_window(fitted, feature):
    window = shifted(mixed_frame(WINDOW, seed=3)[0], seed=3)[feature]
    report = fitted.drift(window)
    assert report.drifted_features == [feature], [(f.name, f.psi, f.missing_delta) for f in report.features]
    assert f"feature:{feature}" in report.alarms
    top = max(report.features, key=lambda f: f.psi if feature != "amount" else abs(f.missing_delta))
    assert top.name == feature


def test_an_outlier_spike_raises_the_outlier_alarm(fitted):
    frame, _ = mixed_frame(WINDOW - 50, seed=4, n_anomalies=50)
    report = fitted.drift(frame)
    assert report.outlier_rate > 3 * report.expected_outlier_rate
    assert report.outlier_p_value < 1e-4 and "outlier_rate" in report.alarms


def test_profile_round_trips_and_reports_are_json(fitted, tmp_path):
    window = mixed_frame(300, seed=6)[0]
    fitted.save(tmp_path / "model")
    loaded = VAEDetector.load(tmp_path / "model")
    report = loaded.drift(window)
    assert report.to_dict() == fitted.drift(window).to_dict()
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert json.loads(text)["features"][0]["name"] == "amount"
    assert report.n_records == 300 and report.features[0].bins[0].startswith("<=")


def test_a_model_saved_without_a_profile_still_loads_and_says_drift_is_unavailable(fitted, tmp_path):
    fitted.save(tmp_path / "old")
    meta_path = tmp_path / "old" / "model.json"
    meta = json.loads(meta_path.read_text())
    del meta["profile"]
    meta_path.write_text(json.dumps(meta))
    old = VAEDetector.load(tmp_path / "old")
    assert old.profile_ is None
    window = mixed_frame(50, seed=7)[0]
    assert old.score_frame(window).shape[0] == 50
    with pytest.raises(ValueError, match="no reference profile"):
        old.drift(window)
