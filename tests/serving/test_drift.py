"""Live drift gauges at /metrics, over real HTTP against the real app."""

from __future__ import annotations

import json
import shutil
import time

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.drift import DriftMonitor
from serving.metrics import Metrics
from serving.model_store import LoadedModel
from serving.settings import Settings
from tests.conftest import mixed_frame
from tests.serving.conftest import running

WINDOW, STEP, MAX_FEATURES = 200, 100, 3


def gauges(client: httpx.Client) -> dict[tuple[str, str | None], float]:
    """Samples of the anomaly_vae_drift_* families: (name, feature label or None) -> value."""
    text = client.get("/metrics").text
    return {
        (sample.name, sample.labels.get("feature")): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("anomaly_vae_drift")
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def send(client: httpx.Client, frame: pd.DataFrame, per_request: int = 50) -> None:
    for start in range(0, len(frame), per_request):
        rows = json.loads(frame.iloc[start : start + per_request].to_json(orient="records"))
        assert client.post("/v1/score", json={"records": rows}).status_code == 200


def wait_for_windows(client: httpx.Client, n: int, seconds: float = 60) -> dict[tuple[str, str | None], float]:
    deadline = time.monotonic() + seconds
    while True:
        values = gauges(client)
        if values.get(("anomaly_vae_drift_windows_total", None), 0) >= n:
            return values
        assert time.monotonic() < deadline, f"only {values.get(('anomaly_vae_drift_windows_total', None))} windows"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def drift_server(model_folder):
    settings = Settings(
        model_uri=str(model_folder),
        drift_window=WINDOW,
        drift_step=STEP,
        drift_max_features=MAX_FEATURES,
        drift_min_interval_seconds=0,
    )
    with running(settings) as (client, _):
        yield client


def test_gauges_match_the_library_on_the_last_window(drift_server, fitted):
    client = drift_server
    before = gauges(client)
    assert before[("anomaly_vae_drift_available", None)] == 1
    assert before[("anomaly_vae_drift_windows_total", None)] == 0
    iid = mixed_frame(WINDOW, seed=21)[0]
    send(client, iid)
    values = wait_for_windows(client, 1)
    expected = fitted.drift(iid)
    assert values[("anomaly_vae_drift_outlier_rate", None)] == pytest.approx(expected.outlier_rate)
    assert values[("anomaly_vae_drift_expected_outlier_rate", None)] == pytest.approx(expected.expected_outlier_rate)
    assert values[("anomaly_vae_drift_score_psi", None)] == pytest.approx(expected.score_psi, rel=1e-3)
    assert values[("anomaly_vae_drift_latent", None)] == pytest.approx(expected.latent_kl, rel=1e-3)
    assert values[("anomaly_vae_drift_alarm", None)] == 0
    for name in ("score", "latent", "outlier"):  # unchanged data: no calibrated flag
        assert values[(f"anomaly_vae_drift_{name}_alarm", None)] == 0
    exported = {label for name, label in values if name == "anomaly_vae_drift_feature_psi"}
    top = sorted(expected.features, key=lambda f: -f.psi)[:MAX_FEATURES]
    assert exported == {f.name for f in top}  # capped: the features with the highest PSI (none flagged)
    for feature in top:
        assert values[("anomaly_vae_drift_feature_psi", feature.name)] == pytest.approx(feature.psi, rel=1e-6)
        assert values[("anomaly_vae_drift_feature_alarm", feature.name)] == 0
        assert values[("anomaly_vae_drift_feature_missing_alarm", feature.name)] == 0
    assert values[("anomaly_vae_drift_feature_psi_max", None)] == pytest.approx(top[0].psi, rel=1e-6)

    # a sliding window: two requests of STEP shifted records give two more windows, the last one all shifted
    shifted = mixed_frame(WINDOW, seed=22)[0]
    shifted["duration"] += shifted["duration"].std()
    send(client, shifted.iloc[:STEP], per_request=STEP)
    wait_for_windows(client, 2)  # else window 3 may complete while 2 still runs, and be skipped by design
    send(client, shifted.iloc[STEP:], per_request=STEP)
    values = wait_for_windows(client, 3)
    psi = values[("anomaly_vae_drift_feature_psi", "duration")]
    report = fitted.drift(shifted)
    assert psi == pytest.approx(report.features[1].psi, rel=1e-6) and psi > 0.2
    assert values[("anomaly_vae_drift_features_drifted", None)] >= 1
    assert values[("anomaly_vae_drift_alarm", None)] == 1
    assert values[("anomaly_vae_drift_feature_alarm", "duration")] == 1  # the calibrated flag, as the library's
    assert values[("anomaly_vae_drift_feature_missing_alarm", "duration")] == 0
    assert report.features[1].distribution_drifted and "feature:duration" in report.alarms
    for name, alarm in (("score", "score"), ("latent", "latent"), ("outlier", "outlier_rate")):
        assert values[(f"anomaly_vae_drift_{name}_alarm", None)] == int(alarm in report.alarms)
    assert len({label for name, label in values if name == "anomaly_vae_drift_feature_psi"}) == MAX_FEATURES


def test_a_model_without_a_profile_is_served_and_says_drift_is_unavailable(model_folder, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(model_folder, old)
    meta = json.loads((old / "model.json").read_text())
    del meta["profile"]
    (old / "model.json").write_text(json.dumps(meta))
    settings = Settings(model_uri=str(old), drift_window=20, drift_step=20, drift_min_interval_seconds=0)
    with running(settings) as (client, _):
        send(client, mixed_frame(40, seed=23)[0], per_request=20)
        values = gauges(client)
        assert values[("anomaly_vae_drift_available", None)] == 0
        assert values[("anomaly_vae_drift_windows_total", None)] == 0
        assert not np.isnan(values[("anomaly_vae_drift_available", None)])


def test_windows_are_at_least_the_minimum_interval_apart(fitted):
    """Back-to-back windows would compete with requests for the GIL: the interval bounds how often."""
    metrics = Metrics()
    monitor = DriftMonitor(metrics, window=100, step=50, max_features=3, min_interval_seconds=3600)
    model = LoadedModel(fitted, "m", "1")
    frame = mixed_frame(300, seed=24)[0]
    for start in range(0, 300, 50):
        part = frame.iloc[start : start + 50]
        monitor.observe(model, {n: part[n].to_numpy(dtype=object) for n in part.columns}, np.zeros(50))
    monitor._executor.shutdown(wait=True)
    assert metrics.drift_windows._value.get() == 1  # five windows were due, one ran
    monitor.close()


def test_alarm_gauges_are_the_report_s_flags_and_flagged_features_are_exported_first(fitted):
    """Each exported feature's alarms are the library's calibrated flags (its distribution and its missing
    rate apart); with the cap, flagged features take the series before unflagged ones with a higher PSI;
    a new model clears the alarms and the old model's feature series."""
    metrics = Metrics()
    monitor = DriftMonitor(metrics, window=300, step=300, max_features=2)
    model = LoadedModel(fitted, "m", "1")
    frame = mixed_frame(300, seed=25)[0]
    frame.loc[:59, "channel"] = None  # 5% missing in training, now a quarter: the missing-rate test fires
    frame["count"] += 2  # the count's distribution moves
    monitor.observe(model, {n: frame[n].to_numpy(dtype=object) for n in frame.columns}, fitted.decision_function(frame))
    monitor._executor.shutdown(wait=True)
    report = fitted.drift(frame)
    flags = {f.name: (f.distribution_drifted, f.missing_drifted) for f in report.features}
    assert flags["channel"] == (False, True) and flags["count"] == (True, False), flags
    psi = {f.name: f.psi for f in report.features}
    assert psi["amount"] > psi["channel"]  # by PSI alone, amount would take channel's series
    features = sorted(alarm for alarm in report.alarms if alarm.startswith("feature:"))
    assert features == sorted(f"feature:{name}" for name, flag in flags.items() if any(flag))
    assert {"score", "latent", "outlier_rate"} & set(report.alarms)  # so that a 1 is published below too

    def sample(name: str, feature: str | None = None) -> float | None:
        return metrics.registry.get_sample_value(name, {"feature": feature} if feature else {})

    exported = {f.name for f in report.features if sample("anomaly_vae_drift_feature_alarm", f.name) is not None}
    assert exported == {"channel", "count"}  # both flagged, over an unflagged feature of higher PSI
    for name in exported:
        distribution, missing = flags[name]
        assert sample("anomaly_vae_drift_feature_alarm", name) == int(distribution)
        assert sample("anomaly_vae_drift_feature_missing_alarm", name) == int(missing)
    assert sample("anomaly_vae_drift_alarm") == 1
    assert sample("anomaly_vae_drift_features_drifted") == len(report.drifted_features)
    for name, alarm in (("score", "score"), ("latent", "latent"), ("outlier", "outlier_rate")):
        assert sample(f"anomaly_vae_drift_{name}_alarm") == int(alarm in report.alarms)

    # a new model: its first request starts a new window; the old alarms are not the new model's
    part = frame.head(10)
    monitor.observe(LoadedModel(fitted, "m", "2"), {n: part[n].to_numpy(dtype=object) for n in part}, np.zeros(10))
    assert sample("anomaly_vae_drift_feature_alarm", "channel") is None
    alarms = ("score_alarm", "latent_alarm", "outlier_alarm", "alarm")
    assert [sample(f"anomaly_vae_drift_{name}") for name in alarms] == [0] * 4
    monitor.close()
