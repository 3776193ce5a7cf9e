"""`anomaly-vae images fit` and `images grid`: the image models' jobs on scikit-learn's 8 x 8 digits."""

import json

import numpy as np
import pytest
from PIL import Image

from anomaly_vae import ImageVAEDetector
from anomaly_vae.image.pictures import upscale
from pipelines.cli import main
from pipelines.images import grid_picture, select_images
from tests.pipelines.conftest import TINY_IMAGE

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_images_fit_and_grid_commands(digits_npz, tmp_path):
    params = json.dumps(TINY_IMAGE)
    model = tmp_path / "model"
    assert (
        main(["images", "fit", "--data", str(digits_npz), "--label", "3", "--output", str(model), "--params", params])
        == 0
    )
    picture = tmp_path / "grid.png"
    grid = ["images", "grid", "--model", str(model), "--input", str(digits_npz), "--output", str(picture), "-n", "5"]
    assert main(grid) == 0
    assert np.asarray(Image.open(picture)).shape == (3 * 98 + 2, 5 * 98 + 2, 3)
    assert main([*grid, "--select", "first"]) == 0
    with pytest.raises(SystemExit):  # argparse refuses an unknown choice
        main([*grid, "--select", "worst"])
    assert main(["images", "fit", "--data", str(digits_npz), "--label", "42", "--output", str(tmp_path / "m2")]) == 2
    assert not (tmp_path / "m2").exists()


def test_most_anomalous_picks_the_highest_scores(digits_npz, tmp_path):
    with np.load(digits_npz) as archive:
        X, y = archive["X"], archive["y"]
    detector = ImageVAEDetector(random_state=0, **TINY_IMAGE).fit(X[y == 3][:150])
    images = X[:60]
    scores = detector.decision_function(images)
    top = select_images(detector, images, 4, "most-anomalous")
    assert set(top) == set(np.argsort(scores)[-4:]) and (np.diff(scores[top]) <= 0).all()
    bottom = select_images(detector, images, 4, "least-anomalous")
    assert set(bottom) == set(np.argsort(scores)[:4]) and (np.diff(scores[bottom]) >= 0).all()
    assert select_images(detector, images, 100, "first").tolist() == list(range(60))
    chosen = grid_picture(detector, images, tmp_path / "grid.png", n=4)  # default: the most anomalous
    assert chosen.tolist() == top.tolist()
    as_list = grid_picture(detector, list(images), tmp_path / "list.png", n=4)
    assert as_list.tolist() == top.tolist()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "grid.png")), np.asarray(Image.open(tmp_path / "list.png")))


def test_upscale_repeats_pixels_up_to_the_minimum_side():
    pictures = np.arange(2 * 8 * 6 * 3, dtype=np.float32).reshape(2, 8, 6, 3)
    large = upscale(pictures, 96)
    assert large.shape == (2, 8 * 16, 6 * 16, 3)  # the shorter side (6) sets the factor: 16
    assert (large[:, ::16, ::16] == pictures).all() and (large[:, 15::16, 15::16] == pictures).all()
    assert upscale(pictures, 6) is pictures
