"""`anomaly-vae train` with labels and columns to drop: what the model learns from, what it is evaluated on,
what the command prints, and what the registered pyfunc and the batch job accept."""

from __future__ import annotations

import logging
import re
import warnings

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from anomaly_vae.tabular.schema import ColumnWarning, TabularSchema
from pipelines import evaluation
from pipelines.batch import score_file
from pipelines.cli import main as cli
from pipelines.config import validate
from pipelines.registry import load_detector
from pipelines.synthetic import mixed_frame
from pipelines.train import train_and_register

FAST = {"hidden": [16], "max_steps": 150, "eval_every": 50, "kl_warmup_steps": 20}
FAST_ARGS = [arg for key, value in FAST.items() for arg in ("--set", f"detector.{key}={value}")]


class Records(logging.Handler):
    """Keeps every log record it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    """1,300 labelled records (100 anomalies) with an identifier column and an integer column, ``count``."""
    frame, labels = mixed_frame(1200, seed=3, n_anomalies=100)
    frame.insert(0, "event_id", np.arange(len(frame)) * 7 + 1000)
    frame["label"] = labels
    return frame


@pytest.fixture(scope="module")
def trained(events, tmp_path_factory):
    """A folder with ``events.csv`` and the embedded store after ``anomaly-vae train --label-column label
    --drop-columns event_id`` registered model "events" there; and the command's log records."""
    root = tmp_path_factory.mktemp("events")
    events.to_csv(root / "events.csv", index=False)
    handler, logger = Records(), logging.getLogger("pipelines")
    level = logger.level
    logger.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    try:
        with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
            warnings.simplefilter("always", ColumnWarning)  # shown however often it was shown before
            patch.chdir(root)
            patch.delenv("MLFLOW_TRACKING_URI", raising=False)
            args = ["train", "--data", "events.csv", "--model-name", "events", "--label-column", "label"]
            assert cli([*args, "--drop-columns", "event_id", *FAST_ARGS]) == 0
    finally:
        logging.getLogger().removeHandler(handler)
        logger.setLevel(level)
    return root, handler.records


@pytest.fixture()
def store(trained, monkeypatch):
    """The trained store as the working directory's embedded store."""
    monkeypatch.chdir(trained[0])
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return trained[0]


def training_part(frame: pd.DataFrame) -> np.ndarray:
    """The labels of the rows that the pipeline's stratified split leaves for training (the rest is held out)."""
    _, _, labels, _ = train_test_split(frame, frame["label"], test_size=0.2, stratify=frame["label"], random_state=0)
    return labels.to_numpy()


def run_of(name: str) -> mlflow.entities.Run:
    return mlflow.get_run(mlflow.MlflowClient().get_model_version(name, "1").run_id)


def test_an_identifier_column_warns_unless_dropped(trained, events):
    with pytest.warns(ColumnWarning, match=r"'event_id' looks like an identifier.*--drop-columns event_id"):
        TabularSchema.fit(events.drop(columns="label"))
    messages = [record.getMessage() for record in trained[1]]
    assert not [m for m in messages if "identifier" in m]  # the pipeline dropped it before fitting


def test_labelled_training_learns_from_the_normal_rows_only(store, events):
    detector, _ = load_detector("models:/events/1")
    assert list(detector.feature_names_in_) == [c for c in events.columns if c not in ("event_id", "label")]
    labels = training_part(events)
    normal = int((labels == 0).sum())
    assert detector.profile_.n_reference == normal < len(labels)  # the anomalies of the training part stayed out
    params = run_of("events").data.params
    assert params["data.drop_columns"] == "['event_id']" and params["data.train_on"] == "normal"
    assert (params["train_rows"], params["train_anomalous_rows"]) == (str(normal), "0")
    assert (params["test_normal_rows"], params["test_anomalous_rows"]) == ("240", "20")  # stratified: both classes


def test_the_evaluation_is_printed(trained, store):
    metrics = run_of("events").data.metrics
    printed = [record.getMessage() for record in trained[1] if record.name == "pipelines.evaluation"]
    assert len(printed) == 2
    normal = int((training_part(pd.read_csv(store / "events.csv")) == 0).sum())
    assert printed[0] == (
        f"evaluation on 260 held-out rows (240 normal, 20 anomalous); the model learned from {normal:,} rows "
        "labelled normal:"
    )
    assert f"AUROC {metrics['test_auroc']:.3f}, AUPR {metrics['test_aupr']:.3f}; is_outlier at fpr=0.01" in printed[1]
    assert f"precision {metrics['test_precision']:.3f}, recall {metrics['test_recall']:.3f}" in printed[1]
    flagged = re.search(r"flagged (\d+) of 20 anomalous and (\d+) of 240 normal rows", printed[1])
    assert flagged is not None
    assert int(flagged[1]) == metrics["test_flagged_anomalous_rows"] and int(flagged[2]) <= 240 * 0.05
    assert metrics["test_auroc"] > 0.6  # measured 0.826
    assert not [r for r in trained[1] if "inverted" in r.getMessage()]


