"""`/invocations` as a drop-in for `mlflow models serve`: each format MLflow's scoring server reads gives
the answer MLflow's own server code gives for the same model (called in-process, without HTTP), and bad
CSV, JSON shapes and content types get a 4xx naming where the problem is."""

from __future__ import annotations

import json

import pandas as pd
import pytest

MARKER = "zq-secret-payload-7731"


@pytest.fixture(scope="module")
def mlflow_model(model_folder, fitted, train_frame, tmp_path_factory):
    """The served model as the MLflow pyfunc the training pipeline registers."""
    import mlflow
    from mlflow.models import infer_signature

    from pipelines.pyfunc_model import DETECTOR_ARTIFACT
    from pipelines.train import PYFUNC_CODE

    path = tmp_path_factory.mktemp("pyfunc") / "model"
    example = train_frame.head(5)
    mlflow.pyfunc.save_model(
        str(path),
        python_model=str(PYFUNC_CODE),
        artifacts={DETECTOR_ARTIFACT: str(model_folder)},
        signature=infer_signature(example, fitted.score_frame(example), params={"fpr": fitted.fpr}),
        pip_requirements=[],
    )
    return mlflow.pyfunc.load_model(str(path))


def mlflow_predictions(model, body: bytes, content_type: str) -> list[dict]:
    """What `mlflow models serve` answers: its scoring server's own request handling."""
    from mlflow.pyfunc import scoring_server

    result = scoring_server.invocations(body, content_type, model, model.metadata.get_input_schema())
    assert result.status == 200, result.response
    return json.loads(result.response)["predictions"]


