"""The speed benchmarks' code paths, on tiny sizes (the figures come from `make bench`, not from tests)."""

from __future__ import annotations

from pipelines.speed import run_batch_speed, run_device_speed


def test_device_speed_trains_and_scores_data_already_on_the_device():
    table = run_device_speed("cpu", n_rows=3000, n_features=6, batch_size=256, steps=3)
    assert "3,000 x 6 rows on CPU (cpu)" in table and "3 steps at batch 256" in table
    cells = [
        row.split("|")[1:4] for row in table.splitlines() if row.startswith("| training") or row.startswith("| scoring")
    ]
    assert [name.strip() for name, _, _ in cells] == ["training", "scoring (all scores, to host)"]
    assert all(int(rate.replace(",", "")) > 0 for _, _, rate in cells)


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
