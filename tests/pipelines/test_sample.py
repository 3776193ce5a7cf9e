"""`anomaly-vae sample`: samples to a file, the fidelity numbers and plot, clear errors."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from pipelines.cli import main as cli
from tests.conftest import mixed_frame


@pytest.fixture(scope="module")
def model_dir(fitted, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample") / "model"
    fitted.save(folder)
    return str(folder)


def test_sample_writes_records_and_a_fidelity_report(model_dir, fitted, tmp_path, capsys):
    data = tmp_path / "held_out.csv"
    mixed_frame(1000, seed=1)[0].to_csv(data, index=False)
    out, report = tmp_path / "samples.parquet", tmp_path / "fidelity.png"
    args = ["sample", "--model", model_dir, "-n", "400", "--output", str(out), "--seed", "4"]
    code = cli([*args, "--compare", str(data), "--report", str(report)])
    assert code == 0
    samples = pd.read_parquet(out)
    pd.testing.assert_frame_equal(samples, fitted.sample(400, random_state=4), check_dtype=False)  # Parquet: str
    assert report.stat().st_size > 10_000  # a picture
    numbers = json.loads(report.with_suffix(".json").read_text())
    assert numbers == json.loads(capsys.readouterr().out)
    columns = {row["column"]: row for row in numbers["fidelity"]["columns"]}
    assert set(columns) == set(fitted.feature_names_in_)
    assert columns["amount"]["statistic"] == "ks" and 0 <= columns["amount"]["value"] < 1
    assert columns["tier"]["statistic"] == "max_frequency_difference"
    assert 0 <= numbers["fidelity"]["max_correlation_difference"] < 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--report", "x.png"], "--report needs --compare DATA"),
        (["--context", '{"tier": "low"}'], "the model is not conditional"),
        (["--context", "[1]"], "--context must be a JSON object"),
    ],
)
def test_bad_sample_arguments_leave_no_files(model_dir, tmp_path, caplog, extra, message):
    out = tmp_path / "samples.csv"
    assert cli(["sample", "--model", model_dir, "-n", "10", "--output", str(out), *extra]) == 2
    assert message in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_samples_follow_the_umask(model_dir, tmp_path):
    previous = os.umask(0o027)
    try:
        assert cli(["sample", "--model", model_dir, "-n", "10", "--output", str(tmp_path / "samples.parquet")]) == 0
    finally:
        os.umask(previous)
    assert [(path.name, oct(path.stat().st_mode & 0o777)) for path in tmp_path.iterdir()] == [
        ("samples.parquet", "0o640")
    ]
