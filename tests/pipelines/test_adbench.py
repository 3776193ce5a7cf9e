import numpy as np
import pandas as pd

from pipelines.adbench import protocol_split, run_benchmark


def test_protocol_resamples_splits_and_scales():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 4)) * 50, (rng.random(300) < 0.1).astype(int)
    X_train, X_test, y_train, y_test = protocol_split(X, y, seed=0)
    assert len(X_train) + len(X_test) == 1000  # small sets are drawn up to 1,000 rows with replacement
    assert X_train.min() == 0.0 and X_train.max() == 1.0  # MinMax fitted on the training part
    assert abs(y_test.mean() - y_train.mean()) < 0.02  # stratified


def test_benchmark_writes_per_run_csv_and_table(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        X = rng.normal(size=(400, 3))
        y = np.r_[np.zeros(380, int), np.ones(20, int)]
        X[y == 1] += 6.0
        np.savez(tmp_path / f"{name}.npz", X=X, y=y)
    params = {"max_steps": 60, "hidden": [16], "n_members": 1}
    table = run_benchmark(tmp_path, [0], tmp_path / "out", jobs=1, params=params, baselines=False)
    results = pd.read_csv(tmp_path / "out" / "adbench.csv")
    assert sorted(results["dataset"]) == ["a", "b"] and (results["auroc"] > 0.9).all()
    assert "| VAEDetector |" in table and (tmp_path / "out" / "adbench.md").read_text().startswith("2 data sets")
