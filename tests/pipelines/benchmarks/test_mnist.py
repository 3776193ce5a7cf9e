"""The one-class MNIST benchmark's code path on scikit-learn's 8 x 8 digits."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipelines.benchmarks.mnist import run_mnist
from tests.pipelines.conftest import TINY_IMAGE

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_mnist_benchmark_writes_tables_and_grid(digits_npz, tmp_path):
    table = run_mnist(digits_npz, tmp_path, digits=[0, 7], seeds=[0], jobs=1, params=TINY_IMAGE)
    results = pd.read_csv(tmp_path / "mnist.csv")
    assert {"ImageVAEDetector", "IsolationForest", "PCA reconstruction"} <= set(results["method"])
    assert sorted(results["dataset"].unique()) == ["digit 0", "digit 7"]
    assert (results.loc[results["method"] == "ImageVAEDetector", "auroc"] > 0.8).all()
    assert table.startswith("One-class MNIST (digits.npz), digits [0, 7], seeds [0]")
    assert "| ImageVAEDetector |" in (tmp_path / "mnist.md").read_text()
    # 8 x 8 digits drawn as 96 x 96 tiles (factor 12) with 2 px gaps
    assert np.asarray(Image.open(tmp_path / "mnist_grid.png")).shape == (3 * 98 + 2, 8 * 98 + 2, 3)
