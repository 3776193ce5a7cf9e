"""Every endpoint and each class of bad input, over real HTTP against the real app."""

from __future__ import annotations

import json
import re

import httpx
import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr

from serving.settings import Settings
from tests.serving.conftest import running

MARKER = "zq-secret-payload-7731"


def records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def test_health_readiness_and_model_description(server, fitted):
    client, _ = server
    assert client.get("/healthz").json() == {"status": "alive"}
    assert client.get("/readyz").json()["status"] == "ready"
    description = client.get("/v1/model").json()
    assert description["version"] == "local" and description["default_score"] == "neg_log_likelihood"
    assert [c["name"] for c in description["columns"]] == list(fitted.feature_names_in_)
    assert description["thresholds"]["neg_elbo"] == pytest.approx(fitted.thresholds()["neg_elbo"])
    assert description["smallest_fpr"] == fitted.calibration_.smallest_fpr
    assert description["fpr"] == 0.01 and description["fpr_resolvable"] is True
    score_path = client.get("/openapi.json").json()["paths"]["/v1/score"]["post"]
    assert "records" in score_path["requestBody"]["content"]["application/json"]["schema"]["properties"]


def test_score_matches_the_library(server, fitted, train_frame):
    client, _ = server
    rows = train_frame.head(7)
    response = client.post("/v1/score", json={"records": records(rows), "contributions": True})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"name": "model", "version": "local"}
    got = pd.DataFrame(body["results"])
    expected = fitted.score_frame(rows, contributions=True).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=False, rtol=1e-6)


def test_fpr_per_request_and_missing_values_as_null(server, train_frame):
    client, _ = server
    rows = records(train_frame.head(50))
    rows[0]["amount"] = None
    rows[1]["channel"] = None
    rows[2]["tier"] = rows[2]["tier"].upper()  # "MID" is not "mid"
    loose = client.post("/v1/score", json={"records": rows, "fpr": 0.3}).json()["results"]
    strict = client.post("/v1/score", json={"records": rows, "fpr": 0.001}).json()["results"]
    assert sum(r["is_outlier"] for r in loose) > sum(r["is_outlier"] for r in strict)
    assert all(np.isfinite(r["neg_log_likelihood"]) for r in loose)
    # "amount" never had a missing value in training, "channel" had: only the first null is unseen
    assert [(r["missing_unseen"], r["unknown_categories"]) for r in loose[:4]] == [(1, 0), (0, 0), (0, 1), (0, 0)]


def test_each_answer_says_whether_the_calibration_resolves_its_fpr(server, fitted, train_frame):
    """Below the smallest fpr the calibration resolves nothing can be flagged: the answer says so instead
    of answering "no outliers" silently (the batch job's manifest says it too)."""
    client, _ = server
    smallest = fitted.calibration_.smallest_fpr
    rows = records(train_frame.head(5))
    rows[0] = {**rows[0], "amount": 1e6}  # an outlier at any resolvable rate
    default = client.post("/v1/score", json={"records": rows}).json()
    assert (default["fpr"], default["fpr_resolvable"]) == (0.01, True) and default["results"][0]["is_outlier"]
    at_smallest = client.post("/v1/score", json={"records": rows, "fpr": smallest}).json()
    assert (at_smallest["fpr"], at_smallest["fpr_resolvable"]) == (smallest, True)
    assert at_smallest["results"][0]["is_outlier"]
    below = client.post("/v1/score", json={"records": rows, "fpr": smallest / 2}).json()
    assert (below["fpr"], below["fpr_resolvable"]) == (smallest / 2, False)
    assert not any(r["is_outlier"] for r in below["results"])
    # MLflow's protocol has no field for it: headers say the same
    invocation = client.post("/invocations", json={"dataframe_records": rows, "params": {"fpr": smallest / 2}})
    assert invocation.status_code == 200
    assert invocation.headers["anomaly-vae-fpr-resolvable"] == "false"
    assert float(invocation.headers["anomaly-vae-fpr"]) == smallest / 2
    default_invocation = client.post("/invocations", json={"dataframe_records": rows})
    assert default_invocation.headers["anomaly-vae-fpr-resolvable"] == "true"
    assert float(default_invocation.headers["anomaly-vae-fpr"]) == 0.01


def test_invocations_speaks_mlflows_protocol(server, train_frame):
    client, _ = server
    rows = train_frame.head(4)
    split = json.loads(rows.to_json(orient="split", index=False))
    by_split = client.post("/invocations", json={"dataframe_split": split}).json()["predictions"]
    by_records = client.post("/invocations", json={"dataframe_records": records(rows)}).json()["predictions"]
    native = client.post("/v1/score", json={"records": records(rows)}).json()["results"]
    assert by_split == by_records == native
    both = {"dataframe_records": records(rows), "dataframe_split": split}
    assert client.post("/invocations", json=both).status_code == 422


