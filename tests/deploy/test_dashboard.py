"""The Grafana dashboard and its provisioning: every panel queries metrics the live service exports."""

from __future__ import annotations

import json
import re

import yaml

from tests.deploy.conftest import DEPLOY, Traffic, declared, exported

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "anomaly-vae.json"
METRIC = re.compile(r"\b(anomaly_vae_[a-z0-9_]+)(\{[^}]*\})?")
TARGET_LABELS = {"job", "instance"}  # added by Prometheus when it scrapes


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def queries() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def variables() -> dict[str, dict]:
    return {variable["name"]: variable for variable in dashboard()["templating"]["list"]}


def test_dashboard_loads_and_uses_the_provisioned_data_source():
    board = dashboard()
    assert board["uid"] == "anomaly-vae"
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasources["datasources"][0]["uid"]
    panels = [panel for panel in board["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])
    for panel in panels:
        assert panel["targets"], panel["title"]
        for source in (panel["datasource"], *(target["datasource"] for target in panel["targets"])):
            assert source == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    titles = {panel["title"] for panel in panels}
    assert {"Scoring latency", "Throughput", "Outlier rate", "Score distribution", "Feature drift (PSI)"} <= titles
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/anomaly-vae.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    # the data source is a variable whose default is the provisioned one, so the dashboard imports elsewhere
    source = variables()["datasource"]
    assert source["type"] == "datasource" and source["query"] == "prometheus"
    assert source["current"]["value"] == uid


def test_the_job_is_a_variable_and_defaults_to_the_scrape_job():
    job = variables()["job"]
    assert job["type"] == "query" and job["datasource"]["uid"] == "${datasource}"
    assert job["current"]["value"] == "anomaly-vae"
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert "anomaly-vae" in {scrape["job_name"] for scrape in prometheus["scrape_configs"]}
    for title, expr in queries():
        assert "anomaly-vae" not in expr, f"{title}: hard-codes the job: {expr}"
        for name, selector in METRIC.findall(expr):
            assert 'job="$job"' in selector, f'{title}: {name} without job="$job"'


def test_load_shedding_in_flight_requests_and_registry_errors_have_panels():
    used = {name for _, expr in queries() for name, _ in METRIC.findall(expr)}
    assert {
        "anomaly_vae_requests_shed_total",
        "anomaly_vae_requests_in_flight",
        "anomaly_vae_registry_errors_total",
    } <= used


def test_calibrated_drift_flags_and_unseen_input_values_have_panels():
    """The drift alerts fire on the calibrated flags (issue #18), so the dashboard shows them; and no panel
    draws a fixed PSI line that would say "drift" where the report's test does not."""
    used = {name for _, expr in queries() for name, _ in METRIC.findall(expr)}
    assert {
        "anomaly_vae_drift_feature_alarm",
        "anomaly_vae_drift_feature_missing_alarm",
        "anomaly_vae_drift_score_alarm",
        "anomaly_vae_drift_latent_alarm",
        "anomaly_vae_drift_outlier_alarm",
        "anomaly_vae_missing_unseen_total",
        "anomaly_vae_unknown_categories_total",
    } <= used
    for panel in dashboard()["panels"]:
        if any("drift_feature_psi" in target["expr"] for target in panel.get("targets", [])):
            steps = panel["fieldConfig"]["defaults"].get("thresholds", {"steps": []})["steps"]
            assert [step["value"] for step in steps] in ([], [None]), panel["title"]


def test_every_panel_query_names_metrics_and_labels_the_service_exports(traffic: Traffic):
    names, known = exported(traffic.client), declared()
    for title, expr in queries():
        found = METRIC.findall(expr)
        assert found or "up{" in expr, f"{title}: no anomaly-vae metric in {expr}"
        for name, selector in found:
            assert name in names or name in known, f"{title}: {name} is not on /metrics"
            labels = {key for labels in names.get(name, []) for key in labels} | known.get(name, set())
            used = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector)) - TARGET_LABELS
            assert used <= labels, f"{title}: {name} has no label(s) {sorted(used - labels)}"
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            by = {label.strip() for label in group.split(",")} - TARGET_LABELS
            assert any(
                by <= {key for labels in names.get(n, []) for key in labels} | known.get(n, set()) for n, _ in found
            ), (title, by)
