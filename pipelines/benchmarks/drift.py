"""`anomaly-vae benchmark drift`: false-alarm rate of the drift checks on data like the training data, and
detection rate of planted shifts, per reference size and window size, at the default thresholds
(docs/drift.md).

Models: the default detector fitted on n rows of the synthetic mixed-type data set
(:mod:`pipelines.synthetic`), for several n (the size of the reference) and seeds. Trials without drift:
windows drawn from the model's own training rows (with replacement), the whole training set once, and
non-overlapping windows of fresh rows from the same generator. Shifts: the same fresh windows with one
column moved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from anomaly_vae import VAEDetector
from anomaly_vae.profile import DriftReport
from pipelines.synthetic import mixed_frame

DURATION_SD = 3.17  # standard deviation of "duration" in the generator
SHIFTS: dict[str, Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]] = {
    "duration +0.25 sd": lambda f, rng: f.assign(duration=f["duration"] + 0.25 * DURATION_SD),
    "duration +0.5 sd": lambda f, rng: f.assign(duration=f["duration"] + 0.5 * DURATION_SD),
    "duration +1 sd": lambda f, rng: f.assign(duration=f["duration"] + DURATION_SD),
    "channel 50/50 -> 65/35": lambda f, rng: f.assign(channel=np.where(rng.random(len(f)) < 0.65, "web", "store")),
    "channel 50/50 -> 80/20": lambda f, rng: f.assign(channel=np.where(rng.random(len(f)) < 0.8, "web", "store")),
}


def _markdown(frame: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + " --- |" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _alarm_row(reports: list[DriftReport]) -> dict[str, float]:
    alarms = [set(r.alarms) for r in reports]
    return {
        "trials": len(reports),
        "trials with any alarm": int(sum(bool(a) for a in alarms)),
        "feature": int(sum(any(x.startswith("feature:") for x in a) for a in alarms)),
        "score": int(sum("score" in a for a in alarms)),
        "latent": int(sum("latent" in a for a in alarms)),
        "outlier rate": int(sum("outlier_rate" in a for a in alarms)),
        "smallest feature p-value": min(f.p_value for r in reports for f in r.features),
    }


def _null_rows(detector: VAEDetector, train: pd.DataFrame, fresh: pd.DataFrame, windows: Sequence[int]) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = [{"data": "the training set, whole", "window": len(train), **_alarm_row([detector.drift(train)])}]
    for window in windows:
        bootstrap = [detector.drift(train.iloc[rng.integers(0, len(train), window)]) for _ in range(100)]
        rows.append({"data": "training rows, resampled", "window": window, **_alarm_row(bootstrap)})
        slices = [detector.drift(fresh.iloc[i : i + window]) for i in range(0, 100 * window, window)]
        rows.append({"data": "fresh rows", "window": window, **_alarm_row(slices)})
    return rows


def _shift_rows(detector: VAEDetector, fresh: pd.DataFrame, windows: Sequence[int], trials: int) -> list[dict]:
    rows = []
    for window in windows:
        rng = np.random.default_rng(window)
        for name, shift in SHIFTS.items():
            target = name.split()[0]
            reports = [
                detector.drift(shift(fresh.iloc[i : i + window].copy(), rng)) for i in range(0, trials * window, window)
            ]
            rows.append(
                {
                    "shift": name,
                    "window": window,
                    "flagged on the feature": np.mean([f"feature:{target}" in r.alarms for r in reports]),
                    "other features flagged": np.mean([bool(set(r.drifted_features) - {target}) for r in reports]),
                }
            )
    return rows


def run_drift_benchmark(
    train_rows: Sequence[int] = (300, 3000),
    windows: Sequence[int] = (40, 250, 1000),
    seeds: Sequence[int] = (0, 1),
    shifted_trials: int = 20,
) -> str:
    """Markdown tables: alarms on data without drift (100 trials per kind and window), and detection of
    planted shifts (``shifted_trials`` windows per shift, window and model)."""
    torch.set_num_threads(1)
    null_rows, shift_rows = [], []
    fresh = mixed_frame(100 * max(windows), seed=100)[0]
    for n in train_rows:
        for seed in seeds:
            train = mixed_frame(n, seed=seed)[0]
            detector = VAEDetector(random_state=seed).fit(train)
            model = {"training rows": n, "model seed": seed}
            null_rows += [{**model, **row} for row in _null_rows(detector, train, fresh, windows)]
            shift_rows += [{**model, **row} for row in _shift_rows(detector, fresh, windows, shifted_trials)]
    shifts = pd.DataFrame(shift_rows).groupby(["training rows", "shift", "window"], sort=False).mean()
    return "\n".join(
        [
            "Trials without drift (every row: one model; an alarm in any statistic counts):",
            "",
            _markdown(pd.DataFrame(null_rows)),
            "",
            f"Planted shifts: share of {shifted_trials} windows per shift, window and model flagged, mean over "
            f"model seeds {tuple(seeds)}:",
            "",
            _markdown(shifts.drop(columns="model seed").reset_index()),
            "",
        ]
    )


IMAGE_SHIFTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "brightness +10%": lambda x: np.clip(x.astype(np.int16) + 26, 0, 255).astype(np.uint8),
    "brightness +20%": lambda x: np.clip(x.astype(np.int16) + 51, 0, 255).astype(np.uint8),
    "contrast x0.8": lambda x: (x * 0.8).round().astype(np.uint8),
    "blur 3 x 3": lambda x: _box_blur(x),
}


def _box_blur(images: np.ndarray) -> np.ndarray:
    padded = np.pad(images.astype(np.float32), ((0, 0), (1, 1), (1, 1)), mode="edge")
    height, width = images.shape[1:]
    total = sum(padded[:, i : i + height, j : j + width] for i in range(3) for j in range(3))
    return (total / 9).round().astype(np.uint8)


def run_image_drift_benchmark(
    data: str, digits: Sequence[int] = (3, 8), windows: Sequence[int] = (50, 200), trials: int = 100
) -> str:
    """Markdown tables for :class:`ImageVAEDetector` on one-class MNIST-5k: alarms without drift and
    detection of planted shifts, per digit and window.

    Per digit, the model is fitted on half of that digit's images (seed 0); the other half is the pool
    of fresh images. Windows without drift: ``trials`` draws (with replacement) from the training images
    and from the fresh pool, and the training set whole. Shifted windows: ``trials // 5`` draws from the
    fresh pool with the shift applied. Scores of the unshifted images are computed once (a score does
    not depend on the batch it is computed in) and passed to ``drift``."""
    from anomaly_vae import ImageVAEDetector

    torch.set_num_threads(1)
    with np.load(data) as archive:
        images, labels = archive["X"], archive["y"]
    null_rows, shift_rows = [], []
    for digit in digits:
        mine = np.random.default_rng(0).permutation(images[labels == digit])
        train, fresh = mine[: len(mine) // 2], mine[len(mine) // 2 :]
        detector = ImageVAEDetector(random_state=0, device="cpu").fit(train)
        scores = {name: detector.decision_function(pool) for name, pool in (("train", train), ("fresh", fresh))}
        rng = np.random.default_rng(digit)
        null_rows.append(
            {"digit": digit, "data": "the training set, whole", "window": len(train)}
            | _alarm_row([detector.drift(train, scores=scores["train"])])
        )
        for window in windows:
            for name, pool in (("train", train), ("fresh", fresh)):
                draws = [rng.integers(0, len(pool), window) for _ in range(trials)]
                reports = [detector.drift(pool[i], scores=scores[name][i]) for i in draws]
                kind = "training images, resampled" if name == "train" else "fresh images, resampled"
                null_rows.append({"digit": digit, "data": kind, "window": window} | _alarm_row(reports))
            for shift, change in IMAGE_SHIFTS.items():
                reports = [
                    detector.drift(change(fresh[rng.integers(0, len(fresh), window)])) for _ in range(trials // 5)
                ]
                shift_rows.append(
                    {
                        "digit": digit,
                        "shift": shift,
                        "window": window,
                        "windows flagged": np.mean([r.drifted for r in reports]),
                        "image statistic flagged": np.mean([bool(r.drifted_features) for r in reports]),
                        "score flagged": np.mean(["score" in r.alarms for r in reports]),
                    }
                )
    return "\n".join(
        [
            "Windows without drift (an alarm in any statistic counts):",
            "",
            _markdown(pd.DataFrame(null_rows)),
            "",
            f"Planted shifts: share of {trials // 5} windows flagged:",
            "",
            _markdown(pd.DataFrame(shift_rows)),
            "",
        ]
    )
