import math

import numpy as np
import pytest

from anomaly_vae.calibration import Calibration


def test_p_value_is_the_split_conformal_formula():
    calibration = Calibration.fit({"s": np.array([3.0, 1.0, 2.0, 2.0])})
    p = calibration.p_value("s", np.array([0.5, 2.0, 2.5, 9.0]))
    np.testing.assert_allclose(p, [5 / 5, 4 / 5, 2 / 5, 1 / 5])  # (1 + #{c >= s}) / (n + 1)


@pytest.mark.parametrize("fpr", [0.001, 0.01, 0.05, 0.1, 0.33, 0.5])
def test_threshold_flags_exactly_the_records_with_small_p_values(fpr):
    rng = np.random.default_rng(0)
    calibration = Calibration.fit({"s": np.round(rng.normal(size=999), 1)})  # rounding makes ties
    scores = np.round(rng.normal(size=5000) * 1.5, 1)
    flagged = scores > calibration.threshold("s", fpr)
    np.testing.assert_array_equal(flagged, calibration.p_value("s", scores) <= fpr + 1e-12)


def test_too_small_a_calibration_set_flags_nothing():
    calibration = Calibration.fit({"s": np.arange(50.0)})
    assert calibration.threshold("s", 0.01) == math.inf  # 1/51 > 0.01: no score can reach p <= 0.01


def test_contamination_drops_the_top_calibration_scores():
    scores = np.r_[np.arange(90.0), np.full(10, 1000.0)]
    clean = Calibration.fit({"s": scores}, contamination=0.1)
    assert clean.size == 90 and clean.scores["s"].max() == 89.0
    assert clean.threshold("s", 0.1) < Calibration.fit({"s": scores}).threshold("s", 0.1)
