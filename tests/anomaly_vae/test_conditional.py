"""Conditional VAE (condition_on): scores and p-values of x given its context, sampling given a context."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from anomaly_vae import VAEDetector
from tests.conftest import CONDITIONAL, JEWELRY_LIKE, merchant_frame


def p_values(detector: VAEDetector, merchants: list[str]) -> dict[str, float]:
    records = pd.DataFrame([{**JEWELRY_LIKE, "merchant": m} for m in merchants])
    return dict(zip(merchants, detector.score_frame(records)["p_value"], strict=True))


def test_a_record_is_judged_in_its_context_where_an_unconditional_model_fails(conditional, purchases):
    p = p_values(conditional, ["jewelry", "grocery"])
    assert p["grocery"] < 0.01 and p["jewelry"] > 0.05, p
    # the same columns modelled jointly: the rare context itself makes the record look anomalous
    joint = p_values(VAEDetector(**CONDITIONAL).fit(purchases), ["jewelry", "grocery"])
    assert not (joint["grocery"] < 0.01 and joint["jewelry"] > 0.05), joint


def test_calibration_is_of_x_given_its_context(conditional):
    held_out = merchant_frame(3000, seed=1)
    assert conditional.predict(held_out, fpr=0.05).mean() < 0.08
    scores = conditional.score_frame(held_out.head(20), contributions=True)
    assert "contribution_merchant" not in scores.columns  # the context is not scored
    parts = scores[[f"contribution_{c}" for c in ("amount", "items", "hour", "online")]].sum(axis=1)
    np.testing.assert_allclose(parts, scores["reconstruction_nll"], rtol=1e-5)


def test_samples_follow_the_given_context(conditional, purchases):
    jewelry = conditional.sample(500, random_state=0, context={"merchant": "jewelry"})
    assert jewelry.columns.tolist() == purchases.columns.tolist()
    assert jewelry.dtypes.to_dict() == purchases.dtypes.to_dict()
    assert (jewelry["merchant"] == "jewelry").all()
    # medians: one noise scale per column (learned mostly from the common context) widens the rare one's tails
    assert abs(jewelry["amount"].median() - 80.0) < 3.0 and abs(jewelry["hour"].median() - 15.0) < 1.0
    mixed = conditional.sample(4, random_state=0, context=pd.DataFrame({"merchant": ["grocery", "jewelry"] * 2}))
    assert mixed["merchant"].tolist() == ["grocery", "jewelry"] * 2
    grocery = conditional.sample(500, random_state=0, context={"merchant": "grocery"})
    assert abs(grocery["amount"].median() - 50.0) < 3.0 and abs(grocery["hour"].median() - 18.0) < 1.0


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (None, r"the model is conditioned on \['merchant'\]: pass context values"),
        ({"shop": "x"}, r"missing \['merchant'\], unknown \['shop'\]"),
        (pd.DataFrame({"merchant": ["a", "b", "c"]}), "context has 3 rows: give 1"),
        ({"merchant": None}, "column 'merchant': context value is missing"),
    ],
)
def test_bad_contexts_are_named(conditional, context, message):
    with pytest.raises(ValueError, match=message):
        conditional.sample(5, context=context)


def test_context_columns_are_required_inputs(conditional):
    record = pd.DataFrame([JEWELRY_LIKE])
    with pytest.raises(ValueError, match=r"missing column\(s\): \['merchant'\]"):
        conditional.score_frame(record)
    with pytest.raises(ValueError, match="row 0: column 'merchant': context value is missing"):
        conditional.score_frame(record.assign(merchant=None))


def test_conditional_model_survives_save_and_load(conditional, tmp_path):
    conditional.save(tmp_path / "model")
    loaded = VAEDetector.load(tmp_path / "model")
    assert loaded.condition_on == ["merchant"] and clone(loaded).get_params() == loaded.get_params()
    records = merchant_frame(50, seed=2)
    pd.testing.assert_frame_equal(loaded.score_frame(records), conditional.score_frame(records))
    context = {"merchant": "jewelry"}
    pd.testing.assert_frame_equal(
        loaded.sample(20, random_state=1, context=context), conditional.sample(20, random_state=1, context=context)
    )


@pytest.mark.parametrize(
    ("condition_on", "message"),
    [
        ("merchant", "condition_on must be a list of column names"),
        (["shop"], r"condition_on not in X: \['shop'\]"),
        (["merchant", "amount", "items", "hour", "online"], "at least one column must be left to model"),
    ],
)
def test_bad_condition_on_is_reported_by_fit(purchases, condition_on, message):
    with pytest.raises(ValueError, match=message):
        VAEDetector(condition_on=condition_on).fit(purchases.head(100))
