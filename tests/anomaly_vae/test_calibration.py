import math
import warnings

import numpy as np
import pytest

from anomaly_vae import VAEDetector
from anomaly_vae.calibration import Calibration, UnresolvableFprWarning
from pipelines.synthetic import mixed_frame


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


def test_smallest_fpr_is_where_a_threshold_starts_to_exist():
    calibration = Calibration.fit({"s": np.arange(50.0)})
    assert calibration.smallest_fpr == 1 / 51
    assert math.isfinite(calibration.threshold("s", 1 / 51)) and calibration.threshold("s", 0.0195) == math.inf


def small_frame(n: int, seed: int):
    return mixed_frame(n, seed=seed)[0]


FAST = {"hidden": (16,), "max_steps": 150, "eval_every": 25, "random_state": 0}


def test_out_of_bag_calibration_uses_most_rows_of_a_small_data_set_and_flags_at_5_percent():
    detector = VAEDetector(**FAST).fit(small_frame(112, seed=0))
    assert detector.calibration_method_ == "out_of_bag"
    assert detector.calibration_.size >= 50  # a 20% split would keep ~22 of 112 rows
    threshold = detector.thresholds(fpr=0.05)[detector.default_score]
    assert math.isfinite(threshold) and threshold == detector.calibration_.threshold(detector.default_score, 0.05)
    far = small_frame(5, seed=1).assign(amount=1e4, duration=-50.0)
    assert detector.predict(far, fpr=0.05).all()


def test_out_of_bag_calibration_scores_each_row_only_with_the_members_that_left_it_out():
    detector = VAEDetector(**FAST)
    frame = small_frame(200, seed=2)
    calibrated = detector.fit(frame)._train_and_calibrate  # the fitted model is replaced below; same seed
    result = calibrated(detector._tensor_data(detector.schema_.encode(frame)), frame, ())
    assert result.members.shape == (detector.n_members, len(result.data)) and result.members.any(axis=0).all()
    by_member, _ = detector._score_data(result.data, per_feature=False, by_member=True)
    member_mean = (by_member["neg_elbo"] * result.members).sum(axis=0) / result.members.sum(axis=0)
    np.testing.assert_allclose(result.scores["neg_elbo"], member_mean)
    everyone, _ = detector._score_data(result.data, per_feature=False)
    np.testing.assert_allclose(by_member["neg_elbo"].mean(axis=0), everyone["neg_elbo"], rtol=1e-6)


def test_a_request_the_calibration_set_cannot_resolve_warns_before_training():
    seen_at_first_check: list[int] = []

    class FirstCheck:
        def on_epoch_end(self, step, logs):
            seen_at_first_check.append(len(caught)) if not seen_at_first_check else None

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        VAEDetector(**{**FAST, "fpr": 0.001}).fit(small_frame(112, seed=0), callbacks=[FirstCheck()])
    unresolvable = [w for w in caught if issubclass(w.category, UnresolvableFprWarning)]
    assert len(unresolvable) == 1 and "cannot resolve fpr=0.001" in str(unresolvable[0].message)
    assert seen_at_first_check == [1]  # already warned when training reached its first check


def test_split_calibration_and_single_networks_keep_a_held_out_part():
    frame = small_frame(300, seed=3)
    split = VAEDetector(**FAST, calibration="split").fit(frame)
    single = VAEDetector(**FAST, n_members=1).fit(frame)
    assert split.calibration_method_ == single.calibration_method_ == "split"
    assert 30 <= split.calibration_.size <= 90  # the 20% calibration part
    with pytest.raises(ValueError, match="calibration='out_of_bag' needs n_members > 1"):
        VAEDetector(n_members=1, calibration="out_of_bag").fit(frame)


def test_the_calibration_method_is_saved(tmp_path):
    detector = VAEDetector(**FAST).fit(small_frame(120, seed=4))
    detector.save(tmp_path / "model")
    assert VAEDetector.load(tmp_path / "model").calibration_method_ == "out_of_bag"
