"""The mixed-type dependence benchmark: its anomalies contradict exactly one rule, and its table."""

import numpy as np
import pandas as pd

from pipelines.benchmarks.mixed import SHAPES, mixed_dependence_frame, rules, run_mixed


def test_anomalies_contradict_one_rule_with_values_that_normal_records_take():
    frame, labels, broken = mixed_dependence_frame(600, seed=0, n_anomalies=200)
    expected = rules(frame[["a", "b", "c", "d"]])
    contradicted = (frame[list(SHAPES)] != expected).to_numpy()
    assert not contradicted[labels == 0].any()  # normal records follow every rule
    assert (contradicted[labels == 1].sum(axis=1) == 1).all()  # an anomaly breaks exactly one
    assert (np.array(list(SHAPES))[contradicted[labels == 1].argmax(axis=1)] == broken[labels == 1]).all()
    assert set(broken[labels == 1]) == set(SHAPES)  # every shape is planted
    for column in SHAPES:  # each value is plausible alone
        assert set(frame.loc[labels == 1, column]) <= set(frame.loc[labels == 0, column])
    assert frame["above"].dtype == bool and frame["band"].dtype == object


def test_table_on_a_tiny_run():
    table = run_mixed(
        [0],
        train_rows=300,
        test_rows=200,
        test_anomalies=40,
        params={"max_steps": 20, "n_members": 1, "hidden": [8], "fpr": 0.05},
    )
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split(" | ")[0][2:] for r in rows] == [
        "VAEDetector",
        "IsolationForest (one-hot)",
        "Mahalanobis (one-hot)",
        "KNN (one-hot)",
    ]
    values = pd.Series([float(v) for r in rows for v in r.strip("| ").split(" | ")[1:6]])
    assert values.between(0, 1).all()
