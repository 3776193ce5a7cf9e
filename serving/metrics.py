"""Every Prometheus metric the service exports. Base units, ``_total`` counters, bounded labels.

With several worker processes (``serving/workers.py``) the metrics are prometheus-client's
multiprocess mode: each worker writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape,
whichever worker answers it, adds up counters and histograms of all of them. Each gauge says how its
workers' values combine (``multiprocess_mode``; the "live" modes forget a worker that ended). That mode
cannot remove a series (the files keep it, and prometheus-client only warns), so a series that goes
away is set to its neutral value and kept (0 for the model info, NaN for a drift statistic); with one
process it is removed (``retire``).
"""

from __future__ import annotations

import functools
import os

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
SCORE_BUCKETS = (0, 5, 10, 20, 30, 50, 75, 100, 150, 250, 500, 1000)
P_VALUE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)


def multiprocess_mode() -> bool:
    """Whether the metrics are prometheus-client's multiprocess mode (set up by ``serving/workers.py``)."""
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ


def retire(gauge: Gauge, labels: tuple[str, ...], neutral: float) -> None:
    """Take one labelled series out of the exposition: removed with one process; in multiprocess mode,
    where removal is not possible, set to ``neutral`` (a value that means "not this one any more")."""
    if multiprocess_mode():
        gauge.labels(*labels).set(neutral)
    else:
        gauge.remove(*labels)