def test_batch_scoring_takes_input_that_still_holds_the_dropped_column(store, events):
    manifest = score_file(
        "models:/events/1", store / "events.csv", store / "scores.csv", id_columns=["event_id"], progress=False
    )
    assert (manifest["rows_scored"], manifest["rows_rejected"]) == (len(events), 0)
    assert pd.read_csv(store / "scores.csv")["event_id"].tolist() == events["event_id"].tolist()


def test_the_pyfunc_takes_missing_values_in_an_integer_column(store, events):
    assert events["count"].dtype == np.int64 and not events["count"].isna().any()  # an integer column in training
    rows = events.drop(columns=["event_id", "label"]).head(40)
    rows["count"] = rows["count"].astype(object)
    rows.loc[rows.index[::4], "count"] = None
    detector, _ = load_detector("models:/events/1")
    predicted = mlflow.pyfunc.load_model("models:/events/1").predict(rows)
    pd.testing.assert_frame_equal(predicted, detector.score_frame(rows), check_exact=True)
    assert predicted["missing_unseen"].tolist() == [1 if i % 4 == 0 else 0 for i in range(40)]
    as_floats = rows.astype({"count": np.float64})  # what pandas makes of an integer column with gaps
    pd.testing.assert_frame_equal(mlflow.pyfunc.load_model("models:/events/1").predict(as_floats), predicted)
    integers = events.drop(columns=["event_id", "label"]).head(40)  # and plain int64 still
    pd.testing.assert_frame_equal(
        mlflow.pyfunc.load_model("models:/events/1").predict(integers), detector.score_frame(integers)
    )


@pytest.mark.usefixtures("one_torch_thread")
def test_train_on_all_keeps_the_anomalies_and_inverted_labels_are_called_out(events, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    inverted = events.assign(label=1 - events["label"])  # 1 = normal: the wrong way round
    inverted.to_csv(tmp_path / "inverted.csv", index=False)
    settings = validate({"detector": FAST, "data": {"drop_columns": "event_id", "train_on": "all"}})
    with caplog.at_level(logging.INFO, logger="pipelines"):
        result = train_and_register(
            tmp_path / "inverted.csv", "inverted", settings, label_column="label", progress=False
        )
    detector, _ = load_detector("models:/inverted/1")
    assert detector.profile_.n_reference == len(training_part(inverted)) == 1040  # every training row
    assert result.metrics["test_auroc"] < 0.5  # measured 0.252
    warning = [r for r in caplog.records if r.levelno == logging.WARNING and "inverted" in r.getMessage()]
    assert len(warning) == 1
    assert warning[0].getMessage() == (
        f"WARNING: test AUROC {result.metrics['test_auroc']:.3f} is below 0.5: rows labelled 1 score as less "
        "anomalous than rows labelled 0. Labels inverted? 1 must mean anomaly"
    )
    assert "Labels inverted?" in run_of("inverted").data.tags["warning"]
    assert "rows, anomalies included (train_on: all)" in caplog.text


def test_the_split_holds_out_both_classes_and_trains_on_the_normal_rows():
    frame, labels = mixed_frame(300, seed=1, n_anomalies=30)
    normal_only = evaluation.split(frame, labels, 0.2, "normal")
    assert sorted(np.bincount(normal_only.test_labels)) == [6, 60]
    assert (labels[normal_only.train.index] == 0).all() and len(normal_only.train) == 240
    assert not set(normal_only.train.index) & set(normal_only.test.index)
    everything = evaluation.split(frame, labels, 0.2, "all")
    assert everything.test.index.equals(normal_only.test.index)  # the same held-out rows either way
    assert len(everything.train) == 264 and labels[everything.train.index].sum() == 24
    assert everything.counts["train_anomalous_rows"] == 24 and normal_only.counts["train_anomalous_rows"] == 0

    one = np.r_[1, np.zeros(len(frame) - 1, int)]
    with pytest.raises(ValueError, match=r"329 normal and 1 anomalous row\(s\): the evaluation needs at least 2 of"):
        evaluation.split(frame, one, 0.2, "normal")
    two = np.r_[1, 1, np.zeros(len(frame) - 2, int)]
    with pytest.raises(ValueError, match=r"the held-out part \(evaluation.test_fraction=0.01\) has 4 normal and 0"):
        evaluation.split(frame, two, 0.01, "normal")
