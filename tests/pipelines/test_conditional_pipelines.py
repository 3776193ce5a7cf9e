"""The pipelines with a conditional model: training config, batch scoring and sampling."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipelines.batch import TooManyRejects, score_file
from pipelines.cli import main as cli
from pipelines.config import validate
from pipelines.registry import load_detector
from pipelines.train import train_and_register
from tests.conftest import merchant_frame


@pytest.fixture(scope="module")
def model_dir(conditional, tmp_path_factory):
    folder = tmp_path_factory.mktemp("conditional") / "model"
    conditional.save(folder)
    return str(folder)


def test_batch_scoring_rejects_rows_without_a_context(model_dir, conditional, tmp_path):
    frame = merchant_frame(300, seed=3)
    frame.loc[[5, 17], "merchant"] = None
    source, out = tmp_path / "purchases.csv", tmp_path / "scores.csv"
    frame.to_csv(source, index=False)
    manifest = score_file(model_dir, source, out, progress=False)
    assert (manifest["rows_scored"], manifest["rows_rejected"]) == (298, 2)
    rejects = pd.read_csv(tmp_path / "scores.rejects.csv")
    assert rejects["row"].tolist() == [5, 17]
    assert (rejects["reason"] == "column 'merchant': context value is missing").all()
    scores = pd.read_csv(out)
    expected = conditional.score_frame(frame.drop(index=[5, 17]))
    np.testing.assert_allclose(scores["neg_log_likelihood"], expected["neg_log_likelihood"], rtol=1e-5)

    frame.drop(columns="merchant").to_csv(source, index=False)
    with pytest.raises(TooManyRejects, match="no row was scored") as failed:
        score_file(model_dir, source, out, progress=False)
    assert failed.value.manifest["rows_rejected"] == 300
    assert pd.read_csv(tmp_path / "scores.rejects.csv")["reason"].iloc[0] == "missing column(s): ['merchant']"


def test_sample_command_takes_a_context_or_draws_it_from_data(model_dir, tmp_path, capsys):
    out = tmp_path / "jewelry.csv"
    args = ["sample", "--model", model_dir, "-n", "300", "--output", str(out)]
    assert cli([*args, "--context", '{"merchant": "jewelry"}']) == 0
    jewelry = pd.read_csv(out)
    capsys.readouterr()
    assert (jewelry["merchant"] == "jewelry").all() and abs(jewelry["amount"].median() - 80.0) < 3.0

    data = tmp_path / "purchases.csv"
    merchant_frame(2000, seed=4).to_csv(data, index=False)
    assert cli([*args, "--compare", str(data)]) == 0  # contexts drawn from the data's rows
    summary = json.loads(capsys.readouterr().out)
    drawn = pd.read_csv(out)
    assert 0.005 < (drawn["merchant"] == "jewelry").mean() < 0.08
    columns = {row["column"]: row["value"] for row in summary["fidelity"]["columns"]}
    assert columns["merchant"] < 0.03 and columns["hour"] < 0.15


def test_sample_command_needs_a_context(model_dir, tmp_path, caplog):
    out = tmp_path / "samples.csv"
    assert cli(["sample", "--model", model_dir, "-n", "5", "--output", str(out)]) == 2
    assert "conditioned on ['merchant']: give --context JSON, --context-from DATA or --compare" in caplog.text
    assert not out.exists()


def test_training_pipeline_accepts_condition_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    merchant_frame(600, seed=5).to_csv(tmp_path / "purchases.csv", index=False)
    fast = {"hidden": [16], "max_steps": 60, "eval_every": 30, "kl_warmup_steps": 10, "fpr": 0.05}
    settings = validate({"detector": {**fast, "condition_on": ["merchant"]}})
    train_and_register(tmp_path / "purchases.csv", "purchases", settings, progress=False)
    detector, _ = load_detector("models:/purchases/1")
    assert detector.condition_on == ["merchant"] and detector.config_.context_dim == 3  # 2 types + unknown
    bad = validate({"detector": {**fast, "condition_on": ["shop"]}})
    with pytest.raises(ValueError, match=r"detector.condition_on names column\(s\) not in the data: \['shop'\]"):
        train_and_register(tmp_path / "purchases.csv", "other", bad, progress=False)
    assert [m.name for m in mlflow.MlflowClient().search_registered_models()] == ["purchases"]
