"""Fixtures of the image job and benchmark tests: scikit-learn's 8 x 8 digits as an MNIST-like .npz."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

# a tiny ImageVAEDetector that still learns the digits
TINY_IMAGE = {
    "max_steps": 100,
    "eval_every": 50,
    "kl_warmup_steps": 50,
    "n_importance_samples": 4,
    "base_channels": 8,
    "augment_shift": 0,
}


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory):
    """scikit-learn's 8 x 8 digits as an MNIST-like .npz: X uint8 (N, 8, 8), y the digit."""
    data = load_digits()
    path = tmp_path_factory.mktemp("digits") / "digits.npz"
    np.savez(path, X=np.clip(data.images * 16, 0, 255).astype(np.uint8), y=data.target)
    return path
