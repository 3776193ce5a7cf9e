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
