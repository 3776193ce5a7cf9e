"""The calibration benchmark's theory and code path (the figures come from `anomaly-vae benchmark
calibration`, not from tests)."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_vae.calibration import Calibration
from pipelines.benchmarks.calibration import beta_law, run_calibration_benchmark


@pytest.mark.parametrize(("n_cal", "fpr"), [(200, 0.01), (600, 0.01), (600, 0.05)])
def test_the_beta_law_is_the_spread_of_the_realised_rate(n_cal, fpr):
    """Uniform scores: a threshold t flags a fresh score with probability 1 - t exactly, so the realised
    rates of 4,000 calibration draws must follow Beta(k, n_cal + 1 - k)."""
    rng = np.random.default_rng(0)
    rates = np.array([1.0 - Calibration.fit({"s": rng.random(n_cal)}).threshold("s", fpr) for _ in range(4000)])
    law = beta_law(n_cal, fpr)
    assert law.mean() <= fpr
    assert rates.mean() == pytest.approx(law.mean(), rel=0.03)
    assert rates.std() == pytest.approx(law.std(), rel=0.05)
    assert np.mean(rates > fpr) == pytest.approx(law.sf(fpr), abs=0.03)


def test_benchmark_table_on_a_tiny_run():
    table = run_calibration_benchmark(
        train_rows=(600,), seeds=(0, 1), fresh_rows=3000, params={"max_steps": 20, "eval_every": 10}
    )
    rows = [line.split(" | ") for line in table.splitlines() if line.split(" | ")[1:2] == ["600"]]
    assert [(row[0], row[3]) for row in rows] == [
        (f"| {method}", fpr) for method in ("split", "out_of_bag") for fpr in ("0.01", "0.05", "0.1")
    ]
    assert all(row[4] == "2" for row in rows)  # two models each
    assert all(row[-1] == "- |" for row in rows if row[0] == "| out_of_bag")  # no proven law to compare with
