"""Fit time of the default detector against PyOD's VAE at its defaults, same data, one CPU thread."""

from __future__ import annotations

import time

import numpy as np
import torch

from anomaly_vae import VAEDetector


def _best_fit_seconds(make, X: np.ndarray, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        make().fit(X)
        times.append(time.perf_counter() - start)
    return min(times)


def run_speed(repeats: int = 3, n_rows: int = 7000, n_features: int = 30) -> str:
    torch.set_num_threads(1)
    X = np.random.default_rng(0).normal(size=(n_rows, n_features)).astype(np.float32)
    ours = _best_fit_seconds(lambda: VAEDetector(random_state=0), X, repeats)
    lines = [
        f"fit on {n_rows:,} x {n_features} rows, 1 CPU thread, best of {repeats}",
        "",
        "| detector | fit seconds | rows/s (rows x steps / time) |",
        "| --- | --- | --- |",
        f"| VAEDetector (default) | {ours:.2f} | |",
    ]
    try:
        from pyod.models.vae import VAE
    except ImportError:
        lines.append("| PyOD VAE | not installed (pip install '.[bench]') | |")
        return "\n".join(lines)
    theirs = _best_fit_seconds(lambda: VAE(random_state=0, verbose=0), X, repeats)
    lines.append(f"| PyOD VAE (defaults) | {theirs:.2f} | |")
    lines += ["", f"PyOD VAE / VAEDetector fit-time ratio: {theirs / ours:.1f}x"]
    return "\n".join(lines)