def payloads(rows: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    records = json.loads(rows.to_json(orient="records"))
    columns = {name: [record[name] for record in records] for name in rows.columns}
    one = records[0]

    def body(obj: object) -> tuple[bytes, str]:
        return json.dumps(obj).encode(), "application/json"

    return {
        "dataframe_split with index": body({"dataframe_split": json.loads(rows.to_json(orient="split"))}),
        "dataframe_records": body({"dataframe_records": records}),
        "dataframe_records with params": body({"dataframe_records": records, "params": {"fpr": 0.3}}),
        "inputs as records": body({"inputs": records}),
        "inputs as columns": body({"inputs": columns}),
        "inputs as one record of single values": body({"inputs": one}),
        "inputs with a single value repeated": body({"inputs": {**columns, "channel": one["channel"]}}),
        "instances as records": body({"instances": records}),
        "instances as columns": body({"instances": columns}),
        "csv": (rows.to_csv(index=False).encode(), "text/csv"),
        "csv with charset": (rows.to_csv(index=False).encode(), "text/csv; charset=UTF-8"),
    }


FORMATS = list(payloads(pd.DataFrame({"channel": ["a"]})))


@pytest.mark.parametrize("name", FORMATS)
def test_every_mlflow_format_is_answered_as_mlflow_answers_it(server, mlflow_model, train_frame, name):
    client, _ = server
    rows = train_frame.dropna().head(6)  # MLflow's schema enforcement refuses a missing integer or boolean
    body, content_type = payloads(rows)[name]
    response = client.post("/invocations", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    ours = pd.DataFrame(response.json()["predictions"])
    theirs = pd.DataFrame(mlflow_predictions(mlflow_model, body, content_type))
    assert len(ours) == (1 if "one record" in name else len(rows))
    pd.testing.assert_frame_equal(ours[theirs.columns], theirs, check_exact=False, rtol=1e-6)


def csv_cases(frame: pd.DataFrame) -> list[tuple[str, bytes, str, int, list | None, str]]:
    """(name, body, content type, status, loc or None, fragment of the message)"""
    text = frame.head(3).to_csv(index=False)
    header, first, *rest = text.splitlines(keepends=True)
    names = header.strip().split(",")
    amount = names.index("amount")

    def with_field(line: str, j: int, value: str) -> str:
        fields = line.rstrip("\n").split(",")
        fields[j] = value
        return ",".join(fields) + "\n"

    csv = "text/csv"
    return [
        (
            "a line with an extra field",
            (header + first.rstrip("\n") + ",1\n").encode(),
            csv,
            400,
            ["body", 0],
            "fields",
        ),
        ("a line with a field missing", (header + first.split(",", 1)[1]).encode(), csv, 400, ["body", 0], "fields"),
        ("empty body", b"", csv, 400, ["body"], "empty CSV"),
        ("header only", header.encode(), csv, 422, ["body"], "at least one record"),
        ("a repeated column name", (header.strip() + ",amount\n").encode(), csv, 422, ["body"], "repeated"),
        (
            "an unknown column",
            (header.strip() + f",{MARKER[:8]}\n" + first.strip() + ",1\n").encode(),
            csv,
            422,
            None,
            "unknown",
        ),
        (
            "a missing column",
            (header.replace("amount,", "") + first.split(",", 1)[1]).encode(),
            csv,
            422,
            None,
            "amount",
        ),
        (
            "text in a number column",
            (header + first + with_field(rest[0], amount, MARKER)).encode(),
            csv,
            422,
            ["body", 1, "amount"],
            "amount",
        ),
        (
            "infinity in a number column",
            (header + with_field(first, amount, "inf")).encode(),
            csv,
            422,
            ["body", 0, "amount"],
            "infinite",
        ),
        ("unterminated quote", (header + '"' + MARKER + first).encode(), csv, 400, ["body", 0], "fields"),
        ("invalid UTF-8", header.encode() + b"\xff\xfe\n", csv, 400, ["body"], "UTF-8"),
        ("too many records", (header + first * 101).encode(), csv, 413, ["body"], "at most 100"),
        (
            "a field over the field size limit",
            (header + '"' + "x" * 150_000 + '"\n').encode(),
            csv,
            400,
            ["body"],
            "field",
        ),
        ("90,000 repeated column names", ("a," * 90_000 + "a\n").encode(), csv, 422, ["body"], "repeated"),
        ("parquet", b"PAR1", "application/vnd.apache.parquet", 415, ["header", "content-type"], "supported"),
        ("plain text", text.encode(), "text/plain", 415, ["header", "content-type"], "supported"),
        ("another charset", text.encode(), "text/csv; charset=latin-1", 415, ["header", "content-type"], "UTF-8"),
        ("an unknown parameter", text.encode(), "text/csv; header=present", 415, ["header", "content-type"], "charset"),
        ("a non-ASCII content type", text.encode(), "text/csv\u00e9", 415, ["header", "content-type"], "supported"),
    ]


CSV_CASES = 19


def test_every_csv_case_is_run(train_frame):
    assert len(csv_cases(train_frame)) == CSV_CASES


@pytest.mark.parametrize("case", range(CSV_CASES))
def test_bad_csv_and_content_types_get_a_4xx_with_the_field_path(server, train_frame, case):
    client, _ = server
    name, body, content_type, status, loc, fragment = csv_cases(train_frame)[case]
    response = client.post("/invocations", content=body, headers={"content-type": content_type.encode("latin-1")})
    assert response.status_code == status, (name, response.text)
    detail = response.json()["detail"]
    assert fragment in detail[0]["msg"], (name, detail)
    if loc is not None:
        assert detail[0]["loc"] == loc, (name, detail)
    assert MARKER not in response.text and "Traceback" not in response.text


def json_cases(frame: pd.DataFrame) -> list[tuple[str, object, list]]:
    """(name, body, loc) of JSON bodies refused with 422"""
    records = json.loads(frame.head(3).to_json(orient="records"))
    columns = {name: [record[name] for record in records] for name in frame.columns}
    return [
        ("inputs: a list of numbers", {"inputs": [1, 2]}, ["body", "inputs", 0]),
        ("inputs: a string", {"inputs": MARKER}, ["body", "inputs"]),
        (
            "inputs: a nested value in a record",
            {"inputs": [records[0], {**records[1], "amount": [1]}]},
            ["body", "inputs", 1, "amount"],
        ),
        (
            "inputs: a nested value in a column",
            {"inputs": {**columns, "amount": [1.0, {"a": 1}, 2.0]}},
            ["body", "inputs", "amount", 1],
        ),
        ("inputs: columns of different lengths", {"inputs": {**columns, "amount": [1.0]}}, ["body", "inputs"]),
        (
            "inputs: a string in a number column",
            {"inputs": {**columns, "amount": [1.0, 2.0, MARKER]}},
            ["body", "inputs", "amount", 2],
        ),
        (
            "instances: a missing column",
            {"instances": [{k: v for k, v in records[0].items() if k != "tier"}]},
            ["body", "instances", 0],
        ),
        ("instances: an empty list", {"instances": []}, ["body", "instances"]),
        ("two formats", {"inputs": records, "instances": records}, ["body"]),
        ("no format", {"params": {"fpr": 0.1}}, ["body"]),
        (
            "split: index of another length",
            {"dataframe_split": {**json.loads(frame.head(3).to_json(orient="split")), "index": [0]}},
            ["body", "dataframe_split", "index"],
        ),
    ]


JSON_CASES = 11


def test_every_json_case_is_run(train_frame):
    assert len(json_cases(train_frame)) == JSON_CASES


@pytest.mark.parametrize("case", range(JSON_CASES))
def test_bad_json_shapes_get_a_422_with_the_field_path(server, train_frame, case):
    client, _ = server
    name, body, loc = json_cases(train_frame)[case]
    response = client.post("/invocations", json=body)
    assert response.status_code == 422, (name, response.text)
    assert response.json()["detail"][0]["loc"] == loc, (name, response.text)
    assert MARKER not in response.text
