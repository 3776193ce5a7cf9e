"""Model folders saved by earlier code (tests/fixtures/saved_models, made by make_saved_models.py at commit
6ea0d5c) load with today's code and give the scores that code gave: bit for bit on a CPU with the
capability they were saved on (the kernels differ between AVX2 and AVX-512), else within 1e-6 relative."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import anomaly_vae
from anomaly_vae import ImageVAEDetector, VAEDetector

FIXTURES = Path(__file__).parents[1] / "fixtures" / "saved_models"
EXPECTED = json.loads((FIXTURES / "expected_scores.json").read_text())
SAME_KERNELS = torch.backends.cpu.get_cpu_capability() == EXPECTED["cpu_capability"]


def assert_same(actual: np.ndarray, expected: list, what: str) -> None:
    expected_array = np.asarray(expected, dtype=actual.dtype)
    if SAME_KERNELS:
        np.testing.assert_array_equal(actual, expected_array, err_msg=what)
    else:
        np.testing.assert_allclose(actual, expected_array, rtol=1e-6, err_msg=what)


def test_tabular_model_saved_before_loads_and_scores_the_same() -> None:
    detector = anomaly_vae.load(FIXTURES / "tabular")
    assert type(detector) is VAEDetector
    scored = detector.score_frame(pd.read_csv(FIXTURES / "tabular_input.csv"), contributions=True)
    added = ["missing_unseen", "unknown_categories"]  # input counts, added after the fixture was made
    assert list(scored.columns.drop(added)) == list(EXPECTED["tabular"])
    assert scored.loc[0, "unknown_categories"] == 1 and scored[added].to_numpy().sum() == 1  # "fax"
    for column in EXPECTED["tabular"]:
        assert_same(scored[column].to_numpy(), EXPECTED["tabular"][column], column)


def test_image_model_saved_before_loads_and_scores_the_same() -> None:
    detector = anomaly_vae.load(FIXTURES / "image")
    assert type(detector) is ImageVAEDetector
    images = np.load(FIXTURES / "image_input.npy")
    scored = detector.score_frame(images)
    assert list(scored.columns) == list(EXPECTED["image"])
    for column in scored.columns:
        assert_same(scored[column].to_numpy(), EXPECTED["image"][column], column)
    assert_same(detector.anomaly_maps(images).ravel(), EXPECTED["image_maps"], "anomaly maps")


@pytest.mark.parametrize(("cls", "folder"), [(VAEDetector, "image"), (ImageVAEDetector, "tabular")])
def test_a_class_refuses_the_other_kind(cls: type, folder: str) -> None:
    with pytest.raises(ValueError, match=r"anomaly_vae\.load"):
        cls.load(FIXTURES / folder)
