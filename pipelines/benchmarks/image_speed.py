"""Image serving and batch-scoring speed, images/s at 28 x 28 and at 256 x 256, one worker.

Images: MNIST-5k digits as they are (28 x 28 grayscale), and the same digits enlarged to 256 x 256 RGB
(bilinear, each channel a different tint) as photo-sized input. Per size one ``ImageVAEDetector`` with
the default network is fitted for ``FIT_STEPS`` steps (scoring costs the same whatever the training) and
registered in a temporary embedded MLflow store.

- Serving: ``mlflow models serve`` of the registered pyfunc (``/invocations``, ``dataframe_split`` with
  the one base64 PNG column, its default of one worker) and ``anomaly-vae serve --workers 1`` (the same
  body on ``/invocations``, and ``/v1/score``), each alone under wrk, K images per request; images/s is
  wrk's requests/s times K, and the server's CPU per image comes from /proc.
- Batch: ``anomaly-vae score`` on a folder of PNG files (read, decode, score, write, manifest), against
  the library alone (``score_frame`` on the images already decoded in memory) in the same run.
"""

from __future__ import annotations

import base64
import os
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from anomaly_vae import ImageVAEDetector
from anomaly_vae.image.pictures import encode_png, write_png
from pipelines.batch import score_file
from pipelines.benchmarks.serving import Run, Server, measure
from pipelines.registry import configure_tracking, ensure_experiment, load_detector
from pipelines.train import register_model

FIT_STEPS = 20
TRAIN_IMAGES = 500


def run_image_speed(
    data: Path, seconds: int = 15, connections: int = 4, per_request: int = 8, batch_images: int = 2000
) -> str:
    """Markdown tables of serving and batch speed for both image sizes (see the module docstring)."""
    with np.load(data) as archive:
        digits = archive["X"][: TRAIN_IMAGES + batch_images]
    lines = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
        configure_tracking()
        for size in (28, 256):
            images = digits if size == 28 else _photos(digits, size)
            uri = _registered(images[:TRAIN_IMAGES], f"speed-{size}", root)
            n = batch_images if size == 28 else batch_images // 10
            lines += [
                f"### {size} x {size}",
                "",
                _serving_table(uri, images[TRAIN_IMAGES], seconds, connections, per_request),
            ]
            lines += ["", _batch_table(uri, images[TRAIN_IMAGES : TRAIN_IMAGES + n], root / f"batch-{size}"), ""]
    return "\n".join(lines)


def _photos(digits: np.ndarray, size: int) -> np.ndarray:
    """The digits enlarged to ``size`` x ``size`` RGB uint8, each channel tinted differently."""
    pixels = torch.from_numpy(digits[:, None].astype(np.float32))
    large = F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    tints = torch.tensor([1.0, 0.8, 0.6])[None, :, None, None]
    rgb = (large[:, None] * tints).clamp(0, 255).round().to(torch.uint8)
    return rgb.permute(0, 2, 3, 1).numpy()


def _registered(images: np.ndarray, name: str, root: Path) -> str:
    detector = ImageVAEDetector(random_state=0, max_steps=FIT_STEPS, device="cpu").fit(images)
    example = pd.DataFrame({"image": [base64.b64encode(encode_png(i)).decode("ascii") for i in images[:2]]})
    with mlflow.start_run(experiment_id=ensure_experiment()):
        version = register_model(detector, example, name)
    return f"models:/{name}/{version}"


def _serving_table(uri: str, image: np.ndarray, seconds: int, connections: int, k: int) -> str:
    files = [base64.b64encode(encode_png(image)).decode("ascii")] * k
    split = {"dataframe_split": {"columns": ["image"], "data": [[f] for f in files]}}
    score = {"images": [{"data": f} for f in files]}
    mlflow_cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager", "local"]
    ours_cmd = [sys.executable, "-m", "serving", "--model", uri, "--workers", "1"]
    servers = [
        Server("mlflow models serve (1 worker)", [*mlflow_cmd, "-p", "8141"], 8141, "/ping", "/invocations", split),
        Server("anomaly-vae serve --workers 1", [*ours_cmd, "--port", "8142"], 8142, "/readyz", "/invocations", split),
        Server("anomaly-vae serve --workers 1", [*ours_cmd, "--port", "8143"], 8143, "/readyz", "/v1/score", score),
    ]
    runs = [measure(server, seconds, connections) for server in servers]
    lines = [
        f"Serving: wrk -t2 -c{connections} -d{seconds}s, {k} base64 PNG images per POST, each server alone in turn.",
        "",
        "| server | endpoint | images/s | p50 ms | p99 ms | errors | server CPU ms / image |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        lines.append(
            f"| {run.server} | {run.endpoint} | {run.requests_per_second * k:,.0f} | {run.p50_ms:.1f} | "
            f"{run.p99_ms:.1f} | {run.errors} | {run.cpu_ms_per_request / k:.2f} |"
        )
    theirs, ours = runs[0], runs[1]
    lines.append(f"\nSame body, one worker each: {_ratio(ours, theirs)}.")
    return "\n".join(lines)


def _ratio(ours: Run, theirs: Run) -> str:
    speed = ours.requests_per_second / max(theirs.requests_per_second, 1e-9)
    cpu = theirs.cpu_ms_per_request / max(ours.cpu_ms_per_request, 1e-9)
    return f"{speed:.1f}x the images/s of `mlflow models serve`, {cpu:.1f}x less CPU per image"


def _batch_table(uri: str, images: np.ndarray, folder: Path) -> str:
    for i, image in enumerate(images):
        write_png(image, folder / "in" / f"{i:05d}.png")
    start = time.perf_counter()
    manifest = score_file(uri, folder / "in", folder / "scores.parquet", progress=False)
    job = time.perf_counter() - start
    detector, _ = load_detector(uri)
    start = time.perf_counter()
    detector.score_frame(images)
    library = time.perf_counter() - start
    n = manifest["rows_scored"]
    return "\n".join(
        [
            f"Batch: {n:,} PNG files, {torch.get_num_threads()} torch threads.",
            "",
            "| what | seconds | images/s |",
            "| --- | --- | --- |",
            f"| `anomaly-vae score` (download, read, decode, score, write) | {job:.2f} | {n / job:,.0f} |",
            f"| library alone: `score_frame` on the decoded images | {library:.2f} | {n / library:,.0f} |",
        ]
    )
