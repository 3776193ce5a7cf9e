"""The sample-fidelity benchmark's table, on a tiny run."""

from pipelines.benchmarks.sample_fidelity import mixed_data, run_fidelity


def test_table_on_a_tiny_run():
    table = run_fidelity(
        [0],
        rows=300,
        n_samples=200,
        params={"max_steps": 20, "n_members": 1, "fpr": 0.05},
        data={"mixed synthetic": mixed_data},
    )
    row = next(line for line in table.splitlines() if line.startswith("| mixed synthetic"))
    cells = row.strip("| ").split(" | ")
    assert cells[:3] == ["mixed synthetic", "0", "300"]
    ks, column = cells[3].split(" ")
    assert 0 <= float(ks) <= 1 and column.strip("()") in {"amount", "duration", "load", "count"}
    assert cells[4].split(" ")[1].strip("()") in {"channel", "tier", "flagged"}
