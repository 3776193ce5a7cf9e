import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from pipelines.cli import main
from pipelines.images import run_mnist

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = {
    "max_steps": 100,
    "eval_every": 50,
    "kl_warmup_steps": 50,
    "n_importance_samples": 4,
    "base_channels": 8,
    "augment_shift": 0,
}


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    """scikit-learn's 8 x 8 digits as an MNIST-like .npz: X uint8 (N, 8, 8), y the digit."""
    data = load_digits()
    path = tmp_path_factory.mktemp("digits") / "digits.npz"
    np.savez(path, X=np.clip(data.images * 16, 0, 255).astype(np.uint8), y=data.target)
    return path


def test_mnist_benchmark_writes_tables_and_grid(digits_npz, tmp_path):
    table = run_mnist(digits_npz, tmp_path, digits=[0, 7], seeds=[0], jobs=1, params=TINY)
    results = pd.read_csv(tmp_path / "mnist.csv")
    assert {"ImageVAEDetector", "IsolationForest", "PCA reconstruction"} <= set(results["method"])
    assert sorted(results["dataset"].unique()) == ["digit 0", "digit 7"]
    assert (results.loc[results["method"] == "ImageVAEDetector", "auroc"] > 0.8).all()
    assert table.startswith("One-class MNIST (digits.npz), digits [0, 7], seeds [0]")
    assert "| ImageVAEDetector |" in (tmp_path / "mnist.md").read_text()
    assert np.asarray(Image.open(tmp_path / "mnist_grid.png")).shape == (3 * 10 + 2, 8 * 10 + 2, 3)


def test_images_fit_and_grid_commands(digits_npz, tmp_path):
    params = json.dumps(TINY)
    model = tmp_path / "model"
    assert (
        main(["images", "fit", "--data", str(digits_npz), "--label", "3", "--output", str(model), "--params", params])
        == 0
    )
    picture = tmp_path / "grid.png"
    assert (
        main(["images", "grid", "--model", str(model), "--input", str(digits_npz), "--output", str(picture), "-n", "5"])
        == 0
    )
    assert np.asarray(Image.open(picture)).shape == (3 * 10 + 2, 5 * 10 + 2, 3)
    assert main(["images", "fit", "--data", str(digits_npz), "--label", "42", "--output", str(tmp_path / "m2")]) == 2
    assert not (tmp_path / "m2").exists()
