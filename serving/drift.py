"""Live drift: a sliding window of scored records, compared with the model's reference profile.

The request path only appends references to the request's column arrays and scores (no copy, no
statistics). Every ``drift_step`` records, once ``drift_window`` records are buffered and at least
``drift_min_interval_seconds`` after the last window started, the last ``drift_window`` records are
handed to one background thread, which computes the statistics of :meth:`VAEDetector.drift` and sets
the gauges. The interval bounds the share of time the statistics compete with requests for the GIL
(measured: evaluating windows back to back multiplied the p99 latency). A window that completes while
the previous one is still being computed is skipped and counted.

Alarms: besides the statistics, each window publishes the report's calibrated flags
(``DriftReport.alarms``: a test rejecting at the report's Bonferroni level AND an effect floor, see
``DriftThresholds``) as 0/1 gauges: per feature its distribution and its missing rate, and the score, the
latent codes, the outlier count, and any of them. The alert rules use these, not the raw statistics, so
their false-alarm rate is the measured one of docs/drift.md. The first records a new model scores
clear the alarms until its first window.

Cardinality: per-feature series exist for at most ``drift_max_features`` features. With more features
than that, each window exports the flagged features first, then those with the highest PSI in that
window (series of features that drop out are removed), so the worst features are always visible;
``anomaly_vae_drift_feature_psi_max`` and ``anomaly_vae_drift_features_drifted`` summarise every
feature, exported or not.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from prometheus_client import Gauge

from anomaly_vae.profile import DriftReport
from serving.metrics import Metrics, retire
from serving.model_store import LoadedModel

logger = logging.getLogger(__name__)


class DriftMonitor:
    def __init__(
        self, metrics: Metrics, window: int, step: int, max_features: int, min_interval_seconds: float = 0.0
    ) -> None:
        self.metrics, self.window, self.step, self.max_features = metrics, window, step, max_features
        self.min_interval_seconds = min_interval_seconds
        self._last_start = -math.inf
        self._chunks: deque[tuple[dict[str, np.ndarray], np.ndarray]] = deque()
        self._buffered = self._since_last = 0
        self._model: LoadedModel | None = None
        self._exported: dict[str, list[Gauge]] = {}  # feature -> its series
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drift")
        self._running: Future[None] | None = None

    def observe(self, model: LoadedModel, columns: dict[str, np.ndarray], scores: np.ndarray) -> None:
        """Add a request's records (its column arrays and default scores); cheap, on the request path."""
        if self.window == 0:
            return
        if model is not self._model:
            self._start(model)
        if model.detector.profile_ is None:
            return
        self._chunks.append((columns, scores))
        self._buffered += len(scores)
        self._since_last += len(scores)
        while self._buffered - len(self._chunks[0][1]) >= self.window:
            self._buffered -= len(self._chunks.popleft()[1])
        now = time.monotonic()
        too_soon = now - self._last_start < self.min_interval_seconds
        if self._buffered < self.window or self._since_last < self.step or too_soon:
            return
        self._since_last, self._last_start = 0, now
        if self._running is not None and not self._running.done():
            self.metrics.drift_windows_skipped.inc()
            return
        self._running = self._executor.submit(self._evaluate, model, list(self._chunks))

    def model_loaded(self, model: LoadedModel) -> None:
        """Called by the model store for each model it swaps in (from its loading thread)."""
        self.metrics.drift_available.set(int(self.window > 0 and model.detector.profile_ is not None))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _start(self, model: LoadedModel) -> None:
        """A new model: drop the old window and series, say whether drift can be computed."""
        self._chunks.clear()
        self._buffered = self._since_last = 0
        previous, self._model = self._model, model
        self._publish_features(None)
        # the old model's alarms are not this one's; at start-up there are none, and setting 0 would hide
        # another worker's more recent window (the gauges' multiprocess mode keeps the most recent value)
        if previous is not None:
            for gauge in self._alarm_gauges():
                gauge.set(0)
        if model.detector.profile_ is None:
            logger.warning("model %s version %s has no reference profile: no drift", model.name, model.version)

    def _evaluate(self, model: LoadedModel, chunks: list[tuple[dict[str, np.ndarray], np.ndarray]]) -> None:
        try:
            names = list(chunks[0][0])
            columns = {name: np.concatenate([c[name] for c, _ in chunks])[-self.window :] for name in names}
            scores = np.concatenate([s for _, s in chunks])[-self.window :]
            # an image model's window is one column of images (serving/images.py), scored as a list
            inputs = list(columns["image"]) if model.detector.kind == "image" else columns
            report = model.detector.drift(inputs, scores=scores)
        except Exception:
            logger.exception("drift window failed")
            return
        if model is self._model:  # the model may have been swapped while this window was computed
            self._publish(report)

    def _publish(self, report: DriftReport) -> None:
        m = self.metrics
        m.drift_score_psi.set(report.score_psi)
        m.drift_score_ks.set(report.score_ks)
        m.drift_outlier_rate.set(report.outlier_rate)
        m.drift_expected_outlier_rate.set(report.expected_outlier_rate)
        m.drift_outlier_p_value.set(report.outlier_p_value)
        m.drift_latent.set(report.latent_kl)
        m.drift_feature_psi_max.set(max(f.psi for f in report.features))
        m.drift_features_drifted.set(len(report.drifted_features))
        alarms = set(report.alarms)
        m.drift_score_alarm.set(int("score" in alarms))
        m.drift_latent_alarm.set(int("latent" in alarms))
        m.drift_outlier_alarm.set(int("outlier_rate" in alarms))
        m.drift_alarm.set(int(report.drifted))
        self._publish_features(report)
        m.drift_windows.inc()

    def _alarm_gauges(self) -> list[Gauge]:
        m = self.metrics
        return [m.drift_score_alarm, m.drift_latent_alarm, m.drift_outlier_alarm, m.drift_alarm]

    def _publish_features(self, report: DriftReport | None) -> None:
        """Per-feature series for at most ``max_features`` features: the flagged ones, then those with the
        highest PSI (so that an alarm is exported whenever the cap leaves room for it)."""
        m = self.metrics
        features = [] if report is None else report.features
        chosen = sorted(features, key=lambda f: (not f.drifted, -f.psi))[: self.max_features]
        exported: dict[str, list[Gauge]] = {}
        for feature in chosen:
            values = {
                m.drift_feature_psi: feature.psi,
                m.drift_feature_missing_delta: feature.missing_delta,
                m.drift_feature_alarm: int(feature.distribution_drifted),
                m.drift_feature_missing_alarm: int(feature.missing_drifted),
            }
            if feature.ks is not None:  # numeric features
                values[m.drift_feature_ks] = feature.ks
            if feature.js is not None:  # categorical ones
                values[m.drift_feature_js] = feature.js
            for family, value in values.items():
                family.labels(feature.name).set(value)
            exported[feature.name] = list(values)
        for name in self._exported.keys() - exported.keys():
            for family in self._exported[name]:
                retire(family, (name,), math.nan)
        self._exported = exported
