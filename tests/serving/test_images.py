"""An image model behind the real service: scores, maps, MLflow's formats, and hostile images (each a 4xx
naming the item, the service serving on)."""

from __future__ import annotations

import base64
import io
import zlib

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from anomaly_vae import ImageVAEDetector
from anomaly_vae.image.pictures import encode_png
from serving.settings import Settings
from tests.serving.conftest import running

TINY = {"max_steps": 30, "eval_every": 15, "kl_warmup_steps": 10, "base_channels": 8, "n_importance_samples": 4}
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    return np.clip(load_digits().images * 16, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def image_model(digits, tmp_path_factory):
    detector = ImageVAEDetector(random_state=0, fpr=0.1, augment_shift=0, device="cpu", **TINY).fit(digits[:300])
    folder = tmp_path_factory.mktemp("image-model") / "model"
    detector.save(folder)
    return detector, folder


@pytest.fixture(scope="module")
def client(image_model):
    settings = Settings(model_uri=str(image_model[1]), max_records=50, max_body_bytes=2_000_000, drift_window=0)
    with running(settings) as (client, _):
        yield client


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_scores_maps_and_the_python_api_agree(client, image_model, digits):
    detector, _ = image_model
    images = list(digits[300:306])
    body = {"images": [{"data": b64(encode_png(i))} for i in images[:3]] + [{"array": i.tolist()} for i in images[3:]]}
    answer = client.post("/v1/score", json={**body, "maps": True})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    expected = detector.score_frame(images)
    for name in ("neg_log_likelihood_ratio", "neg_log_likelihood", "p_value", "reconstruction_nll"):
        assert [r[name] for r in results] == expected[name].tolist(), name  # bit for bit
    png = Image.open(io.BytesIO(base64.b64decode(results[0]["map_png"])))
    assert png.size == (8, 8) and png.mode == "RGB"
    assert np.asarray(results[0]["map"]).shape == (8, 8)
    assert np.allclose(results[0]["map"], detector.anomaly_maps(images[:1])[0], atol=1e-4)
    model = client.get("/v1/model").json()
    assert model["kind"] == "image" and model["image"]["height"] == 8 and model["columns"] == []
    spec = client.get("/openapi.json").json()
    score_body = spec["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "8 x 8 x 1" in score_body["properties"]["images"]["description"]


def test_invocations_take_mlflow_formats(client, image_model, digits):
    detector, _ = image_model
    files = [b64(encode_png(i)) for i in digits[300:303]]
    expected = detector.score_frame(list(digits[300:303]))["p_value"].tolist()
    for body in (
        {"dataframe_split": {"columns": ["image"], "data": [[f] for f in files]}},
        {"dataframe_records": [{"image": f} for f in files]},
        {"inputs": files, "params": {"fpr": 0.2}},
        {"instances": [i.tolist() for i in digits[300:303]]},
    ):
        answer = client.post("/invocations", json=body)
        assert answer.status_code == 200, (body.keys(), answer.text)
        assert [p["p_value"] for p in answer.json()["predictions"]] == expected
    assert answer.headers["anomaly-vae-fpr"] == "0.1"


def bomb() -> bytes:
    """A valid 20000 x 20000 grayscale PNG of zeros: a few hundred kB that would decode to 400 MB."""
    row = b"\x00" + bytes(20000)
    stream = zlib.compress(row * 20000, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = (20000).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


def hostile_bodies(digits):
    whole = encode_png(digits[0])
    rgb = encode_png(np.zeros((8, 8, 3), dtype=np.uint8))
    item = {"data": b64(whole)}
    yield "truncated", {"images": [item, {"data": b64(whole[: len(whole) // 2])}]}, ["body", "images", 1, "data"]
    yield "bomb", {"images": [{"data": b64(bomb())}]}, ["body", "images", 0, "data"]
    yield "wrong mode", {"images": [item, {"data": b64(rgb)}]}, ["body", "images", 1]
    yield "not an image", {"images": [{"data": b64(b"GIF? no: plain text")}]}, ["body", "images", 0, "data"]
    yield "not base64", {"images": [{"data": "%%%"}]}, ["body", "images", 0, "data"]
    yield "ragged array", {"images": [{"array": [[0, 1], [2]]}]}, ["body", "images", 0, "array"]
    yield "1-D array", {"images": [{"array": list(range(64))}]}, ["body", "images", 0, "array"]
    yield "out of range", {"images": [{"array": [[300] * 8] * 8}]}, ["body", "images", 0, "array"]
    yield "both", {"images": [{"data": b64(whole), "array": [[0]]}]}, ["body", "images", 0]
    yield "too many", {"images": [item] * 51}, ["body", "images"]


def test_hostile_images_are_4xx_naming_the_item_and_the_service_keeps_serving(client, digits):
    for name, body, loc in hostile_bodies(digits):
        answer = client.post("/v1/score", json=body)
        assert 400 <= answer.status_code < 500, (name, answer.status_code, answer.text)
        assert answer.json()["detail"][0]["loc"][: len(loc)] == loc, (name, answer.json())
    tiny = [{"array": [[(i * 7 + j) % 256 for j in range(8)] for _ in range(8)]} for i in range(50)]
    answer = client.post("/v1/score", json={"images": tiny})
    assert answer.status_code == 200 and len(answer.json()["results"]) == 50
    assert client.get("/healthz").status_code == 200
