"""Spark scale-out in local mode: the same registered model scores a Spark DataFrame like local scoring."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from pyspark.sql import SparkSession

from pipelines.config import validate
from pipelines.registry import load_detector
from pipelines.spark import SCORE_TYPES, score_spark
from pipelines.train import train_and_register
from tests.conftest import assert_scores_close, mixed_frame, system_tool


@pytest.fixture(scope="module")
def spark():
    system_tool("java", "default-jre-headless")  # Spark runs on a JVM
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers run this environment's Python
    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.mark.slow
def test_spark_scores_equal_local_scores(spark, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    frame, _ = mixed_frame(600, seed=8)
    frame.to_csv(tmp_path / "train.csv", index=False)
    settings = validate({"detector": {"hidden": [16], "max_steps": 100, "kl_warmup_steps": 20}})
    train_and_register(tmp_path / "train.csv", "spark-model", settings, alias="champion", progress=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # visible to the workers

    rows = frame.head(200).assign(event_id=np.arange(200))
    scored = score_spark(spark.createDataFrame(rows), "models:/spark-model@champion").toPandas()
    detector, _ = load_detector("models:/spark-model@champion")
    local = detector.score_frame(rows.drop(columns="event_id"))
    assert scored["event_id"].tolist() == list(range(200))  # input columns kept, order kept
    assert list(scored.columns) == [*rows.columns, *SCORE_TYPES]
    assert list(SCORE_TYPES) == list(local.columns)  # every score column of the table
    assert_scores_close(scored, local, detector)  # Spark scores Arrow batches of its own size


def test_missing_columns_fail_on_the_driver(spark, tmp_path, fitted):
    fitted.save(tmp_path / "model")
    rows = mixed_frame(5, seed=1)[0].drop(columns="tier")
    with pytest.raises(ValueError, match=r"missing column\(s\) for the model: \['tier'\]"):
        score_spark(spark.createDataFrame(rows), str(tmp_path / "model"))
