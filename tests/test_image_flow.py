"""The whole image path on real files: a PNG folder in the MVTec-AD layout -> `anomaly-vae train` -> the
registry alias -> the service (real HTTP: base64 PNGs in, scores and a map out, a corrupt image refused)
-> `anomaly-vae score` on a folder; every route gives the Python API's scores, bit for bit."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits

import anomaly_vae
from anomaly_vae.image.pictures import encode_png, write_png
from anomaly_vae.registry import resolve
from pipelines.cli import main
from pipelines.config import validate
from pipelines.train import RegistrationRefused, train_and_register
from serving.settings import Settings
from tests.serving.conftest import running

SETTINGS = [
    *("--set", "detector.max_steps=40", "--set", "detector.eval_every=20", "--set", "detector.kl_warmup_steps=10"),
    *("--set", "detector.base_channels=8", "--set", "detector.n_importance_samples=4", "--set", "detector.fpr=0.1"),
]


@pytest.fixture
def tree(tmp_path):
    """Zeros are the good parts; test/ mixes held-out zeros and other digits ("defects"), with masks for
    the defects (the whole stroke)."""
    data = load_digits()
    images = np.clip(data.images * 16, 0, 255).astype(np.uint8)
    zeros, others = np.flatnonzero(data.target == 0), np.flatnonzero(data.target != 0)[:20]
    root = tmp_path / "parts"
    for i in zeros[:150]:
        write_png(images[i], root / "train" / "good" / f"{i}.png")
    for i in zeros[150:170]:
        write_png(images[i], root / "test" / "good" / f"{i}.png")
    for i in others:
        write_png(images[i], root / "test" / "other_digit" / f"{i}.png")
        write_png(((images[i] > 64) * 255).astype(np.uint8), root / "ground_truth" / "other_digit" / f"{i}_mask.png")
    return root


def test_mvtec_folder_to_registry_to_service_and_batch(tree, tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.chdir(tmp_path)  # the embedded MLflow store
    assert main(["train", "--data", str(tree), "--model-name", "parts", "--alias", "champion", *SETTINGS]) == 0
    uri = "models:/parts@champion"
    detector = anomaly_vae.load(resolve(uri).folder)
    assert detector.kind == "image"
    folder = tree / "test" / "other_digit"
    files = sorted(folder.iterdir())
    images = [np.asarray(Image.open(f)) for f in files]
    expected = detector.score_frame(images)

    with running(Settings(model_uri=uri, drift_window=0)) as (client, _):
        body = {"images": [{"data": base64.b64encode(f.read_bytes()).decode()} for f in files], "maps": True}
        answer = client.post("/v1/score", json=body)
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [r["neg_log_likelihood_ratio"] for r in results] == expected["neg_log_likelihood_ratio"].tolist()
        assert [r["p_value"] for r in results] == expected["p_value"].tolist()
        assert all(r["map_png"] and len(r["map"]) == 8 for r in results)
        corrupt = encode_png(images[0])[:40]
        refused = client.post(
            "/v1/score", json={"images": [body["images"][0], {"data": base64.b64encode(corrupt).decode()}]}
        )
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "images", 1, "data"]
        assert client.get("/v1/model").json()["version"] == "1"

    out = tmp_path / "scores.csv"
    assert main(["score", "--model", uri, "--input", str(folder), "--output", str(out)]) == 0
    batch = pd.read_csv(out).set_index("name").loc[[f.name for f in files]]
    assert np.array_equal(batch["neg_log_likelihood_ratio"].to_numpy(), expected["neg_log_likelihood_ratio"].to_numpy())

    import mlflow

    run = mlflow.get_run(mlflow.MlflowClient().get_model_version("parts", "1").run_id)
    assert 0.0 <= run.data.metrics["test_auroc"] <= 1.0 and "test_pixel_auroc" in run.data.metrics
    assert run.data.tags["kind"] == "image" and run.data.params["test_rows"] == "40"
    pyfunc = mlflow.pyfunc.load_model(uri)
    frame = pd.DataFrame({"image": [base64.b64encode(f.read_bytes()).decode() for f in files]})
    assert pyfunc.predict(frame)["p_value"].tolist() == expected["p_value"].tolist()


def test_an_image_model_that_cannot_resolve_its_fpr_is_refused_before_training(tree, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = validate({"detector": {"fpr": 0.001, "max_steps": 5}})
    with pytest.raises(RegistrationRefused, match="calibration failed, before training"):
        train_and_register(tree, "parts", settings, progress=False)
    assert not (tmp_path / "mlartifacts").exists() or not list((tmp_path / "mlartifacts").rglob("detector"))


def test_image_settings_are_checked_against_the_image_detector(tree):
    with pytest.raises(ValueError, match=r"unknown detector setting\(s\): \['hidden'\].*ImageVAEDetector"):
        validate({"detector": {"hidden": [8]}, "data": {"kind": "image"}})
    with pytest.raises(ValueError, match=r"drop_columns.*not to an image data set"):
        train_and_register(tree, "parts", validate({"data": {"drop_columns": ["a"]}}), progress=False)