class Metrics:
    """One set of metrics on its own registry, so that apps (and tests) do not share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.request_seconds = Histogram(
            "anomaly_vae_request_duration_seconds",
            "Request latency.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "anomaly_vae_requests_total", "Requests by endpoint and status code.", ["endpoint", "status"], registry=r
        )
        self._scoring_metrics(r)
        self.model_info = Gauge(
            "anomaly_vae_model_info",
            "The model being served (value 1).",
            ["name", "version"],
            registry=r,
            multiprocess_mode="livemax",  # 1 while any worker serves that version
        )
        self.reloads = Counter("anomaly_vae_reload_attempts_total", "Attempts to load a new model version.", registry=r)
        self.reload_failures = Counter(
            "anomaly_vae_reload_failures_total", "New model versions that failed to load or validate.", registry=r
        )
        self.registry_errors = Counter(
            "anomaly_vae_registry_errors_total",
            "Registry alias checks and model downloads that failed (registry or artifact store unreachable).",
            registry=r,
        )
        self.in_flight = Gauge(
            "anomaly_vae_requests_in_flight",
            "Scoring requests being served now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.shed = Counter(
            "anomaly_vae_requests_shed_total",
            "Scoring requests refused with 503 because ANOMALY_VAE_MAX_IN_FLIGHT were in flight.",
            ["endpoint"],
            registry=r,
        )
        self._drift_metrics(r)

    def observe_scores(self, scores: dict[str, np.ndarray], default_score: str) -> None:
        """Count one scored batch: records, outliers, unseen input values (tabular), score histograms."""
        self.records.inc(len(scores["p_value"]))
        self.outliers.inc(int(scores["is_outlier"].sum()))
        if "missing_unseen" in scores:  # tabular models
            self.missing_unseen.inc(int(scores["missing_unseen"].sum()))
            self.unknown_categories.inc(int(scores["unknown_categories"].sum()))
        for value, p_value in zip(scores[default_score], scores["p_value"], strict=True):
            self.score.observe(value)
            self.p_value.observe(p_value)

    def render(self) -> bytes:
        """The exposition text: this process's registry, or every worker's files in multiprocess mode."""
        if not multiprocess_mode():
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def _scoring_metrics(self, r: CollectorRegistry) -> None:
        """What the scored records were: counts, outliers, values the model never saw, score histograms."""
        self.records = Counter("anomaly_vae_records_scored_total", "Records scored.", registry=r)
        self.outliers = Counter("anomaly_vae_outliers_total", "Records flagged as outliers.", registry=r)
        self.missing_unseen = Counter(
            "anomaly_vae_missing_unseen_total",
            "Missing values in scored records' columns that had no missing value in training.",
            registry=r,
        )
        self.unknown_categories = Counter(
            "anomaly_vae_unknown_categories_total",
            "Categorical values of scored records outside the model's vocabulary (scored as unknown).",
            registry=r,
        )
        self.score = Histogram(
            "anomaly_vae_score_nats",
            "Default score (-log p(x) estimate) of scored records.",
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.p_value = Histogram(
            "anomaly_vae_p_value", "Conformal p-value of scored records.", buckets=P_VALUE_BUCKETS, registry=r
        )

    def _drift_metrics(self, r: CollectorRegistry) -> None:
        """Drift over the last window of scored records (serving/drift.py); feature series are capped. With
        several workers, each computes windows of the records it scored; the last window computed wins."""
        feature = ["feature"]
        gauge = functools.partial(Gauge, registry=r, multiprocess_mode="livemostrecent")
        self.drift_feature_psi = gauge(
            "anomaly_vae_drift_feature_psi", "Population stability index of a feature.", feature
        )
        self.drift_feature_ks = gauge(
            "anomaly_vae_drift_feature_ks", "Kolmogorov-Smirnov distance of a numeric feature.", feature
        )
        self.drift_feature_js = gauge(
            "anomaly_vae_drift_feature_js", "Jensen-Shannon distance of a categorical feature.", feature
        )
        self.drift_feature_missing_delta = gauge(
            "anomaly_vae_drift_feature_missing_delta",
            "Missing rate of a feature minus its training missing rate.",
            feature,
        )
        self.drift_feature_psi_max = gauge(
            "anomaly_vae_drift_feature_psi_max", "Highest feature PSI, over all features."
        )
        self.drift_features_drifted = gauge(
            "anomaly_vae_drift_features_drifted", "Features flagged (distribution or missing rate), of all features."
        )
        self.drift_score_psi = gauge("anomaly_vae_drift_score_psi", "PSI of the default score against calibration.")
        self.drift_score_ks = gauge(
            "anomaly_vae_drift_score_ks", "KS distance of the default score against calibration."
        )
        self.drift_outlier_rate = gauge(
            "anomaly_vae_drift_outlier_rate", "Share of the window flagged at the model's fpr."
        )
        self.drift_expected_outlier_rate = gauge(
            "anomaly_vae_drift_expected_outlier_rate", "Calibrated outlier rate at the model's fpr."
        )
        self.drift_outlier_p_value = gauge(
            "anomaly_vae_drift_outlier_p_value",
            "Chance of at least the window's outlier count if nothing changed.",
        )
        self.drift_latent = gauge(
            "anomaly_vae_drift_latent", "KL (nats) of the window's latent codes from the training codes."
        )
        self.drift_available = gauge("anomaly_vae_drift_available", "1 when the served model has a reference profile.")
        self.drift_windows = Counter("anomaly_vae_drift_windows_total", "Drift windows computed.", registry=r)
        self.drift_windows_skipped = Counter(
            "anomaly_vae_drift_windows_skipped_total", "Windows skipped while the last one still ran.", registry=r
        )
        self._drift_alarms(gauge)

    def _drift_alarms(self, gauge: functools.partial[Gauge]) -> None:
        """The calibrated flags of the last window's report (DriftReport.alarms: a test below the report's
        Bonferroni level and an effect floor, anomaly_vae/tabular/profile.py), 0 or 1; what alerts use."""
        feature = ["feature"]
        self.drift_feature_alarm = gauge(
            "anomaly_vae_drift_feature_alarm", "1 when a feature's distribution (PSI bins) is flagged.", feature
        )
        self.drift_feature_missing_alarm = gauge(
            "anomaly_vae_drift_feature_missing_alarm", "1 when a feature's missing rate is flagged.", feature
        )
        self.drift_score_alarm = gauge("anomaly_vae_drift_score_alarm", "1 when the default score's shift is flagged.")
        self.drift_latent_alarm = gauge("anomaly_vae_drift_latent_alarm", "1 when the latent codes' shift is flagged.")
        self.drift_outlier_alarm = gauge(
            "anomaly_vae_drift_outlier_alarm", "1 when the window's outlier count is flagged."
        )
        self.drift_alarm = gauge(
            "anomaly_vae_drift_alarm", "1 when any statistic of the last window is flagged (any of the above)."
        )
