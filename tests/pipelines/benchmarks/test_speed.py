"""The speed benchmark's code path, on tiny sizes (the figures come from `make bench`, not from tests)."""

from __future__ import annotations

from pipelines.benchmarks.speed import run_device_speed


def test_device_speed_trains_and_scores_data_already_on_the_device():
    table = run_device_speed("cpu", n_rows=3000, n_features=6, batch_size=256, steps=3)
    assert "3,000 x 6 rows on CPU (cpu)" in table and "3 steps at batch 256" in table
    cells = [
        row.split("|")[1:4] for row in table.splitlines() if row.startswith("| training") or row.startswith("| scoring")
    ]
    assert [name.strip() for name, _, _ in cells] == ["training", "scoring (all scores, to host)"]
    assert all(int(rate.replace(",", "")) > 0 for _, _, rate in cells)
