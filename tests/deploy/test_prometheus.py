"""deploy/prometheus: promtool's checks, the alert rules' unit tests, and a real Prometheus on 127.0.0.1
that scrapes the real service with deploy/'s configuration and alert rules."""

from __future__ import annotations

import math
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import system_tool
from tests.deploy.conftest import DEPLOY, Traffic, declared
from tests.deploy.test_dashboard import queries, variables
from tests.serving.conftest import free_port

PROMETHEUS = DEPLOY / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [system_tool("promtool", "prometheus"), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )


def test_promtool_accepts_the_config_and_every_rule_file():
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    rule_files = sorted(str(path.relative_to(PROMETHEUS)) for path in (PROMETHEUS / "alerts").glob("*.yml"))
    assert "alerts/service.yml" in rule_files
    rules = promtool("check", "rules", *rule_files)
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_alert_rules_fire_on_what_they_are_for_and_not_on_near_misses():
    tests = sorted(str(path.relative_to(PROMETHEUS)) for path in (PROMETHEUS / "tests").glob("*.yml"))
    result = promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def service_alerts() -> set[str]:
    groups = yaml.safe_load((PROMETHEUS / "alerts" / "service.yml").read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_the_issue_s_alerts_exist():
    alerts = service_alerts()
    assert {"AnomalyVAEServiceDown", "AnomalyVAEHighErrorRate", "AnomalyVAELatencySLOBreach"} <= alerts
    assert "AnomalyVAEOutlierRateSpike" in alerts
    # admission control, the registry and requests in flight
    assert {"AnomalyVAERequestsShed", "AnomalyVAERegistryUnreachable", "AnomalyVAERequestsStuck"} <= alerts
    assert "AnomalyVAEVersionSkew" in alerts  # replicas serving different versions
    rules = (PROMETHEUS / "alerts" / "service.yml").read_text()
    for metric in (
        "anomaly_vae_requests_shed_total",
        "anomaly_vae_registry_errors_total",
        "anomaly_vae_requests_in_flight",
    ):
        assert metric in rules


def drift_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts" / "drift.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_drift_alerts_count_pods_instead_of_paging_per_pod():
    """Windows are per pod: each drift alert fires once for the fleet (per feature), on a quorum of the
    pods that computed a window; the promtool tests (tests/drift_test.yml) hold the behaviour."""
    rules = drift_rules()
    assert len(rules) == 5
    for rule in rules:
        expr = " ".join(rule["expr"].split())
        assert "instance" not in expr, rule["alert"]
        assert ">= 0.5 * scalar(count(anomaly_vae_drift_windows_total" in expr, rule["alert"]


def test_drift_alerts_use_the_calibrated_flags_not_fixed_thresholds_on_statistics():
    """Issue #18: a fixed PSI or KL threshold cries wolf on small windows; each drift alert counts pods
    whose window's report flagged the statistic (an ``anomaly_vae_drift_*_alarm`` gauge, set from
    ``DriftReport.alarms``), so the false-alarm rate is the one docs/drift.md measures."""
    flags = {
        "AnomalyVAEFeatureDrift": "anomaly_vae_drift_feature_alarm",
        "AnomalyVAEMissingRateChange": "anomaly_vae_drift_feature_missing_alarm",
        "AnomalyVAEScoreDrift": "anomaly_vae_drift_score_alarm",
        "AnomalyVAELatentDrift": "anomaly_vae_drift_latent_alarm",
        "AnomalyVAEWindowOutlierSpike": "anomaly_vae_drift_outlier_alarm",
    }
    rules = {rule["alert"]: " ".join(rule["expr"].split()) for rule in drift_rules()}
    assert rules.keys() == flags.keys()
    for alert, expr in rules.items():
        metrics = set(re.findall(r"\b(anomaly_vae_[a-z0-9_]+)", expr))
        assert metrics == {flags[alert], "anomaly_vae_drift_windows_total"}, (alert, expr)
        assert f'{flags[alert]}{{job="anomaly-vae"}} == 1' in expr, (alert, expr)


@pytest.fixture(scope="module")
def prometheus(traffic: Traffic, tmp_path_factory) -> Iterator[httpx.Client]:
    """Prometheus with deploy/'s config, scraping the service every second: only the targets and the
    intervals differ; the rule files are deploy/'s own (the alerts/ folder is linked, not copied)."""
    binary = system_tool("prometheus", "prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    port = free_port()
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    jobs["anomaly-vae"]["static_configs"] = [{"targets": [f"127.0.0.1:{traffic.port}"]}]
    jobs["prometheus"]["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    (folder / "alerts").symlink_to(PROMETHEUS / "alerts", target_is_directory=True)
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        wait(lambda: client.get("/-/ready").status_code == 200, process, folder)
        wait(lambda: query(client, 'up{job="anomaly-vae"}')[0]["value"][1] == "1", process, folder)
        traffic.send()  # while Prometheus scrapes, so that rates and quantiles have something to show
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=30)
        log.close()


def wait(condition: Any, process: subprocess.Popen[bytes], folder: Path, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return
        except (httpx.TransportError, KeyError, IndexError):
            pass
        assert process.poll() is None, (folder / "prometheus.log").read_text()
        assert time.monotonic() < deadline, "Prometheus did not get there in time"
        time.sleep(0.25)


def query(client: httpx.Client, expr: str) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/query", params={"query": expr}).json()
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def value(client: httpx.Client, expr: str) -> float:
    result = query(client, expr)
    return float(result[0]["value"][1]) if result else math.nan


def eventually(check: Any, seconds: float = 20) -> None:
    """Retry ``check`` (which asserts) until it passes; scrapes and rule evaluations come every second."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.25)


def test_prometheus_scrapes_the_service_and_reads_back_outliers_and_latency(prometheus, traffic):
    def everything_scraped() -> None:
        assert value(prometheus, 'sum(anomaly_vae_records_scored_total{job="anomaly-vae"})') == traffic.scored

    eventually(everything_scraped)
    targets = prometheus.get("/api/v1/targets").json()["data"]["activeTargets"]
    assert [t["health"] for t in targets if t["labels"]["job"] == "anomaly-vae"] == ["up"]
    assert traffic.outliers > 0
    assert value(prometheus, 'sum(anomaly_vae_outliers_total{job="anomaly-vae"})') == traffic.outliers
    scored = 'sum(anomaly_vae_request_duration_seconds_count{job="anomaly-vae", endpoint="/v1/score"})'
    assert value(prometheus, scored) == traffic.score_requests
    p99 = value(
        prometheus,
        "histogram_quantile(0.99, sum by (le) (rate("
        'anomaly_vae_request_duration_seconds_bucket{job="anomaly-vae", endpoint="/v1/score"}[1m])))',
    )
    assert 0 < p99 <= 10, p99

    def outlier_ratio_recorded() -> None:  # the recording rule the outlier-spike alert builds on
        ratio = value(prometheus, "anomaly_vae:outlier_ratio:rate15m")
        assert ratio == pytest.approx(traffic.outliers / traffic.scored, rel=1e-6)

    eventually(outlier_ratio_recorded)


def test_every_rule_of_deploy_loads_and_evaluates_without_error(prometheus, traffic):
    def evaluated() -> None:
        groups = prometheus.get("/api/v1/rules").json()["data"]["groups"]
        rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
        assert service_alerts() <= rules.keys()
        for name, rule in rules.items():
            assert rule["health"] == "ok", (name, rule.get("lastError"))
        firing = {name for name, rule in rules.items() if rule.get("state") == "firing"}
        assert not firing & {"AnomalyVAEServiceDown", "AnomalyVAEInstanceDown", "AnomalyVAEHighErrorRate"}

    eventually(evaluated)


@pytest.mark.parametrize(("title", "expr"), queries())
def test_every_dashboard_query_returns_data_through_prometheus(prometheus, traffic, title, expr):
    promql = expr.replace("$__rate_interval", "1m").replace("$__range", "5m").replace("$job", "anomaly-vae")
    eventually(lambda: assert_data(prometheus, promql, title))


def assert_data(client: httpx.Client, promql: str, title: str) -> None:
    result = query(client, promql)
    assert result, f"{title}: no data for {promql}"
    assert all(math.isfinite(float(series["value"][1])) for series in result), (title, result)


def test_the_dashboard_s_job_variable_finds_the_scrape_job(prometheus, traffic):
    """The variable's query (label_values of a metric's job) lists the job its default names."""
    variable = variables()["job"]
    metric = re.fullmatch(r"label_values\((\w+), job\)", variable["query"]["query"])
    assert metric, variable["query"]
    jobs = {series["metric"]["job"] for series in query(prometheus, f"count by (job) ({metric[1]})")}
    assert variable["current"]["value"] in jobs


def test_every_metric_the_rules_name_is_one_the_service_declares():
    known = declared()
    for path in sorted((PROMETHEUS / "alerts").glob("*.yml")):
        for name in set(re.findall(r"\b(anomaly_vae_[a-z0-9_]+)", path.read_text())):
            assert name in known, f"{path.name}: {name} is not a metric of serving/metrics.py"
