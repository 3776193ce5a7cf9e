"""`anomaly-vae benchmark batch`: batch scoring (:mod:`pipelines.batch`) against the Parquet I/O floor, in
this process and as the command users run."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

from anomaly_vae import VAEDetector
from pipelines.batch import score_file


def run_batch_speed(n_rows: int = 1_000_000, n_features: int = 30, repeats: int = 3) -> str:
    """Markdown table: `anomaly-vae score` from Parquet to Parquet, in this process and as the command users
    run (a new process: start-up and imports included), against pyarrow read + write of the same file
    (``pq.read_table`` + ``pq.write_table`` with pyarrow's defaults), median of ``repeats`` alternated runs;
    and the command on 10 rows, which is its start-up cost."""
    script = Path(sys.executable).with_name("anomaly-vae")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "pipelines.cli"]

    def run_command(model: Path, source: Path, output: Path) -> float:
        start = time.perf_counter()
        arguments = ["score", "--model", str(model), "--input", str(source), "--output", str(output)]
        subprocess.run([*command, *arguments], check=True, capture_output=True)
        return time.perf_counter() - start

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        rng = np.random.default_rng(0)
        frame = pd.DataFrame(rng.normal(size=(n_rows, n_features)), columns=[f"x{i}" for i in range(n_features)])
        frame.to_parquet(root / "input.parquet", index=False)
        frame.head(10).to_parquet(root / "small.parquet", index=False)
        VAEDetector(random_state=0).fit(frame.sample(min(n_rows, 20_000), random_state=0)).save(root / "model")
        floors, runs, commands, small = [], [], [], []
        for _ in range(repeats):  # alternated, so all see the same machine state; medians reported
            start = time.perf_counter()
            pq.write_table(pq.read_table(root / "input.parquet"), root / "copy.parquet")
            floors.append(time.perf_counter() - start)
            start = time.perf_counter()
            score_file(str(root / "model"), root / "input.parquet", root / "scores.parquet", progress=False)
            runs.append(time.perf_counter() - start)
            commands.append(run_command(root / "model", root / "input.parquet", root / "scores.parquet"))
            small.append(run_command(root / "model", root / "small.parquet", root / "small_scores.parquet"))
    floor, seconds, as_command, start_up = (float(np.median(t)) for t in (floors, runs, commands, small))
    return "\n".join(
        [
            f"{n_rows:,} x {n_features} numeric rows, Parquet to Parquet, torch threads: {torch.get_num_threads()}.",
            "",
            "| step | seconds | rows/s |",
            "| --- | --- | --- |",
            f"| pyarrow read + write (I/O floor), median of {repeats} | {floor:.3f} | |",
            f"| anomaly-vae score in this process, median of {repeats} | {seconds:.3f} | {n_rows / seconds:,.0f} |",
            f"| `anomaly-vae score` command, median of {repeats} | {as_command:.3f} | {n_rows / as_command:,.0f} |",
            f"| `anomaly-vae score` command on 10 rows (start-up), median of {repeats} | {start_up:.3f} | |",
            "",
            f"Ratio to the I/O floor: {seconds / floor:.1f}x in this process, {as_command / floor:.1f}x as a command",
        ]
    )
