"""deploy/promote.py (the promote Job's and compose's `promote`): it moves @champion to the challenger's
version and keeps the old one as @previous, against a real MLflow registry in a temporary SQLite file."""

from __future__ import annotations

import importlib.util
import logging
from types import ModuleType

import pytest
from mlflow import MlflowClient

from tests.deploy.conftest import DEPLOY

NAME = "payments"


def promote_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("promote", DEPLOY / "promote.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> MlflowClient:
    folder = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(NAME)
    return client


def new_version(client: MlflowClient, alias: str, auroc: float) -> str:
    experiment = client.get_experiment_by_name("Default") or client.get_experiment("0")
    run = client.create_run(experiment.experiment_id)
    client.log_metric(run.info.run_id, "test_auroc", auroc)
    version = client.create_model_version(NAME, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id).version
    client.set_registered_model_alias(NAME, alias, version)
    return str(version)


def aliases(client: MlflowClient) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(NAME).aliases.items()}


def test_promotion_moves_champion_keeps_previous_and_rolls_back(client, caplog):
    promote = promote_module().promote
    caplog.set_level(logging.INFO, logger="promote")
    first = new_version(client, "challenger", 0.91)
    assert promote(client, NAME, "challenger", "champion") == first  # the first promotion: no champion yet
    assert aliases(client) == {"challenger": first, "champion": first}
    second = new_version(client, "challenger", 0.94)
    promote(client, NAME, "challenger", "champion")
    assert aliases(client) == {"challenger": second, "champion": second, "previous": first}
    assert f"{NAME}@challenger = version {second}: test_auroc=0.94" in caplog.text  # both shown before the move
    assert f"{NAME}@champion = version {first}: test_auroc=0.91" in caplog.text
    promote(client, NAME, "challenger", "champion")  # again: nothing moves
    assert aliases(client) == {"challenger": second, "champion": second, "previous": first}
    assert "already" in caplog.text
    promote(client, NAME, "previous", "champion")  # roll back: champion and previous swap
    assert aliases(client) == {"challenger": second, "champion": first, "previous": second}


def test_a_missing_alias_is_one_line_naming_it(client):
    with pytest.raises(ValueError, match=f"nothing to promote: {NAME}@canary"):
        promote_module().promote(client, NAME, "canary", "champion")
