"""Security: a pickle in a model folder is never unpickled, no request can choose the model, and no header a
client can send gets a 5xx."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from pydantic import SecretStr, ValidationError

from anomaly_vae import VAEDetector
from serving.model_store import load
from serving.settings import Settings
from tests.serving.conftest import running


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


def raw_request(port: int, head: bytes, body: bytes = b"") -> int:
    """Send one request as raw bytes (so that any header bytes go out unchanged); its status code."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def guarded(model_folder):
    with running(Settings(model_uri=str(model_folder), auth_token=SecretStr("s3cret-token-0123"))) as (client, app):
        yield client, app


HOSTILE_AUTHORIZATION = [
    b"Bearer s\xc3\xa9cret",  # UTF-8
    b"Bearer s\xe9cret",  # latin-1
    b"Bearer s3cret-token-0123\x80",
    b"\xff\xfe\xfd",
    b"Bearer \xe2\x80\x8bs3cret-token-0123",  # a zero-width space first
    b"Bearer",
    b"Bearer ",
    b"Basic czNjcmV0",
    b"s3cret-token-0123",
    b"Bearer  s3cret-token-0123",
    b"Bearer s3cret-token-0123 s3cret-token-0123",
    b"Bearer " + b"s" * 8000,
]


@pytest.mark.parametrize("value", HOSTILE_AUTHORIZATION)
def test_any_authorization_header_is_a_401_never_a_5xx(guarded, train_frame, value):
    client, _ = guarded
    port = int(client.base_url.port)  # type: ignore[arg-type]
    body = json.dumps({"records": json.loads(train_frame.head(1).to_json(orient="records"))}).encode()
    head = b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: " + value
    assert raw_request(port, head, body) == 401
    assert raw_request(port, b"GET /v1/model HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + value) == 401
    if value == value.strip():  # httpx sends the bytes, but no value with surrounding space
        response = client.post("/v1/score", content=body, headers={"authorization": value})
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_the_right_token_in_any_scheme_case_with_other_hostile_headers(guarded, train_frame):
    client, _ = guarded
    port = int(client.base_url.port)  # type: ignore[arg-type]
    body = json.dumps({"records": json.loads(train_frame.head(1).to_json(orient="records"))}).encode()
    for scheme in (b"Bearer", b"bearer", b"BEARER"):
        head = b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + scheme + b" s3cret-token-0123"
        assert raw_request(port, head + b"\r\nContent-Type: application/json\r\nX-Trace: \xff\xc3\xa9", body) == 200
    statuses = {
        header: raw_request(
            port,
            b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer s3cret-token-0123\r\n" + header,
            body,
        )
        for header in (
            b"Content-Type: application/json\xff",
            b"Content-Type: \xc3\xa9",
            b"Content-Type: text/csv; charset=\xff",
        )
    }
    assert set(statuses.values()) == {415}, statuses


def test_a_token_that_is_not_visible_ascii_is_refused_at_start_up(model_folder):
    for token in ("t\u00f6ken", "token with spaces", "", "tab\tbed"):
        with pytest.raises(ValidationError, match="visible ASCII"):
            Settings(model_uri=str(model_folder), auth_token=SecretStr(token))
    env = {**os.environ, "ANOMALY_VAE_AUTH_TOKEN": "s\u00e9cret-value"}
    command = [sys.executable, "-m", "serving", "--model", str(model_folder), "--port", "1"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "ANOMALY_VAE_AUTH_TOKEN" in result.stderr and "visible ASCII" in result.stderr
    assert "s\u00e9cret-value" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("replace-with-a-long-random-token", "placeholder"),  # what deploy/k8s once shipped
        ("CHANGEME-please-0123456789", "placeholder"),
        ("<your-token-here>-0123456789", "placeholder"),
        ("s3cret", "shorter than 16"),
        ("0123456789abcde", "shorter than 16"),
    ],
)
def test_a_placeholder_or_short_token_is_refused_at_start_up(model_folder, token, reason):
    with pytest.raises(ValidationError, match=reason):
        Settings(model_uri=str(model_folder), auth_token=SecretStr(token))
    Settings(model_uri=str(model_folder), auth_token=SecretStr("0123456789abcdef"))  # 16 characters: accepted


def test_the_service_stops_at_start_up_on_the_shipped_placeholder_token(model_folder):
    env = {**os.environ, "ANOMALY_VAE_AUTH_TOKEN": "replace-with-a-long-random-token"}
    command = [sys.executable, "-m", "serving", "--model", str(model_folder), "--port", "1"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "ANOMALY_VAE_AUTH_TOKEN" in result.stderr and "placeholder" in result.stderr
    assert "replace-with-a-long-random-token" not in result.stderr and "Traceback" not in result.stderr
