"""Serving a conditional model: the context columns are required inputs of every record."""

from __future__ import annotations

import pandas as pd
import pytest

from serving.settings import Settings
from tests.conftest import JEWELRY_LIKE
from tests.serving.conftest import running


@pytest.fixture(scope="module")
def conditional_server(conditional, tmp_path_factory):
    folder = tmp_path_factory.mktemp("served-conditional") / "model"
    conditional.save(folder)
    with running(Settings(model_uri=str(folder))) as (client, _):
        yield client


def test_records_are_scored_given_their_context(conditional_server, conditional):
    rows = [{**JEWELRY_LIKE, "merchant": "jewelry"}, {**JEWELRY_LIKE, "merchant": "grocery"}]
    response = conditional_server.post("/v1/score", json={"records": rows})
    assert response.status_code == 200
    got = pd.DataFrame(response.json()["results"])
    expected = conditional.score_frame(pd.DataFrame(rows))
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=False, rtol=1e-6)
    assert got["p_value"][0] > 0.05 and got["p_value"][1] < 0.01
    columns = {c["name"]: c for c in conditional_server.get("/v1/model").json()["columns"]}
    assert columns["merchant"]["context"] and not columns["amount"]["context"]


@pytest.mark.parametrize(
    ("record", "loc", "message"),
    [
        (JEWELRY_LIKE, ["body", "records", 0], "missing column(s): ['merchant']"),
        (
            {**JEWELRY_LIKE, "merchant": None},
            ["body", "records", 0, "merchant"],
            "column 'merchant': context value is missing",
        ),
    ],
)
def test_a_missing_context_is_a_422_naming_it(conditional_server, record, loc, message):
    for path, body in (("/v1/score", {"records": [record]}), ("/invocations", {"dataframe_records": [record]})):
        response = conditional_server.post(path, json=body)
        assert response.status_code == 422, path
        detail = response.json()["detail"][0]
        assert message in detail["msg"], (path, detail)
        expected = loc if path == "/v1/score" else ["body", "dataframe_records", *loc[2:]]
        assert detail["loc"] == expected, (path, detail)