def bad_cases(frame: pd.DataFrame) -> list[tuple[str, bytes, int, str]]:
    good = records(frame.head(2))

    def body(obj: object) -> bytes:
        return json.dumps(obj).encode()

    text = body({"records": good})
    return [
        ("NaN token", re.sub(rb'"duration":[^,]+', b'"duration":NaN', text, count=1), 422, "NaN"),
        ("Infinity token", re.sub(rb'"load":[^,]+', b'"load":Infinity', text, count=1), 422, "Infinity"),
        ("-Infinity token", re.sub(rb'"load":[^,]+', b'"load":-Infinity', text, count=1), 422, "Infinity"),
        ("1e309", re.sub(rb'"load":[^,]+', b'"load":1e309', text, count=1), 422, "out of range"),
        ("integer beyond float range", re.sub(rb'"load":[^,]+', b'"load":1' + b"0" * 400, text, count=1), 422, "range"),
        (  # 1 past the published maximum 1.7976931348623157e+308, though it would round to a finite float
            "integer just past the schema's bound",
            re.sub(rb'"load":[^,]+', b'"load":-17976931348623157' + b"0" * 291 + b"1", text, count=1),
            422,
            "out of range",
        ),
        (  # the same as a decimal fraction, longer than Decimal's default precision of 28 digits
            "number just past the schema's bound",
            re.sub(rb'"load":[^,]+', b'"load":1.7976931348623157' + b"0" * 30 + b"1e308", text, count=1),
            422,
            "out of range",
        ),
        ("string in a number field", body({"records": [{**good[0], "amount": MARKER}]}), 422, "column 'amount'"),
        ("missing column", body({"records": [{k: v for k, v in good[0].items() if k != "tier"}]}), 422, "tier"),
        ("extra column", body({"records": [{**good[0], MARKER[:8]: 1}]}), 422, "unknown column"),
        ("empty batch", body({"records": []}), 422, "records"),
        ("too many records", body({"records": good * 60}), 413, "at most 100"),
        ("100k-record batch", body({"records": [{}] * 100_000}), 413, "larger than"),
        ("60k records under the size limit", b'{"records": [' + b",".join([b"{}"] * 60_000) + b"]}", 413, "at most"),
        ("unknown field", body({"records": good, "colour": MARKER}), 422, "colour"),
        ("fpr out of range", body({"records": good, "fpr": 1.5}), 422, "fpr"),
        ("records not a list", body({"records": MARKER}), 422, "records"),
        ("nested value", body({"records": [{**good[0], "amount": {"a": [MARKER]}}]}), 422, "amount"),
        ("deeply nested", b'{"records": ' + b"[" * 50000 + b"]" * 50000 + b"}", 400, "nested"),
        ("invalid JSON", b'{"records": [' + MARKER.encode(), 400, "invalid JSON"),
        ("invalid UTF-8", b'{"records": "\xff\xfe"}', 400, "UTF-8"),
        ("NUL bytes", b'{"records": [\x00]}', 400, "invalid JSON"),
        ("NUL byte in a string", text[:-1] + b', "fpr": "\x00' + MARKER.encode() + b'"}', 400, "JSON"),
        ("escaped NUL as a number", body({"records": [{**good[0], "amount": "\x00" + MARKER}]}), 422, "amount"),
        ("top-level array", body([good]), 422, "body"),
        ("empty body", b"", 400, "invalid JSON"),
        ("body too large", b'{"records": [' + b" " * 300_000 + b"]}", 413, "larger than"),
    ]


CORPUS_SIZE = 27  # the cases of bad_cases; checked below, so that an added case is also run


def test_every_case_of_the_corpus_is_run(train_frame):
    assert len(bad_cases(train_frame)) == CORPUS_SIZE


@pytest.mark.parametrize("endpoint", ["/v1/score", "/invocations"])
@pytest.mark.parametrize("case", range(CORPUS_SIZE))
def test_bad_input_is_a_4xx_naming_the_field_without_echo(server, train_frame, case, endpoint):
    client, _ = server
    name, payload, status, fragment = bad_cases(train_frame)[case]
    if endpoint == "/invocations":  # the same body in MLflow's protocol (its fpr goes under params)
        payload = payload.replace(b'{"records":', b'{"dataframe_records":', 1).replace(b'"fpr"', b'"params": {}, "fpr"')
    response = client.post(endpoint, content=payload, headers={"content-type": "application/json"})
    assert response.status_code == status, name
    detail = response.json()["detail"]
    assert fragment in json.dumps(detail), (name, detail)
    assert MARKER not in response.text and "Traceback" not in response.text
    assert set(detail[0]) == {"loc", "msg", "type"}


