"""The batch scoring benchmark's code path, on tiny sizes (the figures come from `anomaly-vae benchmark
batch`, not from tests)."""

from __future__ import annotations

from pipelines.benchmarks.batch import run_batch_speed


def test_batch_speed_times_scoring_in_process_and_as_the_command():
    table = run_batch_speed(n_rows=300, n_features=3, repeats=1)
    rows = [row.split("|") for row in table.splitlines() if row.startswith("| ") and "---" not in row][1:]
    assert [cells[1].strip() for cells in rows] == [
        "pyarrow read + write (I/O floor), median of 1",
        "anomaly-vae score in this process, median of 1",
        "`anomaly-vae score` command, median of 1",
        "`anomaly-vae score` command on 10 rows (start-up), median of 1",
    ]
    assert all(float(cells[2]) > 0 for cells in rows)
    assert "x in this process" in table and "x as a command" in table
