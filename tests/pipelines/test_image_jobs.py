"""`anomaly-vae score`, `sample` and `drift` for image models, on scikit-learn's 8 x 8 digits as PNG files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from anomaly_vae import ImageVAEDetector
from anomaly_vae.image.pictures import encode_png, write_png
from pipelines.batch import TooManyRejects, score_file
from pipelines.batch_images import map_file_name
from pipelines.cli import main
from pipelines.image_inputs import ImageSource
from tests.pipelines.conftest import TINY_IMAGE

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FPR = 0.2  # flags some images of a tiny model, so that maps are drawn
N_GOOD = 30


@pytest.fixture(scope="module")
def digits():
    return np.clip(load_digits().images * 16, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def fitted(digits):
    params = {**TINY_IMAGE, "max_steps": 30, "eval_every": 15, "kl_warmup_steps": 10}
    return ImageVAEDetector(random_state=0, fpr=0.05, device="cpu", **params).fit(digits[:300])


@pytest.fixture(scope="module")
def model_dir(fitted, tmp_path_factory):
    folder = tmp_path_factory.mktemp("image-model") / "model"
    fitted.save(folder)
    return str(folder)


@pytest.fixture(scope="module")
def good(digits):
    """The images the folder holds that the model can score, in the folder's (sorted) order."""
    return [digits[300 + i] for i in range(N_GOOD)]


