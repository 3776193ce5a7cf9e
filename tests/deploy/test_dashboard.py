"""The Grafana dashboard and its provisioning: every panel queries metrics the live service exports."""

from __future__ import annotations

import json
import re

import yaml

from tests.deploy.conftest import DEPLOY, Traffic, exported

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "anomaly-vae.json"
METRIC = re.compile(r"\b(anomaly_vae_[a-z0-9_]+)(\{[^}]*\})?")
TARGET_LABELS = {"job", "instance"}  # added by Prometheus when it scrapes


def queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_dashboard_loads_and_uses_the_provisioned_data_source():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "anomaly-vae"
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasources["datasources"][0]["uid"]
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
    titles = {panel["title"] for panel in panels}
    assert {"Scoring latency", "Throughput", "Outlier rate", "Score distribution", "Feature drift (PSI)"} <= titles
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/anomaly-vae.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_every_panel_query_names_metrics_and_labels_the_service_exports(traffic: Traffic):
    names = exported(traffic.client)
    for title, expr in queries():
        found = METRIC.findall(expr)
        assert found or "up{" in expr, f"{title}: no anomaly-vae metric in {expr}"
        for name, selector in found:
            assert name in names, f"{title}: {name} is not on /metrics"
            labels = {key for labels in names[name] for key in labels}
            used = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector)) - TARGET_LABELS
            assert used <= labels, f"{title}: {name} has no label(s) {sorted(used - labels)}"
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            by = {label.strip() for label in group.split(",")} - TARGET_LABELS
            assert any(by <= {key for labels in names[n] for key in labels} for n, _ in found), (title, by)
