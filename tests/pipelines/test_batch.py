"""Batch scoring: nothing lost, nothing partial, same scores as the Python API."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from pipelines.batch import score_file
from pipelines.cli import main as cli
from tests.conftest import assert_scores_close, mixed_frame


@pytest.fixture(scope="module")
def model_dir(fitted, tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch") / "model"
    fitted.save(folder)
    return str(folder)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """500 rows with an id column and four planted unscorable rows."""
    frame, _ = mixed_frame(500, seed=9)
    frame.insert(0, "event_id", [f"e{i}" for i in range(len(frame))])
    frame = frame.astype({"amount": object, "flagged": object})
    frame.loc[7, "amount"] = "lots"
    frame.loc[100, "duration"] = np.inf
    frame.loc[250, "flagged"] = "maybe"
    frame.loc[499, "amount"] = "-inf"
    path = tmp_path_factory.mktemp("input") / "events.csv"
    frame.to_csv(path, index=False)
    return path


def test_rows_reconcile_and_rejects_say_why(model_dir, planted, fitted, tmp_path):
    out = tmp_path / "scores.parquet"
    manifest = score_file(
        model_dir, planted, out, id_columns=["event_id"], contributions=2, chunk_rows=64, progress=False
    )
    assert (manifest["rows_in"], manifest["rows_scored"], manifest["rows_rejected"]) == (500, 496, 4)
    assert json.loads(out.with_name("scores.manifest.json").read_text()) == manifest
    rejects = pd.read_csv(out.with_name("scores.rejects.csv"))
    assert rejects["row"].tolist() == [7, 100, 250, 499]
    assert "column 'amount': expected a number" in rejects["reason"][0]
    assert "column 'duration': infinite value" in rejects["reason"][1]
    assert "column 'flagged': expected a boolean" in rejects["reason"][2]
    assert "column 'amount': infinite value" in rejects["reason"][3]

    scores = pd.read_parquet(out)
    assert len(scores) == 496 and scores["event_id"].tolist()[6:8] == ["e6", "e8"]  # row 7 was rejected
    good = pd.read_csv(planted).drop(index=[7, 100, 250, 499]).drop(columns="event_id")
    expected = fitted.score_frame(good)  # the library accepts the CSV strings "1.5", "True" as they are
    assert_scores_close(scores, expected.reset_index(drop=True), fitted)
    assert set(scores["top1_column"]) <= set(fitted.feature_names_in_)
    assert (scores["top1_nats"] >= scores["top2_nats"]).all()


def test_chunking_and_reruns_give_identical_bytes(model_dir, planted, tmp_path, fitted):
    outputs = []
    for name, chunk in (("a", 37), ("b", 37), ("c", 10_000)):
        out = tmp_path / f"{name}.parquet"
        score_file(model_dir, planted, out, chunk_rows=chunk, progress=False)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]  # rerun: same bytes
    a, c = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "c.parquet")
    assert a["row"].tolist() == c["row"].tolist()
    assert_scores_close(a, c, fitted)  # chunk size changes no score beyond float32 rounding


def test_parquet_folder_in_and_csv_out(model_dir, tmp_path):
    frame, _ = mixed_frame(300, seed=4)
    folder = tmp_path / "parts"
    folder.mkdir()
    frame.iloc[:120].to_parquet(folder / "part-0.parquet", index=False)
    frame.iloc[120:].to_parquet(folder / "part-1.parquet", index=False)
    manifest = score_file(model_dir, folder, tmp_path / "out.csv", progress=False)
    assert manifest["rows_scored"] == 300 and manifest["rows_rejected"] == 0
    assert pd.read_csv(tmp_path / "out.csv")["row"].tolist() == list(range(300))


def test_a_missing_feature_column_rejects_every_row(model_dir, tmp_path):
    frame, _ = mixed_frame(50, seed=5)
    frame.drop(columns="tier").to_csv(tmp_path / "in.csv", index=False)
    manifest = score_file(model_dir, tmp_path / "in.csv", tmp_path / "out.csv", progress=False)
    assert manifest["rows_rejected"] == 50
    assert pd.read_csv(tmp_path / "out.rejects.csv")["reason"].str.contains("missing column").all()


def test_bad_arguments_leave_no_files(model_dir, planted, tmp_path, caplog):
    code = cli(
        [
            "score",
            "--model",
            model_dir,
            "--input",
            str(planted),
            "--output",
            str(tmp_path / "o.parquet"),
            "--id-column",
            "nope",
        ]
    )
    assert code == 2 and "id column(s) not in the input: ['nope']" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_a_killed_job_leaves_no_partial_output(model_dir, tmp_path):
    frame, _ = mixed_frame(200_000, seed=6)
    source = tmp_path / "big.parquet"
    frame.to_parquet(source, index=False)
    out = tmp_path / "out" / "scores.parquet"
    command = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "score",
        "--model",
        model_dir,
        "--input",
        str(source),
        "--output",
        str(out),
        "--chunk-rows",
        "2000",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(".scores.parquet.*.partial")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # well inside the writing
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not out.exists() and not out.with_name("scores.manifest.json").exists()
    manifest = score_file(model_dir, source, out, progress=False)  # rerun: complete
    assert manifest["rows_scored"] == 200_000 and len(pd.read_parquet(out)) == 200_000
