"""Every Prometheus metric the service exports. Base units, ``_total`` counters, bounded labels.

The service runs one uvicorn worker per process (scale out with replicas): the model lives in the
process, so several workers would each hold a copy, and per-process counters would need
prometheus-client's multiprocess mode to add up.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
SCORE_BUCKETS = (0, 5, 10, 20, 30, 50, 75, 100, 150, 250, 500, 1000)
P_VALUE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)


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
        self.records = Counter("anomaly_vae_records_scored_total", "Records scored.", registry=r)
        self.outliers = Counter("anomaly_vae_outliers_total", "Records flagged as outliers.", registry=r)
        self.score = Histogram(
            "anomaly_vae_score_nats",
            "Default score (-log p(x) estimate) of scored records.",
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.p_value = Histogram(
            "anomaly_vae_p_value", "Conformal p-value of scored records.", buckets=P_VALUE_BUCKETS, registry=r
        )
        self.model_info = Gauge(
            "anomaly_vae_model_info", "The model being served (value 1).", ["name", "version"], registry=r
        )
        self.reloads = Counter("anomaly_vae_reload_attempts_total", "Attempts to load a new model version.", registry=r)
        self.reload_failures = Counter(
            "anomaly_vae_reload_failures_total", "New model versions that failed to load or validate.", registry=r
        )
        self.registry_errors = Counter(
            "anomaly_vae_registry_errors_total", "Registry alias checks that failed (registry unreachable).", registry=r
        )
        self.in_flight = Gauge("anomaly_vae_requests_in_flight", "Scoring requests being served now.", registry=r)
        self.shed = Counter(
            "anomaly_vae_requests_shed_total",
            "Scoring requests refused with 503 because ANOMALY_VAE_MAX_IN_FLIGHT were in flight.",
            ["endpoint"],
            registry=r,
        )
        self._drift_metrics(r)

    def _drift_metrics(self, r: CollectorRegistry) -> None:
        """Drift over the last window of scored records (serving/drift.py); feature series are capped."""
        feature = ["feature"]
        self.drift_feature_psi = Gauge(
            "anomaly_vae_drift_feature_psi", "Population stability index of a feature.", feature, registry=r
        )
        self.drift_feature_ks = Gauge(
            "anomaly_vae_drift_feature_ks", "Kolmogorov-Smirnov distance of a numeric feature.", feature, registry=r
        )
        self.drift_feature_js = Gauge(
            "anomaly_vae_drift_feature_js", "Jensen-Shannon distance of a categorical feature.", feature, registry=r
        )
        self.drift_feature_missing_delta = Gauge(
            "anomaly_vae_drift_feature_missing_delta",
            "Missing rate of a feature minus its training missing rate.",
            feature,
            registry=r,
        )
        self.drift_feature_psi_max = Gauge(
            "anomaly_vae_drift_feature_psi_max", "Highest feature PSI, over all features.", registry=r
        )
        self.drift_features_drifted = Gauge(
            "anomaly_vae_drift_features_drifted", "Features over the PSI or missing-rate threshold.", registry=r
        )
        self.drift_score_psi = Gauge(
            "anomaly_vae_drift_score_psi", "PSI of the default score against calibration.", registry=r
        )
        self.drift_score_ks = Gauge(
            "anomaly_vae_drift_score_ks", "KS distance of the default score against calibration.", registry=r
        )
        self.drift_outlier_rate = Gauge(
            "anomaly_vae_drift_outlier_rate", "Share of the window flagged at the model's fpr.", registry=r
        )
        self.drift_expected_outlier_rate = Gauge(
            "anomaly_vae_drift_expected_outlier_rate", "Calibrated outlier rate at the model's fpr.", registry=r
        )
        self.drift_outlier_p_value = Gauge(
            "anomaly_vae_drift_outlier_p_value",
            "Chance of at least the window's outlier count if nothing changed.",
            registry=r,
        )
        self.drift_latent = Gauge(
            "anomaly_vae_drift_latent", "KL (nats) of the window's latent codes from the training codes.", registry=r
        )
        self.drift_alarm = Gauge(
            "anomaly_vae_drift_alarm", "1 when a statistic of the last window crossed its threshold.", registry=r
        )
        self.drift_available = Gauge(
            "anomaly_vae_drift_available", "1 when the served model has a reference profile.", registry=r
        )
        self.drift_windows = Counter("anomaly_vae_drift_windows_total", "Drift windows computed.", registry=r)
        self.drift_windows_skipped = Counter(
            "anomaly_vae_drift_windows_skipped_total", "Windows skipped while the last one still ran.", registry=r
        )
