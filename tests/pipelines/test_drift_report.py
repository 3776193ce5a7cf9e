"""`anomaly-vae drift`: JSON statistics and the HTML report for a shifted data set."""

from __future__ import annotations

import json
import re

import pytest

from pipelines.cli import main
from tests.conftest import mixed_frame


@pytest.fixture(scope="module")
def model_dir(fitted, tmp_path_factory):
    folder = tmp_path_factory.mktemp("drift") / "model"
    fitted.save(folder)
    return folder


def test_drift_command_writes_json_and_a_report_for_a_shifted_file(model_dir, tmp_path):
    frame = mixed_frame(400, seed=31)[0]
    frame["duration"] += frame["duration"].std()
    frame["event_id"] = range(len(frame))  # a column the model does not use is ignored
    frame["amount"] = frame["amount"].astype(object)
    frame.loc[7, "amount"] = "twelve"  # an unscorable row is left out and counted
    frame.to_csv(tmp_path / "shifted.csv", index=False)
    out, report = tmp_path / "drift.json", tmp_path / "drift.html"
    data = str(tmp_path / "shifted.csv")
    code = main(["drift", "--model", str(model_dir), "--data", data, "--report", str(report), "--output", str(out)])
    assert code == 0
    summary = json.loads(out.read_text())
    assert summary["drifted_features"] == ["duration"] and summary["drifted"]
    assert summary["n_records"] == 399 and summary["rows_rejected"] == 1
    text = report.read_text()
    assert text.count('<img src="data:image/png;base64,') == 1 + 7  # score + one per feature
    assert "<tr class=drifted><td>duration</td>" in text
    # the rule as the library applies it: 7 features, two tests each, plus the score and the latent codes
    assert f"p-value is below alpha / number of tests = 0.0001 / 17 = {1e-4 / 17:.2g} (Bonferroni" in text
    assert "AND its effect is at least the threshold: PSI 0.05 for a feature" in text
    duration = next(f for f in summary["features"] if f["name"] == "duration")
    assert duration["p_value"] < 1e-4 / 17 and duration["psi"] >= 0.05  # why it is flagged
    row = re.search(r"<tr class=drifted><td>duration</td><td>numeric</td><td>[\d.]+</td><td>([^<]+)</td>", text)
    assert row is not None and float(row[1]) == float(f"{duration['p_value']:.2g}")  # the test's p-value column
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drift.html", "drift.json", "shifted.csv"]


def test_drift_command_names_a_missing_column(model_dir, tmp_path, caplog):
    mixed_frame(50, seed=32)[0].drop(columns="tier").to_csv(tmp_path / "partial.csv", index=False)
    code = main(["drift", "--model", str(model_dir), "--data", str(tmp_path / "partial.csv")])
    assert code == 2
    assert "missing model column(s): ['tier']" in caplog.text
