"""Image models generate (``sample``) and watch drift: the reference profile of image statistics, scores
and latent codes saved with the model, and reports on unchanged and shifted images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

import anomaly_vae
from anomaly_vae import ImageVAEDetector
from anomaly_vae.errors import RecordError
from anomaly_vae.image.profile import FEATURES, image_statistics
from anomaly_vae.profile import DriftThresholds
from tests.anomaly_vae.test_image_detector import TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SAVED = Path(__file__).parents[1] / "fixtures" / "saved_models" / "image"


@pytest.fixture(scope="module")
def eights():
    """Digit 8 of scikit-learn's 8 x 8 digits, floats in [0, 1]: 120 to train on, 54 fresh ones."""
    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.images))
    images, labels = (data.images[order] / 16.0).astype(np.float32), data.target[order]
    return images[:1200][labels[:1200] == 8], images[1200:][labels[1200:] == 8], images[1200:][labels[1200:] == 1]


@pytest.fixture(scope="module")
def fitted(eights):
    with pytest.warns(UserWarning, match="cannot resolve fpr"):  # 25 calibration images
        return ImageVAEDetector(random_state=0, device="cpu", **TINY).fit(eights[0])


def test_samples_are_images_in_the_unit_range_and_reproducible(fitted):
    samples = fitted.sample(6, random_state=1)
    assert samples.shape == (6, 8, 8, 1) and samples.dtype == np.float32
    assert samples.min() >= 0.0 and samples.max() <= 1.0 and samples.std() > 0.01
    np.testing.assert_array_equal(samples, fitted.sample(6, random_state=1))
    assert not np.array_equal(samples, fitted.sample(6, random_state=2))
    assert fitted.sample(random_state=0).shape == (1, 8, 8, 1)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            fitted.sample(bad)


def test_an_ensemble_samples_from_its_members(eights):
    params = {**TINY, "max_steps": 20, "eval_every": 10}
    with pytest.warns(UserWarning):
        ensemble = ImageVAEDetector(random_state=0, device="cpu", n_members=2, **params).fit(eights[0])
    samples = ensemble.sample(300, random_state=0)  # more than one decoding chunk
    assert samples.shape == (300, 8, 8, 1)
    np.testing.assert_array_equal(samples[:5], ensemble.sample(5, random_state=0))


def test_image_statistics_of_originals_before_resizing():
    flat = np.full((2, 6, 12), 0.25, np.float32)
    stripes = np.zeros((10, 10, 3), np.uint8)
    stripes[:, ::2] = 255
    stats = image_statistics([*flat, stripes])
    assert list(stats) == list(FEATURES)
    np.testing.assert_allclose(stats["mean_intensity"], [0.25, 0.25, 0.5])
    np.testing.assert_allclose(stats["contrast"], [0.0, 0.0, 0.5])
    np.testing.assert_allclose(stats["sharpness"], [0.0, 0.0, 2.0])  # |4x - 2 neighbours| on +-1 stripes
    np.testing.assert_allclose(stats["height"], [6, 6, 10])
    np.testing.assert_allclose(stats["aspect_ratio"], [2.0, 2.0, 1.0])
    np.testing.assert_allclose(image_statistics(flat)["width"], [12, 12])  # a stack gives the same


def test_training_and_fresh_images_raise_no_alarm(fitted, eights):
    train, fresh, _ = eights
    for images in (train, fresh, list(fresh[:30])):
        report = fitted.drift(images)
        assert report.alarms == [], (report.alarms, report.latent_p_value, report.score_p_value)
        assert [f.name for f in report.features] == list(FEATURES)
    # Bonferroni over the image's 6 features (two tests each) + score, latent codes, outlier count
    assert fitted.profile_.level(DriftThresholds()) == pytest.approx(1e-4 / 15)


def test_a_brightness_shift_is_flagged(fitted, eights):
    brighter = np.clip(eights[1] + 0.3, 0.0, 1.0)
    report = fitted.drift(brighter)
    assert "feature:mean_intensity" in report.alarms and report.drifted
    mean = next(f for f in report.features if f.name == "mean_intensity")
    assert mean.ks == 1.0 and mean.distribution_drifted
    assert "feature:height" not in report.alarms and "feature:aspect_ratio" not in report.alarms


def test_drift_takes_what_scoring_takes_and_given_scores(fitted, eights, tmp_path):
    fresh = eights[1][:20]
    for i, image in enumerate(fresh):
        Image.fromarray((image * 255).round().astype(np.uint8)).save(tmp_path / f"{i:02d}.png")
    from_folder = fitted.drift(tmp_path)
    assert from_folder.n_records == 20 and from_folder.alarms == []
    large = [np.kron(image, np.ones((2, 2), np.float32)) for image in fresh[:10]]  # 16 x 16 originals
    report = fitted.drift(large + list(fresh[10:]))
    assert [round(f.psi, 6) for f in report.features][3:] != [0.0] * 3  # sizes differ from the training ones
    scores = fitted.decision_function(fresh)
    given = fitted.drift(fresh, scores=scores).to_dict()
    assert given == fitted.drift(fresh).to_dict()
    with pytest.raises(ValueError, match=r"scores has shape \(3,\), expected \(20,\)"):
        fitted.drift(fresh, scores=scores[:3])
    with pytest.raises(RecordError, match="image 1: the model expects 1-channel"):
        fitted.drift([fresh[0], np.repeat(fresh[1][..., None], 3, axis=-1)])


def test_profile_round_trips_and_reports_are_json(fitted, eights, tmp_path):
    fitted.save(tmp_path / "model")
    loaded = ImageVAEDetector.load(tmp_path / "model")
    window = eights[2]  # ones: another digit
    report = loaded.drift(window)
    assert report.to_dict() == fitted.drift(window).to_dict()
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["features"][0]["name"] == "mean_intensity" and data["n_records"] == len(window)
    assert set(data) >= {"drifted", "drifted_features", "score_psi", "latent_kl", "outlier_rate", "alarms"}
    np.testing.assert_array_equal(loaded.sample(3, random_state=0), fitted.sample(3, random_state=0))


def test_a_model_saved_without_a_profile_loads_and_says_drift_is_unavailable(eights):
    old = anomaly_vae.load(SAVED)  # saved before image drift existed
    assert old.profile_ is None
    with pytest.raises(ValueError, match="no reference profile"):
        old.drift(np.load(SAVED.parent / "image_input.npy"))
    assert old.sample(2, random_state=0).shape[0] == 2
