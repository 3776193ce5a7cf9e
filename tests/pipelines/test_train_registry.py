"""Training pipeline against real MLflow stores: the embedded SQLite store and a real `mlflow server`."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from anomaly_vae.calibration import UnresolvableFprWarning
from pipelines.cli import main as cli
from pipelines.config import load_settings, validate
from pipelines.registry import load_detector
from pipelines.train import RegistrationRefused, train_and_register
from tests.conftest import mlflow_server_process
from tests.quality import QUALITY, isolation_forest_scores, mahalanobis_scores, manifold_frame

FAST = {"hidden": [16], "max_steps": 150, "eval_every": 50, "kl_warmup_steps": 20, "n_importance_samples": 8}


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    """An empty working directory with no tracking URI set: the embedded store lands here."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def labelled_csv(tmp_path_factory) -> Path:
    frame, labels = manifold_frame(2000, seed=5, n_anomalies=150)
    frame["label"] = labels
    path = tmp_path_factory.mktemp("data") / "train.csv"
    frame.to_csv(path, index=False)
    return path


def registered_versions(name: str) -> list[str]:
    return [v.version for v in mlflow.MlflowClient().search_model_versions(f"name='{name}'")]


@pytest.mark.usefixtures("one_torch_thread")
def test_train_registers_a_pyfunc_that_predicts_the_detector_scores(workdir, labelled_csv):
    settings = validate({"detector": QUALITY})
    result = train_and_register(
        labelled_csv, "manifold", settings, alias="champion", label_column="label", progress=False
    )
    assert (workdir / "mlflow.db").is_file() and (workdir / "mlartifacts").is_dir()
    assert result.version == "1"
    assert {"test_aupr", "test_precision", "test_recall", "threshold_neg_elbo"} <= set(result.metrics)
    data = pd.read_csv(labelled_csv)
    rest, test, rest_labels, labels = train_test_split(  # the pipeline's evaluation split
        data.drop(columns="label"), data["label"], test_size=0.2, stratify=data["label"], random_state=0
    )
    train = rest[rest_labels == 0]  # the model learned from the normal rows: so do the baselines
    baselines = [roc_auc_score(labels, score(train, test)) for score in (mahalanobis_scores, isolation_forest_scores)]
    # measured 0.889 against 0.825 (Mahalanobis) and 0.753; over data seeds 5-9 the margin over the better
    # baseline was 0.064 to 0.136
    assert result.metrics["test_auroc"] >= max(baselines) + 0.02, (result.metrics["test_auroc"], baselines)

    rows = pd.read_csv(labelled_csv).drop(columns="label").head(40)
    pyfunc = mlflow.pyfunc.load_model("models:/manifold@champion")
    predicted = pyfunc.predict(rows)
    detector, identity = load_detector("models:/manifold@champion")
    assert identity == {"name": "manifold", "version": "1"}
    pd.testing.assert_frame_equal(predicted, detector.score_frame(rows), check_exact=True)
    strict = pyfunc.predict(rows, params={"fpr": 0.001})
    assert strict["is_outlier"].sum() <= predicted["is_outlier"].sum()

    run = mlflow.get_run(result.run_id)
    assert "validation_loss" in run.data.metrics and run.data.params["detector.max_steps"] == "2000"
    history = mlflow.MlflowClient().get_metric_history(result.run_id, "validation_loss")
    assert len(history) == 2000 // 50  # one point per validation check (patience 40 checks: no early stop)
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "plots")}
    assert {"plots/loss_curves.png", "plots/score_distribution.png", "plots/contributions.csv"} <= logged


def test_evaluation_floor_refuses_registration(workdir, labelled_csv):
    settings = validate({"detector": FAST, "evaluation": {"min_auroc": 1.0}})  # unreachable
    with pytest.raises(RegistrationRefused, match="below min_auroc"):
        train_and_register(labelled_csv, "floored", settings, label_column="label", progress=False)
    assert registered_versions("floored") == []


def test_failed_calibration_refuses_registration_before_training(workdir, caplog):
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(300, 3)), columns=["a", "b", "c"]).assign(site="x")
    frame.to_csv(workdir / "small.csv", index=False)
    args = ["train", "--data", "small.csv", "--model-name", "tiny", "--set", "detector.fpr=0.001"]
    assert cli([*args, *[arg for k, v in FAST.items() for arg in ("--set", f"detector.{k}={v}")]]) == 2
    # each on one line: the library's warning about the constant column, then the refusal
    assert caplog.messages[-2] == (
        "warning: column 'site' is constant in the training data and carries no information; drop it before "
        "fitting (anomaly-vae train --drop-columns site)"
    )
    refusal = caplog.messages[-1]
    assert refusal.startswith("error: model not registered: calibration failed, before training: ")
    assert re.search(r": \d+ calibration scores cannot resolve fpr=0.001: the smallest rate they resolve is", refusal)
    assert registered_versions("tiny") == []
    (run,) = mlflow.search_runs(experiment_names=["anomaly-vae"], output_format="list")
    assert run.info.status == "FAILED" and run.data.tags["registration"].startswith("refused: calibration failed")
    assert "validation_loss" not in run.data.metrics  # refused before the first training step


def test_a_threshold_that_calibration_could_not_reach_refuses_registration(workdir, monkeypatch):
    """Checked after fitting too: here fit's warning before training is only a warning."""
    monkeypatch.setattr("pipelines.train._fit", lambda detector, rows: detector.fit(rows))
    pd.DataFrame(np.random.default_rng(0).normal(size=(300, 3))).to_csv(workdir / "small.csv", index=False)
    settings = validate({"detector": {**FAST, "fpr": 0.001}})
    with (
        pytest.warns(UnresolvableFprWarning),
        pytest.raises(RegistrationRefused, match=r"calibration failed: \d+ calibration rows cannot reach fpr=0.001"),
    ):
        train_and_register(workdir / "small.csv", "tiny", settings, progress=False)
    assert registered_versions("tiny") == []


