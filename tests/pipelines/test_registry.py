"""Model resolution against a real MLflow store: the version reported is the one loaded, and a model the
registry lacks is one line naming the registry and what it holds, with nothing created."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import pandas as pd
import pytest

from anomaly_vae import VAEDetector
from anomaly_vae.registry import DETECTOR_ARTIFACT
from pipelines.cli import main as cli
from pipelines.registry import configure_tracking, ensure_experiment, load_detector
from pipelines.train import PYFUNC_CODE
from tests.conftest import TINY, mixed_frame


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An embedded store in its own folder (the working directory of this module's tests) holding the
    model "payments": versions 1 and 2 (different weights), alias champion -> 1."""
    root = tmp_path_factory.mktemp("store")
    frame, _ = mixed_frame(400, seed=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        configure_tracking()
        with mlflow.start_run(experiment_id=ensure_experiment()):
            for seed in (1, 2):
                folder = root / f"v{seed}" / DETECTOR_ARTIFACT
                VAEDetector(**TINY, random_state=seed).fit(frame).save(folder)
                mlflow.pyfunc.log_model(
                    name=f"model{seed}",
                    python_model=str(PYFUNC_CODE),
                    artifacts={DETECTOR_ARTIFACT: str(folder)},
                    registered_model_name="payments",
                    pip_requirements=[],
                )
        mlflow.MlflowClient().set_registered_model_alias("payments", "champion", "1")
        yield root


def test_the_version_reported_is_the_version_loaded_when_the_alias_moves(store, monkeypatch):
    monkeypatch.chdir(store)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    download = mlflow.artifacts.download_artifacts

    def download_then_move_the_alias(uri, **kwargs):
        folder = download(uri, **kwargs)
        mlflow.MlflowClient().set_registered_model_alias("payments", "champion", "2")  # a training job promotes v2
        return folder

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", download_then_move_the_alias)
    try:
        detector, identity = load_detector("models:/payments@champion")
    finally:
        mlflow.MlflowClient().set_registered_model_alias("payments", "champion", "1")
    assert identity == {"name": "payments", "version": "1"}
    rows = mixed_frame(20, seed=3)[0]
    version_1 = VAEDetector.load(store / "v1" / DETECTOR_ARTIFACT)
    pd.testing.assert_frame_equal(detector.score_frame(rows), version_1.score_frame(rows))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("models:/nope@champion", "no model named 'nope' in the registry at sqlite:///{db}; its models: payments"),
        (
            "models:/payments@gold",
            "model 'payments' in the registry at sqlite:///{db} has no alias 'gold'; its versions: [1, 2], "
            "aliases: @champion = 1",
        ),
        ("models:/payments/7", "model 'payments' in the registry at sqlite:///{db} has no version 7;"),
    ],
)
def test_a_model_the_registry_lacks_is_one_line_saying_what_it_has(store, monkeypatch, caplog, model, message):
    monkeypatch.chdir(store)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = ["score", "--model", model, "--input", "in.csv", "--output", "out.csv"]
    assert cli(args) == 2
    assert len(caplog.messages) == 1
    assert message.format(db=store / "mlflow.db") in caplog.messages[0]


def test_no_store_is_one_line_and_creates_nothing(tmp_path):
    """The real command in an empty folder: it neither builds an empty MLflow database nor prints a traceback."""
    (tmp_path / "in.csv").write_text("amount\n1.0\n")
    command = [sys.executable, "-m", "pipelines.cli", "score", "--model", "models:/payments@champion"]
    command += ["--input", "in.csv", "--output", "out.csv"]
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no MLFLOW_TRACKING_URI
    done = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: no model models:/payments@champion: the MLflow store sqlite:///{tmp_path / 'mlflow.db'} does not "
        "exist (set MLFLOW_TRACKING_URI, or run where `anomaly-vae train` created mlflow.db)"
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.csv"]