def test_non_finite_and_out_of_range_numbers_are_refused_at_their_field_path(server, train_frame):
    client, _ = server
    rows = records(train_frame.head(5))
    names = list(train_frame.columns)
    for token, value in (("NaN", float("nan")), ("Infinity", float("inf")), ("-Infinity", float("-inf"))):
        bad = [dict(row) for row in rows]
        bad[3]["duration"] = value  # json.dumps writes the token
        split = {"columns": names, "data": [[row[name] for name in names] for row in bad]}
        cases = [
            ("/v1/score", {"records": bad}, ["body", "records", 3, "duration"]),
            ("/v1/score", {"records": rows, "fpr": value}, ["body", "fpr"]),
            ("/invocations", {"dataframe_records": bad}, ["body", "dataframe_records", 3, "duration"]),
            (
                "/invocations",
                {"dataframe_split": split},
                ["body", "dataframe_split", "data", 3, names.index("duration")],
            ),
            ("/invocations", {"inputs": {"duration": [0.0, 0.0, value]}}, ["body", "inputs", "duration", 2]),
        ]
        for endpoint, body, loc in cases:
            response = client.post(endpoint, content=json.dumps(body), headers={"content-type": "application/json"})
            assert response.status_code == 422, (token, endpoint, response.text)
            assert response.json()["detail"] == [
                {
                    "loc": loc,
                    "msg": f"{token} is not a JSON number; send null for a missing value",
                    "type": "non_finite",
                }
            ]
    too_large = json.dumps({"records": [*rows[:1], {**rows[1], "load": "BIG"}]}).replace('"BIG"', "1e309")
    response = client.post("/v1/score", content=too_large, headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "records", 1, "load"]


def test_a_50_mb_body_is_refused_before_it_is_read(server):
    client, _ = server
    big = b'{"records": [' + b" " * 50_000_000 + b"]}"
    declared = client.post("/v1/score", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "larger than" in declared.text

    def chunks():  # no content-length: the limit is enforced while reading the stream
        yield b'{"records": ['
        for _ in range(50):
            yield b" " * 1_000_000
        yield b"]}"

    try:
        streamed = client.post("/v1/score", content=chunks(), headers={"content-type": "application/json"})
    except httpx.WriteError:  # the server answered 413 and closed before the client finished sending
        return
    assert streamed.status_code == 413 and "larger than" in streamed.text


def test_metrics_count_what_was_sent(model_folder, train_frame):
    with running(Settings(model_uri=str(model_folder))) as (client, _):
        for n in (3, 5):
            client.post("/v1/score", json={"records": records(train_frame.head(n))})
        client.post("/v1/score", json={"records": []})
        text = client.get("/metrics").text
        assert "anomaly_vae_missing_unseen_total 0.0" in text and "anomaly_vae_unknown_categories_total 0.0" in text
        rows = records(train_frame.head(4))
        rows[0]["amount"] = None  # never missing in training: unseen
        rows[1]["channel"] = None  # missing in training: not counted
        rows[2]["tier"] = rows[2]["tier"].upper()  # "MID" is not "mid": unknown
        rows[3].update(amount=None, tier="platinum")  # one of each in one record
        assert client.post("/v1/score", json={"records": rows}).status_code == 200
        assert client.post("/invocations", json={"dataframe_records": rows[:1]}).status_code == 200
        text = client.get("/metrics").text
    assert "anomaly_vae_records_scored_total 13.0" in text
    assert "anomaly_vae_missing_unseen_total 3.0" in text
    assert "anomaly_vae_unknown_categories_total 2.0" in text
    assert 'anomaly_vae_requests_total{endpoint="/v1/score",status="200"} 3.0' in text
    assert 'anomaly_vae_requests_total{endpoint="/v1/score",status="422"} 1.0' in text
    assert "anomaly_vae_p_value_count 13.0" in text and "anomaly_vae_score_nats_count 13.0" in text
    assert 'anomaly_vae_model_info{name="model",version="local"} 1.0' in text
    assert 'anomaly_vae_request_duration_seconds_bucket{endpoint="/v1/score",le="0.00025"}' in text


def test_bearer_token_when_auth_is_on(model_folder, train_frame):
    settings = Settings(model_uri=str(model_folder), auth_token=SecretStr("s3cret-token-0123"))
    with running(settings) as (client, _):
        body = {"records": records(train_frame.head(1))}
        assert client.post("/v1/score", json=body).status_code == 401
        assert client.post("/v1/score", json=body, headers={"authorization": "Bearer wrong"}).status_code == 401
        assert (
            client.post("/v1/score", json=body, headers={"authorization": "Bearer s3cret-token-0123"}).status_code
            == 200
        )
        assert client.get("/healthz").status_code == 200  # probes stay open
