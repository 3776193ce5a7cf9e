"""Synthetic samples (VAEDetector.sample) and how faithful they are to held-out data."""

import numpy as np
import pandas as pd
import pytest

from anomaly_vae import VAEDetector
from pipelines.fidelity import compare
from tests.conftest import mixed_frame

# the defaults stop at max_steps=800 still improving; a higher rate gets faithful samples in as many steps
FAITHFUL = {"learning_rate": 3e-3, "n_members": 1, "hidden": (32, 16), "random_state": 0}


@pytest.fixture(scope="module")
def generative(train_frame: pd.DataFrame) -> VAEDetector:
    return VAEDetector(**FAITHFUL).fit(train_frame)


def test_samples_have_the_training_schema_and_dtypes(generative, train_frame):
    samples = generative.sample(500, random_state=1)
    assert samples.columns.tolist() == train_frame.columns.tolist() and len(samples) == 500
    assert samples.dtypes.to_dict() == train_frame.dtypes.to_dict()
    assert set(samples["tier"]) <= {"low", "mid", "high", "<unknown>"}
    assert set(samples["channel"].dropna()) <= {"web", "store", "<unknown>"}
    assert samples["load"].isna().any() and samples["channel"].isna().any()  # learned missingness
    assert not samples[["amount", "duration", "count", "tier", "flagged"]].isna().any().any()  # never missing
    pd.testing.assert_frame_equal(samples, generative.sample(500, random_state=1))
    assert not samples.equals(generative.sample(500, random_state=2))


def test_samples_match_held_out_data(generative):
    held_out = mixed_frame(3000, seed=1)[0]
    result = compare(generative.sample(3000, random_state=0), held_out)
    numeric = result.columns[result.columns["kind"] == "numeric"]
    categorical = result.columns[result.columns["kind"] == "categorical"]
    assert numeric.index.tolist() == ["amount", "duration", "load", "count"]
    assert (numeric["value"] < 0.1).all(), numeric  # Kolmogorov-Smirnov statistic
    assert (categorical["value"] < 0.05).all(), categorical  # largest category frequency difference
    assert (numeric["missing_samples"] - numeric["missing_data"]).abs().max() < 0.03
    assert result.max_correlation_difference < 0.1


def test_the_comparison_sees_an_unfaithful_sample(train_frame):
    held_out = mixed_frame(3000, seed=1)[0]
    shifted = held_out.assign(duration=held_out["duration"] + 5.0, tier="low")
    result = compare(shifted, train_frame)
    assert result.columns.loc["duration", "value"] > 0.4 and result.columns.loc["tier", "value"] > 0.5
    with pytest.raises(ValueError, match=r"samples lack the data's column\(s\): \['amount'\]"):
        compare(held_out.drop(columns="amount"), train_frame)


def test_sample_survives_save_and_load(generative, tmp_path):
    generative.save(tmp_path / "model")
    loaded = VAEDetector.load(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.sample(50, random_state=3), generative.sample(50, random_state=3))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n": 0}, ValueError, "n must be a positive integer"),
        ({"n": 5, "context": {"tier": "low"}}, ValueError, "the model is not conditional"),
    ],
)
def test_bad_sample_requests_are_rejected(generative, kwargs, error, message):
    with pytest.raises(error, match=message):
        generative.sample(**kwargs)


def test_integer_columns_come_back_as_integers(generative):
    counts = generative.sample(200, random_state=0)["count"]
    assert counts.dtype == np.int64