@pytest.fixture(scope="module")
def folder(good, tmp_path_factory):
    """N_GOOD digit PNGs (two in a sub-folder) and four files no model can score: a truncated PNG, a text
    file, an RGB PNG (the model is grayscale) and a .npy array that is no image."""
    root = tmp_path_factory.mktemp("images") / "incoming"
    for i, image in enumerate(good):
        write_png(image, root / ("late" if i >= N_GOOD - 2 else "") / f"d{i:03d}.png")
    whole = encode_png(good[0])
    (root / "broken.png").write_bytes(whole[: len(whole) // 2])
    (root / "notes.txt").write_text("not an image\n")
    write_png(np.zeros((8, 8, 3), dtype=np.uint8), root / "colour.png")
    np.save(root / "line.npy", np.zeros(64, dtype=np.uint8))
    (root / ".hidden.png").write_bytes(b"left out: hidden")
    return root


def names_in_order():
    return [f"d{i:03d}.png" for i in range(N_GOOD - 2)] + [f"late/d{i:03d}.png" for i in (N_GOOD - 2, N_GOOD - 1)]


def test_a_folder_is_scored_image_by_image_with_rejects_and_maps(model_dir, fitted, folder, good, tmp_path):
    out, maps = tmp_path / "scores.parquet", tmp_path / "maps"
    manifest = score_file(
        model_dir, folder, out, fpr=FPR, chunk_rows=7, progress=False, maps=maps, max_reject_fraction=0.2
    )
    assert (manifest["rows_in"], manifest["rows_scored"], manifest["rows_rejected"]) == (N_GOOD + 4, N_GOOD, 4)
    assert manifest["kind"] == "image" and manifest["fpr_resolvable"] and manifest["smallest_fpr"] < FPR
    assert json.loads(out.with_name("scores.manifest.json").read_text()) == manifest
    rejects = pd.read_csv(out.with_name("scores.rejects.csv")).set_index("name")["reason"]
    assert sorted(rejects.index) == ["broken.png", "colour.png", "line.npy", "notes.txt"]
    assert "truncated or corrupt" in rejects["broken.png"]
    assert "not an image file" in rejects["notes.txt"]
    assert "1-channel (grayscale)" in rejects["colour.png"]
    assert "(H, W) or (H, W, C)" in rejects["line.npy"]

    scores = pd.read_parquet(out)
    assert scores["name"].tolist() == names_in_order()
    expected = fitted.score_frame(good, fpr=FPR)
    for column in expected.columns:  # the Python API's scores, bit for bit, whatever the chunks
        np.testing.assert_array_equal(scores[column].to_numpy(), expected[column].to_numpy(), err_msg=column)
    flagged = scores.loc[scores["is_outlier"], "name"]
    assert manifest["outliers"] == manifest["maps_written"] == len(flagged) > 0
    assert sorted(p.name for p in maps.iterdir()) == sorted(map_file_name(name) for name in flagged)
    picture = np.asarray(Image.open(maps / map_file_name(flagged.iloc[0])))
    assert picture.shape == (96, 96, 3)  # 8 x 8 enlarged 12 times, in colour


def test_tables_lists_and_stacks_score_as_the_folder_does(model_dir, folder, good, tmp_path):
    reference = tmp_path / "folder.csv"
    score_file(model_dir, folder, reference, fpr=FPR, progress=False, max_reject_fraction=0.2)
    expected = pd.read_csv(reference).set_index("name").drop(columns="row")
    names = names_in_order()
    table = pd.DataFrame({"id": [f"img-{i}" for i in range(N_GOOD)], "png": [encode_png(x) for x in good]})
    table.loc[len(table)] = ["img-missing", None]
    table.to_parquet(tmp_path / "images.parquet")
    (tmp_path / "paths.csv").write_text("path\n" + "\n".join(str(folder / n) for n in names) + "\n")
    listed = folder.parent / "list.txt"  # paths relative to the list's folder
    listed.write_text("# one path a line\n\n" + "\n".join(f"{folder.name}/{n}" for n in names) + "\n")
    np.save(tmp_path / "stack.npy", np.stack(good))
    runs = {
        "images.parquet": {"image_column": "png", "id_columns": ["id"]},
        "paths.csv": {"image_column": "path"},
        "list.txt": {},
        "stack.npy": {},
    }
    for name, options in runs.items():
        source = listed if name == "list.txt" else tmp_path / name
        out = tmp_path / f"{name}.scores.csv"
        manifest = score_file(model_dir, source, out, fpr=FPR, progress=False, chunk_rows=8, **options)
        scores = pd.read_csv(out)
        assert manifest["rows_scored"] == N_GOOD, name
        np.testing.assert_array_equal(scores["neg_log_likelihood_ratio"], expected["neg_log_likelihood_ratio"])
        np.testing.assert_array_equal(scores["p_value"], expected["p_value"])
    assert pd.read_csv(tmp_path / "images.parquet.scores.csv")["id"].tolist()[:2] == ["img-0", "img-1"]
    rejected = pd.read_csv(tmp_path / "images.parquet.scores.rejects.csv")
    assert rejected[["row", "name", "id"]].values.tolist() == [[N_GOOD, "img-missing", "img-missing"]]
    assert rejected["reason"][0] == "no image (missing value)"


def test_the_score_command_for_image_models(model_dir, folder, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    args = ["score", "--model", model_dir, "--input", str(folder), "--output", str(out), "--fpr", str(FPR)]
    assert main([*args, "--max-reject-fraction", "0.2", "--maps", str(tmp_path / "maps")]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["rows_in"] == manifest["rows_scored"] + manifest["rows_rejected"] == N_GOOD + 4
    assert manifest["maps"] == str(tmp_path / "maps")
    assert main(args) == 1  # 4 of 34 rejected: above the default 5%, every file written all the same
    assert json.loads(out.with_name("scores.manifest.json").read_text())["status"] == "failed"
    assert main([*args, "--contributions", "3"]) == 2  # tabular only
    assert main([*args, "--image-column", "png"]) == 2  # a folder has no columns
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.md").write_text("mine")
    assert main([*args, "--max-reject-fraction", "0.2", "--maps", str(tmp_path / "keep")]) == 2  # never replaced
    assert (tmp_path / "keep" / "notes.md").read_text() == "mine"


def test_too_many_rejects_still_writes_everything(model_dir, folder, tmp_path):
    out = tmp_path / "scores.parquet"
    with pytest.raises(TooManyRejects, match="4 of 34 rows rejected"):
        score_file(model_dir, folder, out, fpr=FPR, progress=False)
    assert len(pd.read_parquet(out)) == N_GOOD and len(pd.read_csv(out.with_name("scores.rejects.csv"))) == 4


def test_map_file_names_are_flat_and_safe():
    assert map_file_name("late/d001.png") == "late__d001.png"
    assert map_file_name("photo 1.jpg") == "photo_1.jpg.png"
    escaping = map_file_name("../../etc/passwd")
    assert "/" not in escaping and not escaping.startswith(".") and escaping.endswith("etc__passwd.png")


def test_the_sample_command_writes_a_grid_and_the_images(model_dir, fitted, tmp_path):
    picture = tmp_path / "samples.png"
    assert main(["sample", "--model", model_dir, "-n", "10", "--output", str(picture), "--seed", "3"]) == 0
    assert np.asarray(Image.open(picture)).shape == (3 * 98 + 2, 4 * 98 + 2, 3)  # 4 columns, 3 rows of 96 px tiles
    arrays = tmp_path / "samples.npz"
    assert main(["sample", "--model", model_dir, "-n", "10", "--output", str(arrays), "--seed", "3"]) == 0
    with np.load(arrays) as archive:
        np.testing.assert_array_equal(archive["X"], fitted.sample(10, random_state=3))
    assert np.array_equal(np.asarray(Image.open(picture)), np.asarray(Image.open(tmp_path / "samples.png")))
    assert main(["sample", "--model", model_dir, "-n", "4", "--output", str(tmp_path / "s.csv")]) == 2
    assert main(["sample", "--model", model_dir, "-n", "4", "--output", str(picture), "--compare", "x.csv"]) == 2


def test_the_drift_command_on_images(model_dir, digits, tmp_path):
    training = tmp_path / "training"
    for i, image in enumerate(digits[:300]):
        write_png(image, training / f"t{i:03d}.png")
    out, report = tmp_path / "drift.json", tmp_path / "drift.html"
    args = ["drift", "--model", model_dir, "--output", str(out)]
    assert main([*args, "--data", str(training), "--report", str(report)]) == 0
    summary = json.loads(out.read_text())
    assert not summary["drifted"] and summary["alarms"] == [] and summary["n_records"] == 300
    assert [f["name"] for f in summary["features"]] == [
        *("mean_intensity", "contrast", "sharpness", "height", "width", "aspect_ratio")
    ]
    html = report.read_text()
    assert "no drift at the configured thresholds" in html and "300 training images" in html
    (training / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    np.save(tmp_path / "inverted.npy", 255 - digits[:300])  # the photos' lighting changed
    assert main([*args, "--data", str(tmp_path / "inverted.npy")]) == 0
    drifted = json.loads(out.read_text())
    assert drifted["drifted"] and "feature:mean_intensity" in drifted["alarms"]
    assert main([*args, "--data", str(training), "--max-rows", "100"]) == 0
    sampled = json.loads(out.read_text())
    assert sampled["n_records"] + sampled["rows_rejected"] == 100  # a seeded subset of the 301 files
    assert main([*args, "--data", str(training)]) == 0
    assert json.loads(out.read_text())["rejected_examples"][0]["name"] == "broken.png"


def test_an_mvtec_tree_is_listed_without_its_masks(tmp_path):
    for name in ("train/good/000.png", "test/good/000.png", "test/crack/000.png", "ground_truth/crack/000_mask.png"):
        write_png(np.zeros((8, 8), dtype=np.uint8), tmp_path / name)
    source = ImageSource(tmp_path)
    assert [item.name for items in source.chunks(2) for item in items] == [
        "test/crack/000.png",
        "test/good/000.png",
        "train/good/000.png",
    ]
    with pytest.raises(ValueError, match="--image-column"):
        ImageSource(tmp_path, image_column="png")
