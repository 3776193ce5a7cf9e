"""Speed benchmarks: fit time of the default detector against PyOD's VAE at its defaults (same data, one
CPU thread), and training and scoring rows/s on a GPU with the data already there."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from anomaly_vae import VAEDetector


def best_fit_seconds(make: Callable[[], Any], X: np.ndarray, repeats: int) -> float:
    """Fastest of ``repeats`` fits of a fresh ``make()`` on X."""
    times = []
    for _ in range(repeats):
        detector = make()
        start = time.perf_counter()
        detector.fit(X)
        times.append(time.perf_counter() - start)
    return min(times)


def run_speed(repeats: int = 3, n_rows: int = 7000, n_features: int = 30, score_rows: int = 100_000) -> str:
    """Markdown table: fit seconds (best of ``repeats``), training and scoring rows/s of the default
    detector, and the fit-time ratio against PyOD's VAE, on one CPU thread."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    ours = best_fit_seconds(lambda: VAEDetector(random_state=0), X, repeats)
    detector = VAEDetector(random_state=0).fit(X)
    trained_rows = detector.history_.steps[-1] * detector.batch_size
    X_score = rng.normal(size=(score_rows, n_features)).astype(np.float32)
    scoring = []
    for _ in range(repeats):
        start = time.perf_counter()
        detector.decision_function(X_score)
        scoring.append(time.perf_counter() - start)
    lines = [
        f"Fit on {n_rows:,} x {n_features} standard-normal rows, scoring {score_rows:,} rows, 1 CPU thread, "
        f"best of {repeats}. Training rows/s = rows in the training batches / the whole fit time (validation "
        "and calibration included).",
        "",
        "| detector | fit seconds | training rows/s | scoring rows/s |",
        "| --- | --- | --- | --- |",
        f"| VAEDetector (defaults) | {ours:.2f} | {trained_rows / ours:,.0f} | {score_rows / min(scoring):,.0f} |",
    ]
    try:
        from pyod.models.vae import VAE
    except ImportError:
        return "\n".join([*lines, "", "PyOD is not installed: `pip install '.[bench]'` for the comparison."])
    theirs = best_fit_seconds(lambda: VAE(random_state=0, verbose=0), X, repeats)
    return "\n".join(
        [*lines, f"| PyOD VAE (defaults) | {theirs:.2f} | | |", "", f"Fit-time ratio: {theirs / ours:.1f}x"]
    )


def run_device_speed(
    device: str = "cuda", n_rows: int = 10_000_000, n_features: int = 64, batch_size: int = 65_536, steps: int = 300
) -> str:
    """Markdown table: training and scoring rows/s of the default network with encoded data already on
    ``device`` (the GPU goal: 10M x 64 numeric rows, batch 65,536). Training runs ``steps`` steps of the
    real loop (Adam, three bagged members, trimmed loss, a validation pass at the end); scoring computes
    every score of every row (importance samples included) and copies them back to the host."""
    from dataclasses import replace

    import pandas as pd

    from anomaly_vae.tabular.schema import EncodedBatch
    from anomaly_vae.tabular.tensors import TensorData
    from anomaly_vae.training import train

    rng = np.random.default_rng(0)
    sample = pd.DataFrame(rng.normal(size=(20_000, n_features)), columns=[f"x{i}" for i in range(n_features)])
    detector = VAEDetector(random_state=0, device=device).fit(sample)  # the default network for this shape
    numeric = rng.standard_normal((n_rows, n_features), dtype=np.float32)  # what encoding gives such data
    batch = EncodedBatch(numeric, np.empty((n_rows, 0), dtype=np.int64), np.empty((n_rows, 0), dtype=np.float32))
    data = TensorData.from_batch(batch, detector.config_, detector.device_)
    del numeric, batch
    config = replace(detector._train_config(), batch_size=batch_size, eval_every=steps, patience=steps)

    def seconds(run: Callable[[], Any]) -> float:
        run()  # warm-up: CUDA context, kernels, allocator
        if detector.device_.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if detector.device_.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    model = detector._network().to(detector.device_)
    loss = detector._loss()
    training = seconds(lambda: train(model, data, data[:batch_size], replace(config, max_steps=steps), loss_fn=loss))
    scoring = seconds(lambda: detector._score_data(data, per_feature=False))
    name = torch.cuda.get_device_name(detector.device_) if detector.device_.type == "cuda" else "CPU"
    return "\n".join(
        [
            f"{n_rows:,} x {n_features} rows on {name} ({device}), float32, {detector.n_members} members, "
            f"K={detector.n_importance_samples}; training: {steps} steps at batch {batch_size:,}.",
            "",
            "| step | seconds | rows/s |",
            "| --- | --- | --- |",
            f"| training | {training:.2f} | {steps * batch_size / training:,.0f} |",
            f"| scoring (all scores, to host) | {scoring:.2f} | {n_rows / scoring:,.0f} |",
        ]
    )
