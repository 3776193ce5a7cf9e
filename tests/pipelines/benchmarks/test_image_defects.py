"""The planted-defects benchmark: the defects, the metrics, and its code path on enlarged 8 x 8 digits."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from pipelines.benchmarks.image_defects import (
    DEFECTS,
    METHODS,
    MIN_CHANGED,
    defect_rng,
    hit_rate,
    pixel_auroc,
    plant,
    run_digit,
    run_image_defects,
)
from pipelines.cli import build_parser

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = {
    "fpr": 0.2,
    "max_steps": 30,
    "eval_every": 15,
    "kl_warmup_steps": 15,
    "n_importance_samples": 2,
    "base_channels": 4,
}


@pytest.fixture(scope="module")
def digits_24(tmp_path_factory):
    """60 images each of the digits 0 and 7 of scikit-learn's 8 x 8 digits, enlarged to 24 x 24 (uint8)."""
    data = load_digits()
    keep = np.r_[np.flatnonzero(data.target == 0)[:60], np.flatnonzero(data.target == 7)[:60]]
    images = np.clip(np.kron(data.images[keep], np.ones((3, 3))) * 16, 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("digits24") / "digits24.npz"
    np.savez(path, X=images, y=data.target[keep])
    return path


@pytest.mark.parametrize("defect", DEFECTS)
def test_planted_masks_are_the_changed_pixels(digits_24, defect):
    with np.load(digits_24) as archive:
        images = archive["X"][:20]
    new, masks, kept = plant(images, defect, defect_rng(0, 0, defect))
    assert len(kept) == 20 and new.dtype == np.uint8 and new.shape == masks.shape == images.shape
    assert (masks.sum(axis=(1, 2)) >= MIN_CHANGED).all()
    moved = np.abs(new.astype(int) - images.astype(int)) > 0.1 * 255
    np.testing.assert_array_equal(masks, moved)
    value = 255 if defect in ("bright patch", "scratch") else 0
    assert (new[masks] == value).all()
    if defect in ("dark patch", "missing stroke"):  # centred on a stroke pixel
        assert ((images > 128) & masks).any(axis=(1, 2)).all()
    if defect == "bright patch":  # within 3 px of the digit's bounding box
        for image, mask in zip(images, masks, strict=True):
            rows, cols = np.nonzero(image > 128)
            near = mask[max(rows.min() - 3, 0) : rows.max() + 4, max(cols.min() - 3, 0) : cols.max() + 4]
            assert near.any() and (image[mask] <= 255 * 0.9).all()
    again = plant(images, defect, defect_rng(0, 0, defect))
    np.testing.assert_array_equal(new, again[0])
    other = plant(images, defect, defect_rng(1, 0, defect))
    assert not np.array_equal(new, other[0])


def test_metrics():
    rng = np.random.default_rng(0)
    maps = rng.random((5, 8, 8))
    assert hit_rate(maps, np.ones((5, 8, 8), dtype=bool)) == 1.0  # a defect the size of the image
    masks = np.zeros((5, 8, 8), dtype=bool)
    masks[:, 0, 0] = True
    maps[:, 0, 0] = 2.0
    assert hit_rate(maps, masks) == 1.0 and pixel_auroc(maps, masks) == 1.0
    maps[:, 0, 0], maps[:, 7, 7] = -1.0, 2.0
    assert hit_rate(maps, masks) == 0.0 and pixel_auroc(maps, masks) == 0.0
    maps[:2, 1, 1] = 3.0  # next to the mask: a hit (the mask is dilated by 1 px)
    assert hit_rate(maps, masks) == pytest.approx(0.4)


def test_run_digit_is_deterministic(digits_24):
    first, again = (run_digit((digits_24, 7, 0, TINY, None, 1)) for _ in range(2))
    assert [(r.defect, r.method) for r in first] == [(d, m) for m in METHODS for d in DEFECTS]
    assert all(r.images == 18 for r in first)  # digit 7's test images, every one with each defect
    measured = [(r.pixel_auroc, r.hit_rate, r.image_auroc) for r in first]
    assert measured == [(r.pixel_auroc, r.hit_rate, r.image_auroc) for r in again]
    assert all(0.0 <= value <= 1.0 for values in measured for value in values)


def test_benchmark_writes_table_csv_and_maps(digits_24, tmp_path):
    table = run_image_defects(digits_24, tmp_path, digits=[0], seeds=[0], jobs=1, params=TINY, stem="d")
    results = pd.read_csv(tmp_path / "d.csv")
    assert len(results) == len(DEFECTS) * len(METHODS) and set(results["method"]) == set(METHODS)
    assert table.startswith("Planted defects in held-out MNIST images (digits24.npz), digits [0], seeds [0]")
    rows = [line.split(" | ")[:2] for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    expected = [(d, m) for d in (*DEFECTS, "all defects") for m in METHODS]
    assert [(d.removeprefix("| "), m) for d, m in rows[1:]] == expected
    assert (tmp_path / "d.md").read_text() == table + "\n"
    # 8 images (two per defect type) of 24 x 24 drawn as 96 x 96 tiles with 2 px gaps; rows: image, mask, 2 maps
    assert np.asarray(Image.open(tmp_path / "d_maps.png")).shape == (4 * 98 + 2, 8 * 98 + 2, 3)


def test_command_line():
    args = build_parser().parse_args(["benchmark", "image-defects", "--data", "m.npz", "--digits", "8"])
    assert (args.digits, args.seeds, args.jobs, args.threads, args.stem) == ([8], [0, 1, 2], 2, 1, "image_defects")
    assert args.handler.__name__ == "handle_image_defects"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["benchmark", "image-defects"])  # --data is required
