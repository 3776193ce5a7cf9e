"""Request records as column arrays (serving/records.py): built once from each format, the JSON rules
checked with the field path, and the library's RecordError answered at the field path of the record and
column it names, in every request format."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anomaly_vae.errors import RecordError
from serving.errors import ApiError
from serving.records import from_frame, from_records, from_rows, from_table

LOC = ["body", "records"]


def rows_of(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def test_records_become_typed_columns_in_the_models_order(fitted, train_frame):
    rows = rows_of(train_frame.head(3))
    rows[1]["amount"], rows[2]["channel"] = None, None
    shuffled = [dict(reversed(list(row.items()))) for row in rows]  # key order does not matter
    records = from_records(shuffled, fitted.schema_, LOC, 100)
    assert list(records.columns) == fitted.schema_.names
    amount = records.columns["amount"]
    assert amount.dtype == np.float64 and np.isnan(amount[1]) and amount[0] == rows[0]["amount"]
    assert records.columns["count"].dtype == np.float64  # JSON integers in a numeric column
    assert records.columns["channel"].dtype == object and records.columns["channel"][2] is None
    assert list(records.columns["flagged"]) == [row["flagged"] for row in rows]
    got = fitted.score_columns(records.columns)["neg_log_likelihood"]
    assert np.allclose(got, fitted.score_frame(pd.DataFrame(rows))["neg_log_likelihood"])


def test_every_format_gives_the_same_columns(fitted, train_frame):
    rows = rows_of(train_frame.head(4))
    names = list(rows[0])[::-1]
    by_records = from_records(rows, fitted.schema_, LOC, 100).columns
    by_rows = from_rows(names, [[row[n] for n in names] for row in rows], fitted.schema_, LOC, 100).columns
    by_table = from_table({n: [row[n] for row in rows] for n in names}, fitted.schema_, LOC, 100).columns
    for columns in (by_rows, by_table):
        assert list(columns) == list(by_records)
        for name, values in by_records.items():
            assert values.dtype == columns[name].dtype and list(values) == list(columns[name]), name


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.5", "column 'amount': expected a number or null, got a string"),
        (True, "column 'amount': expected a number or null, got a boolean"),
        ([1.5], "expected a number, a string, a boolean or null"),
        ({"a": 1}, "expected a number, a string, a boolean or null"),
    ],
)
def test_json_values_are_refused_at_their_field_path(fitted, train_frame, value, message):
    rows = rows_of(train_frame.head(3))
    rows[2]["amount"] = value
    names = list(rows[0])
    cases = [
        (lambda: from_records(rows, fitted.schema_, LOC, 100), [*LOC, 2, "amount"]),
        (
            lambda: from_rows(names, [[row[n] for n in names] for row in rows], fitted.schema_, LOC, 100),
            [*LOC, 2, names.index("amount")],
        ),
        (
            lambda: from_table({n: [row[n] for row in rows] for n in names}, fitted.schema_, LOC, 100),
            [*LOC, "amount", 2],
        ),
    ]
    for build, loc in cases:
        with pytest.raises(ApiError) as refused:
            build()
        assert (refused.value.status, refused.value.loc, refused.value.msg) == (422, loc, message)


def test_a_category_or_a_boolean_may_be_any_scalar(fitted, train_frame):
    rows = rows_of(train_frame.head(2))
    rows[0].update(channel=7, tier=True, flagged="true")
    records = from_records(rows, fitted.schema_, LOC, 100)
    assert records.columns["channel"][0] == 7 and records.columns["flagged"][0] == "true"


def test_a_record_error_is_answered_at_its_record_and_column(fitted, train_frame):
    rows = rows_of(train_frame.head(3))
    names = list(rows[0])
    table = {n: [row[n] for row in rows] for n in names}
    split = from_rows(names, [list(row.values()) for row in rows], fitted.schema_, LOC, 100)
    formats = [
        (from_records(rows, fitted.schema_, LOC, 100), [*LOC, 1, "tier"], [*LOC, 1]),
        (split, [*LOC, 1, names.index("tier")], [*LOC, 1]),
        (from_table(table, fitted.schema_, LOC, 100), [*LOC, "tier", 1], LOC),
        (from_table({**table, "tier": "mid"}, fitted.schema_, LOC, 100), [*LOC, "tier"], LOC),
        (from_frame(train_frame.head(3), fitted.schema_, ["body"], 100), ["body", 1, "tier"], ["body", 1]),
    ]
    for records, at_column, at_record in formats:
        for error, loc in [
            (RecordError("row 1: column 'tier': bad", row=1, column="tier"), at_column),
            (RecordError("row 1: bad", row=1), at_record),
            (RecordError("missing column(s): ['tier']", column="tier"), records.loc),  # the input as a whole
            (ValueError("no row named"), records.loc),
        ]:
            refused = records.refused(error)
            assert (refused.status, refused.loc, refused.msg) == (422, loc, str(error))


def bad_flag_bodies(frame: pd.DataFrame) -> list[tuple[str, str, bytes, str, list]]:
    """(name, path, body, content type, loc) of requests whose record 1 has a flag the library refuses."""
    rows = rows_of(frame.head(3))
    rows[1]["flagged"] = "maybe"
    names = list(rows[0])[::-1]  # the split's own column order: loc names the position in it
    columns = {n: [row[n] for row in rows] for n in names}
    split = {"columns": names, "data": [[row[n] for n in names] for row in rows]}
    csv = frame.head(3).to_csv(index=False).replace("True", "maybe").replace("False", "maybe")

    def body(obj: object) -> bytes:
        return json.dumps(obj).encode()

    json_type = "application/json"
    return [
        ("records", "/v1/score", body({"records": rows}), json_type, ["body", "records", 1, "flagged"]),
        (
            "dataframe_records",
            "/invocations",
            body({"dataframe_records": rows}),
            json_type,
            ["body", "dataframe_records", 1, "flagged"],
        ),
        (
            "dataframe_split",
            "/invocations",
            body({"dataframe_split": split}),
            json_type,
            ["body", "dataframe_split", "data", 1, 0],
        ),
        ("inputs as records", "/invocations", body({"inputs": rows}), json_type, ["body", "inputs", 1, "flagged"]),
        ("inputs as columns", "/invocations", body({"inputs": columns}), json_type, ["body", "inputs", "flagged", 1]),
        (
            "instances, one value for every record",
            "/invocations",
            body({"instances": {**columns, "flagged": "maybe"}}),
            json_type,
            ["body", "instances", "flagged"],
        ),
        ("csv", "/invocations", csv.encode(), "text/csv", ["body", 0, "flagged"]),
    ]


@pytest.mark.parametrize("case", range(7))
def test_the_librarys_refusal_is_a_422_at_the_field_path_of_each_format(server, train_frame, case):
    client, _ = server
    name, path, body, content_type, loc = bad_flag_bodies(train_frame)[case]
    response = client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 422, (name, response.text)
    detail = response.json()["detail"]
    assert detail[0]["loc"] == loc, (name, detail)
    assert "column 'flagged': expected a boolean" in detail[0]["msg"], (name, detail)
    assert "maybe" not in response.text


def test_every_format_case_is_run(train_frame):
    assert len(bad_flag_bodies(train_frame)) == 7
