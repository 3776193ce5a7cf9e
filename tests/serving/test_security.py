"""Security: a pickle in a model folder is never unpickled, and no request can choose the model."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import pytest
import torch

from anomaly_vae import VAEDetector
from serving.model_store import load


class Payload:
    """Unpickling this creates the folder ``marker``: proof that loading ran code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.mark.parametrize("layout", ["pickle_named_safetensors", "weights_pt_only", "weights_pt_beside"])
def test_a_pickle_in_a_model_folder_is_refused_without_running_it(model_folder, tmp_path, layout):
    folder, marker = tmp_path / "model", tmp_path / "pwned"
    shutil.copytree(model_folder, folder)
    evil = pickle.dumps(Payload(str(marker)))
    assert not marker.exists()
    if layout == "pickle_named_safetensors":  # the weights file replaced by a pickle
        (folder / "weights.safetensors").write_bytes(evil)
    elif layout == "weights_pt_only":  # a torch checkpoint (a pickle) instead of safetensors
        (folder / "weights.safetensors").unlink()
        torch.save({"model": Payload(str(marker))}, folder / "weights.pt")
    else:  # a pickle next to valid files: ignored, never opened
        (folder / "weights.pt").write_bytes(evil)
    if layout == "weights_pt_beside":
        assert load(str(folder)).detector.n_features_in_ > 0
    else:
        with pytest.raises(Exception, match=r"safetensors|header|weights"):
            VAEDetector.load(folder)
        with pytest.raises(Exception, match=r"safetensors|header|weights|model folder"):
            load(str(folder))
    assert not marker.exists()  # no code ran


def test_no_request_can_choose_the_model(server, train_frame, tmp_path):
    client, app = server
    body = {"records": json.loads(train_frame.head(1).to_json(orient="records"))}
    served = app.state.store.current
    other = str(tmp_path / "elsewhere")
    for field in ("model", "model_uri", "uri"):
        response = client.post("/v1/score", json={**body, field: other})
        assert response.status_code == 422 and field in response.text  # unknown field, refused
        invocation = client.post("/invocations", json={"dataframe_records": body["records"], field: other})
        assert invocation.status_code == 422
    # query strings and headers are ignored: the configured model answers
    response = client.post(
        "/v1/score", params={"model_uri": other, "model": other}, headers={"x-model-uri": other}, json=body
    )
    assert response.status_code == 200 and response.json()["model"] == {"name": "model", "version": "local"}
    params = client.post("/invocations", json={"dataframe_records": body["records"], "params": {"model_uri": other}})
    assert params.status_code == 200
    assert app.state.store.current is served
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            names = [p["name"] for p in operation.get("parameters", [])]
            assert not [n for n in names if "model" in n.lower() or "uri" in n.lower()], (path, names)
