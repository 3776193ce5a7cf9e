"""prometheus-client's multiprocess mode (several workers) cannot remove a series: a model reload and the
drift series it retires must not call ``remove`` there (which only warns on every reload)."""

from __future__ import annotations

import json
import time
import warnings

from serving.settings import Settings
from tests.serving.conftest import running


def test_a_reload_in_multiprocess_mode_retires_series_without_a_warning(
    model_folder, train_frame, tmp_path, monkeypatch
):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # what serving/workers.py sets for workers
    settings = Settings(
        model_uri=str(model_folder), drift_window=100, drift_step=50, drift_min_interval_seconds=0, drift_max_features=2
    )
    body = {"records": json.loads(train_frame.head(60).to_json(orient="records"))}
    with running(settings) as (client, app):
        metrics, store = app.state.metrics, app.state.store
        for _ in range(2):  # a full window: per-feature drift series exist
            assert client.post("/v1/score", json=body).status_code == 200
        deadline = time.monotonic() + 60
        while metrics.drift_windows._value.get() < 1:
            assert time.monotonic() < deadline, "no drift window"
            time.sleep(0.05)
        old = store.current
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            store.load_initial()  # a new model swapped in: the old one's info series is retired
            assert store.current is not old
            assert client.post("/v1/score", json=body).status_code == 200  # drift sees the new model: series retired
        assert not [w for w in caught if "multi-process mode" in str(w.message)], [str(w.message) for w in caught]
        info = {tuple(s.labels.values()): s.value for s in metrics.model_info.collect()[0].samples}
        assert info == {("model", "local"): 1.0}
        psi = [s.value for s in metrics.drift_feature_psi.collect()[0].samples]
        assert psi and all(value != value for value in psi)  # NaN: no longer a current value
