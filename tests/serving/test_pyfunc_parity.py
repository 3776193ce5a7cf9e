"""The registered MLflow pyfunc and the service score records alike, including an integer column with
missing values (which pandas holds as float64 with NaN, as object, or as the nullable ``Int64``, and JSON
as ``null``): both go through a real embedded MLflow store, registered as the training pipeline does."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipelines.registry import configure_tracking, ensure_experiment
from pipelines.train import register_model
from serving.settings import Settings
from tests.serving.conftest import running

COUNTS = [3, None, 5, None, 0, 2, None, 7]  # the training data's "count" is int64, never missing


@pytest.fixture()
def registered(tmp_path, monkeypatch, fitted, train_frame) -> str:
    """``fitted`` registered in an embedded store in ``tmp_path`` (the working directory) as version 1 of
    "parity", with the training pipeline's own signature and input example; its URI."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    configure_tracking()
    with mlflow.start_run(experiment_id=ensure_experiment()):  # as the training job does
        assert register_model(fitted, train_frame.head(5), "parity") == "1"
    return "models:/parity/1"


def frames(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The same records with the integer column "count" holding missing values, as pandas can hold them."""
    return {
        "float64 with NaN": rows.assign(count=np.array([np.nan if c is None else c for c in COUNTS])),
        "object ints and None": rows.assign(count=pd.Series(COUNTS, dtype=object, index=rows.index)),
        "nullable Int64": rows.assign(count=pd.array(COUNTS, dtype="Int64")),
    }


def test_pyfunc_and_service_agree_on_an_integer_column_with_missing_values(registered, fitted, train_frame):
    rows = train_frame.head(len(COUNTS)).reset_index(drop=True)
    rows.loc[1, "amount"] = 1e4  # one far-off record, so that is_outlier is not all False
    pyfunc = mlflow.pyfunc.load_model(registered)
    predictions = {name: pyfunc.predict(frame) for name, frame in frames(rows).items()}
    expected = fitted.score_frame(frames(rows)["object ints and None"]).reset_index(drop=True)
    assert expected["missing_unseen"].tolist() == [int(c is None) for c in COUNTS]
    assert expected["is_outlier"].any()
    for name, predicted in predictions.items():
        pd.testing.assert_frame_equal(predicted, expected, check_exact=True, obj=name)

    records = json.loads(frames(rows)["float64 with NaN"].to_json(orient="records"))
    assert [record["count"] for record in records] == COUNTS  # JSON null where the value is missing
    with running(Settings(model_uri=registered, reload_interval_seconds=0)) as (client, _):
        answer = client.post("/v1/score", json={"records": records})
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == {"name": "parity", "version": "1"}
        served = pd.DataFrame(answer.json()["results"])
    served = served[expected.columns].astype(expected.dtypes.to_dict())
    # JSON carries a float's shortest repr, which reads back as the same float64: equal bit for bit
    pd.testing.assert_frame_equal(served, expected, check_exact=True)
