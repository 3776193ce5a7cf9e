"""Batch scoring: nothing lost, nothing partial, same scores as the Python API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from pipelines.batch import TooManyRejects, score_file
from pipelines.cli import main as cli
from tests.conftest import assert_scores_close, mixed_frame


@pytest.fixture(scope="module")
def model_dir(fitted, tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch") / "model"
    fitted.save(folder)
    return str(folder)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """500 rows with an id column, four planted unscorable rows, and values the model never saw in training:
    missing values in columns that had none (rows 3 and 4) and an unknown category (rows 5 and 6)."""
    frame, _ = mixed_frame(500, seed=9)
    frame.insert(0, "event_id", [f"e{i}" for i in range(len(frame))])
    frame = frame.astype({"amount": object, "flagged": object, "count": object})
    frame.loc[3, "amount"] = None
    frame.loc[4, "count"] = None
    frame.loc[[5, 6], "tier"] = "platinum"
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
    assert rejects["event_id"].tolist() == ["e7", "e100", "e250", "e499"]  # to join the rejects back too
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


def test_the_manifest_totals_unseen_input_and_says_whether_the_fpr_is_resolved(
    model_dir, planted, fitted, tmp_path, caplog
):
    out = tmp_path / "scores.csv"
    manifest = score_file(model_dir, planted, out, chunk_rows=64, progress=False)
    assert (manifest["missing_unseen"], manifest["unknown_categories"]) == (2, 2)
    scores = pd.read_csv(out).set_index("row")
    assert scores.loc[[2, 3, 4, 5, 6], ["missing_unseen", "unknown_categories"]].values.tolist() == [
        [0, 0],
        [1, 0],
        [1, 0],
        [0, 1],
        [0, 1],
    ]
    smallest = fitted.calibration_.smallest_fpr
    assert (manifest["fpr"], manifest["smallest_fpr"], manifest["fpr_resolvable"]) == (0.01, smallest, True)
    assert smallest == 1 / (fitted.calibration_.size + 1) and "cannot resolve" not in caplog.text

    manifest = score_file(model_dir, planted, out, fpr=smallest, progress=False)
    assert manifest["fpr_resolvable"] and manifest["outliers"] >= 1  # rows above every calibration score
    manifest = score_file(model_dir, planted, out, fpr=smallest / 2, progress=False)
    assert (manifest["fpr"], manifest["fpr_resolvable"], manifest["outliers"]) == (smallest / 2, False, 0)
    assert json.loads(out.with_name("scores.manifest.json").read_text()) == manifest
    assert f"calibration scores cannot resolve fpr={smallest / 2:g} (the smallest rate they resolve is" in caplog.text


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


def test_a_job_that_scores_nothing_fails_and_keeps_its_files(model_dir, tmp_path, capsys, caplog):
    frame, _ = mixed_frame(50, seed=5)
    frame.insert(0, "event_id", range(100, 150))
    frame.drop(columns="tier").to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    args = ["score", "--model", model_dir, "--input", str(tmp_path / "in.csv"), "--output", str(out)]
    assert cli([*args, "--id-column", "event_id", "--max-reject-fraction", "1"]) == 1  # even when any share may fail
    manifest = json.loads(out.with_name("out.manifest.json").read_text())
    assert manifest == json.loads(capsys.readouterr().out)
    assert (manifest["status"], manifest["rows_rejected"], manifest["rows_scored"]) == ("failed", 50, 0)
    assert manifest["failure"].startswith("no row was scored: all 50 rejected")
    assert f"error: {manifest['failure']}" in caplog.text
    rejects = pd.read_csv(out.with_name("out.rejects.csv"))
    assert rejects["reason"].str.contains("missing column").all() and rejects["event_id"].tolist() == list(
        range(100, 150)
    )
    assert list(pd.read_csv(out).columns) == ["row", "event_id"] and len(pd.read_csv(out)) == 0


def test_more_rejects_than_allowed_fail_the_job(model_dir, planted, tmp_path):
    out = tmp_path / "scores.csv"
    with pytest.raises(
        TooManyRejects, match=r"4 of 500 rows rejected \(0.80%\), more than the maximum 0.50%"
    ) as failed:
        score_file(model_dir, planted, out, max_reject_fraction=0.005, progress=False)
    manifest = json.loads(out.with_name("scores.manifest.json").read_text())
    assert manifest == failed.value.manifest and manifest["status"] == "failed"
    assert (manifest["reject_fraction"], manifest["max_reject_fraction"]) == (0.008, 0.005)
    assert len(pd.read_csv(out)) == 496 and len(pd.read_csv(out.with_name("scores.rejects.csv"))) == 4

    manifest = score_file(model_dir, planted, out, progress=False)  # the default allows 5%
    assert (manifest["status"], manifest["failure"], manifest["max_reject_fraction"]) == ("succeeded", None, 0.05)


def test_outputs_follow_the_umask(model_dir, planted, tmp_path):
    previous = os.umask(0o027)
    try:
        score_file(model_dir, planted, tmp_path / "scores.csv", progress=False)
        score_file(model_dir, planted, tmp_path / "scores.parquet", progress=False)
    finally:
        os.umask(previous)
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == [
        "scores.csv",
        "scores.manifest.json",
        "scores.parquet",
        "scores.rejects.csv",
    ]  # nothing temporary left
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in tmp_path.iterdir()} == dict.fromkeys(
        written, "0o640"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("header.csv", "amount,duration\n", "header.csv has column names but no rows"),
        ("empty.csv", "", "empty.csv is empty (0 bytes)"),
        ("blank.csv", "\n\n", "blank.csv has no header line of column names"),
        ("empty.parquet", "", "empty.parquet is empty (0 bytes)"),
        ("rowless.parquet", None, "rowless.parquet has column names but no rows"),
    ],
)
def test_inputs_without_rows_are_named_and_leave_no_files(model_dir, tmp_path, caplog, name, content, message):
    source = tmp_path / "in" / name
    source.parent.mkdir()
    if content is None:
        mixed_frame(10, seed=0)[0].head(0).to_parquet(source)
    else:
        source.write_text(content)
    out = tmp_path / "out"
    assert cli(["score", "--model", model_dir, "--input", str(source), "--output", str(out / "s.csv")]) == 2
    assert caplog.messages == [f"error: {source.parent}/{message}"]
    assert not out.exists() or list(out.iterdir()) == []


def test_a_reject_fraction_outside_0_1_is_refused(model_dir, planted, tmp_path, caplog):
    out = tmp_path / "s.csv"
    args = ["score", "--model", model_dir, "--input", str(planted), "--output", str(out), "--max-reject-fraction"]
    assert cli([*args, "1.5"]) == 2
    assert "max_reject_fraction must be in [0, 1], got: 1.5" in caplog.text
    assert list(tmp_path.iterdir()) == []


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