@pytest.mark.parametrize(
    ("config", "overrides", "message"),
    [
        ("detector:\n  max_stepz: 3\n", [], r"unknown detector setting\(s\): \['max_stepz'\]"),
        ("detectr:\n  max_steps: 3\n", [], r"unknown config section\(s\): \['detectr'\]"),
        ("detector: [1, 2\n", [], "not valid YAML"),
        ("", ["detector.fpr=2"], r"fpr must be in \(0, 1\), got: 2"),
        ("", ["evaluation.test_fraction=1.5"], "evaluation.test_fraction must be in"),
        ("", ["max_steps=3"], "--set expects section.key=value"),
        ("data:\n  drop_columns: [id, 3]\n", [], r"data.drop_columns must be a list of column names .*, got: 3"),
        ("", ["data.drop_columns=a,,b"], r"data.drop_columns has an empty column name: \['a', '', 'b'\]"),
        ("", ["data.train_on=labelled"], r"data.train_on must be 'normal' or 'all', got: 'labelled'"),
    ],
)
def test_bad_config_is_a_clear_error_and_registers_nothing(workdir, labelled_csv, config, overrides, message, caplog):
    path = workdir / "config.yaml"
    path.write_text(config)
    sets = [arg for item in overrides for arg in ("--set", item)]
    code = cli(["train", "--data", str(labelled_csv), "--model-name", "bad", "--config", str(path), *sets])
    assert code == 2
    assert re.search(message, caplog.text)
    assert not (workdir / "mlflow.db").exists()  # refused before any run or registration


def test_toml_config_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[detector]\nmax_steps = 40\nhidden = [8, 4]\n[data]\nmax_rows = 1000\ndrop_columns = 'id, ts'\n")
    settings = load_settings(path, ["detector.max_steps=50", "evaluation.min_auroc=0.7"])
    assert settings.detector == {"max_steps": 50, "hidden": (8, 4)}
    assert settings.data.max_rows == 1000 and settings.evaluation.min_auroc == 0.7
    assert settings.data.drop_columns == ["id", "ts"] and settings.data.train_on == "normal"
    options = load_settings(path, ["data.train_on=all"], drop_columns=["key", "id"], train_on=None)
    assert options.data.drop_columns == ["id", "ts", "key"] and options.data.train_on == "all"
    assert load_settings(path, ["data.train_on=all"], train_on="normal").data.train_on == "normal"  # the option wins


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--drop-columns", "x1", "--drop-columns", "x2,nope"], r"not in the data: \['nope'\]; its columns: \['x0',"),
        (["--drop-columns", "label"], "the label column 'label' is also a column to drop"),
        (
            ["--set", "detector.condition_on=[x1]", "--drop-columns", "x1"],
            r"detector.condition_on names .* drops: \['x1'\]",
        ),
    ],
)
def test_columns_to_drop_are_checked_before_any_run(workdir, labelled_csv, caplog, options, message):
    args = ["train", "--data", str(labelled_csv), "--model-name", "dropped", "--label-column", "label"]
    assert cli([*args, *options]) == 2
    assert re.search(message, caplog.text)
    assert not (workdir / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("content", "label", "message"),
    [
        ("a,b\n1,2\n3,4\n", "label", "label column 'label' is not in the data"),
        ("a,label\n1,2\n3,0\n", "label", "must hold 0/1 or booleans"),
    ],
)
def test_bad_data_is_a_clear_error(workdir, content, label, message):
    path = workdir / "data.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        train_and_register(path, "bad-data", validate({"detector": FAST}), label_column=label, progress=False)
    assert not (workdir / "mlflow.db").exists()


def test_unreadable_data_path_is_reported(workdir):
    with pytest.raises(FileNotFoundError, match="data not found"):
        train_and_register(workdir / "nope.csv", "x", validate({}), progress=False)
    (workdir / "data.json").write_text("{}")
    with pytest.raises(ValueError, match=r"expected a \.csv, \.parquet"):
        train_and_register(workdir / "data.json", "x", validate({}), progress=False)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` process on 127.0.0.1 with its own SQLite store and artifact folder."""
    with mlflow_server_process(tmp_path_factory.mktemp("server")) as (url, _):
        yield url


@pytest.mark.slow
def test_remote_tracking_server(workdir, labelled_csv, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    code = cli(
        [
            "train",
            "--data",
            str(labelled_csv),
            "--model-name",
            "remote",
            "--alias",
            "champion",
            "--label-column",
            "label",
            *[arg for k, v in FAST.items() for arg in ("--set", f"detector.{k}={v}")],
        ]
    )
    assert code == 0
    assert not (workdir / "mlflow.db").exists()  # nothing went to the embedded store
    detector, identity = load_detector("models:/remote@champion")
    assert identity == {"name": "remote", "version": "1"}
    rows = pd.read_csv(labelled_csv).drop(columns="label").head(20)
    predicted = mlflow.pyfunc.load_model("models:/remote/1").predict(rows)
    pd.testing.assert_frame_equal(predicted, detector.score_frame(rows), check_exact=True)
    out = workdir / "scores.csv"
    unlabelled = workdir / "unlabelled.csv"
    pd.read_csv(labelled_csv).drop(columns="label").to_csv(unlabelled, index=False)
    assert cli(["score", "--model", "models:/remote@champion", "--input", str(unlabelled), "--output", str(out)]) == 0
    assert len(pd.read_csv(out)) == len(pd.read_csv(unlabelled))
