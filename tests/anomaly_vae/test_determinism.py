"""Scores are deterministic (DESIGN.md, README): the same record gets the same bits alone, in batches of
any size (across scoring chunks), with any number of torch threads, and in the first call of a fresh
process as in a later one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from anomaly_vae import VAEDetector
from tests.conftest import mixed_frame

# 16 samples x 4 members: 1,024 rows per scoring chunk, so the 1,100 records span two chunks. A 6-wide
# encoder output (latent_dim=3) and a 10-wide hidden layer are widths at which MKL's GEMM rounds a row by
# its position in the batch unless the scorer pads them.
PARAMS = {
    "hidden": (10,),
    "latent_dim": 3,
    "n_members": 4,
    "n_importance_samples": 16,
    "max_steps": 20,
    "eval_every": 10,
    "kl_warmup_steps": 5,
    "random_state": 0,
}
N_RECORDS = 1100


@pytest.fixture(scope="module")
def detector() -> VAEDetector:
    return VAEDetector(**PARAMS).fit(mixed_frame(300, seed=0)[0])


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    frame, _ = mixed_frame(N_RECORDS - 50, seed=5, n_anomalies=50)  # NaN in two columns, some outliers
    return frame


@pytest.fixture(scope="module")
def reference(detector: VAEDetector, records: pd.DataFrame) -> np.ndarray:
    return scores(detector, records)


def scores(detector: VAEDetector, frame: pd.DataFrame) -> np.ndarray:
    """Every score column, per-column contributions included, as one float64 array (n, columns)."""
    return detector.score_frame(frame, contributions=True).to_numpy(dtype=np.float64)


def assert_same_bits(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    if got.tobytes() != expected.tobytes():
        differ = got != expected
        worst = float(np.max(np.abs(got - expected)))
        pytest.fail(f"{what}: {int(differ.any(axis=1).sum())} of {len(got)} records differ, by up to {worst:.3g}")


@pytest.mark.parametrize("size", [1, 2, 7, 64, 65, 1000])
def test_batches_of_any_size_give_the_same_bits(detector, records, reference, size):
    stop = min(N_RECORDS, 10 * size)  # ten batches (speed); batches of 1,000 cover every record
    parts = [scores(detector, records.iloc[start : start + size]) for start in range(0, stop, size)]
    assert_same_bits(np.concatenate(parts), reference[:stop], f"batches of {size} vs all {N_RECORDS} at once")


@pytest.mark.parametrize("threads", [1, 3])
def test_thread_count_does_not_change_the_bits(detector, records, reference, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = scores(detector, records)
        alone = np.concatenate([scores(detector, records.iloc[i : i + 1]) for i in range(10)])
    finally:
        torch.set_num_threads(before)
    assert_same_bits(got, reference, f"{threads} torch threads")
    assert_same_bits(alone, reference[:10], f"records alone, {threads} torch threads")


FIRST_CALL = textwrap.dedent(
    """
    import sys, threading
    import numpy as np, pandas as pd
    from anomaly_vae import VAEDetector

    folder, source, out = sys.argv[1:4]
    detector = VAEDetector.load(folder)
    records = pd.read_parquet(source)
    stop = threading.Event()

    def busy():  # a background thread working while the first batch is scored, as the batch job's reader
        while not stop.is_set():
            pd.DataFrame(np.random.default_rng(0).random((2_000, 8))).describe()

    worker = threading.Thread(target=busy)
    worker.start()
    columns = lambda frame: detector.score_frame(frame, contributions=True).to_numpy(dtype=np.float64)
    first = columns(records)  # the first scoring call of this process
    stop.set()
    worker.join()
    later = columns(records)
    alone = np.concatenate([columns(records.iloc[i : i + 1]) for i in range(10)])
    np.savez(out, first=first, later=later, alone=alone)
    """
)


def test_first_call_of_a_fresh_process_gives_the_same_bits(detector, records, reference, tmp_path):
    folder, source, out = tmp_path / "model", tmp_path / "records.parquet", tmp_path / "scores.npz"
    detector.save(folder)
    records.to_parquet(source, index=False)
    command = [sys.executable, "-c", FIRST_CALL, str(folder), str(source), str(out)]
    subprocess.run(command, check=True, timeout=120, cwd=Path(__file__).parents[2])
    with np.load(out) as saved:
        assert_same_bits(saved["first"], reference, "first call of a fresh process vs this process")
        assert_same_bits(saved["later"], reference, "later call of a fresh process vs this process")
        assert_same_bits(saved["alone"], reference[:10], "records alone in a fresh process")
