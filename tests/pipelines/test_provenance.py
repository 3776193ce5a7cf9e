"""The conditions line that benchmark output starts with."""

from __future__ import annotations

from pipelines.provenance import run_conditions


def test_run_conditions_say_when_what_and_how_busy():
    line = run_conditions("anomaly-vae benchmark speed")
    assert line.startswith("Run of 20") and " UTC, commit " in line and "load average" in line
    assert line.endswith("Command: `anomaly-vae benchmark speed`.")
