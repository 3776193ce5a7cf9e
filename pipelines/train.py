"""`anomaly-vae train`: load, split, fit, calibrate, evaluate, and register the model in MLflow.

Tables train a :class:`VAEDetector`, image data sets (a folder of images, an MVTec-AD tree, ``.npz`` /
``.npy``; or any data with ``--kind image``) an :class:`ImageVAEDetector`, through the same steps: see
:mod:`pipelines.image_training` for what differs. For a table, the label column and the columns to drop
(``data.drop_columns``) are removed before anything else; the held-out evaluation part and the training
rows are chosen by :func:`pipelines.evaluation.split`. A model
is registered only when calibration succeeded (the calibration set reaches the configured false-positive
rate) and the evaluation floors, when configured, are met; otherwise the run is marked failed and the
error says why. Fit knows the size of its calibration set before it trains, so a set too small for the
false-positive rate refuses the model before the training, not after.
"""

from __future__ import annotations

import logging
import math
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import mlflow
import numpy as np
import pandas as pd

import anomaly_vae
from anomaly_vae import ImageVAEDetector, VAEDetector
from anomaly_vae.base import BaseDetector
from anomaly_vae.calibration import UnresolvableFprWarning
from anomaly_vae.image.datasets import is_image_dataset
from pipelines import evaluation, image_training, plots
from pipelines.config import TrainSettings
from pipelines.data import read_table, split_labels
from pipelines.pyfunc_model import DETECTOR_ARTIFACT, model_signature
from pipelines.registry import configure_tracking, ensure_experiment

logger = logging.getLogger(__name__)
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
REQUIREMENTS = ["torch==2.13.0", "numpy", "pandas", "scikit-learn", "safetensors", "tqdm", "pyarrow"]


class RegistrationRefused(RuntimeError):
    """The model failed calibration or an evaluation floor and was not registered."""


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_name: str
    version: str
    alias: str | None
    metrics: dict[str, float]
    artifacts: Path  # local copies of the logged pictures


class MlflowMetrics:
    """Training callback: logs the losses at every validation check."""

    def on_epoch_end(self, step: int, logs: dict[str, float]) -> None:
        mlflow.log_metrics(logs, step=step)


def train_and_register(
    data: Path,
    model_name: str,
    settings: TrainSettings,
    *,
    alias: str | None = None,
    label_column: str | None = None,
    output: Path | None = None,
    progress: bool = True,
) -> TrainResult:
    kind = data_kind(data, settings.data.kind)
    params = {"random_state": 0, **settings.detector, "progress": progress}
    job = (
        _image_job(data, settings, label_column, params)
        if kind == "image"
        else _tabular_job(data, settings, label_column, params)
    )
    detector, rows = job.detector, job.rows
    tracking_uri = configure_tracking()
    experiment_id = ensure_experiment()
    output = Path(output or tempfile.mkdtemp(prefix="anomaly-vae-"))
    output.mkdir(parents=True, exist_ok=True)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{model_name}") as run:
        tags = {
            "data": str(data),
            "kind": kind,
            "label_column": str(label_column),
            "anomaly_vae": anomaly_vae.__version__,
        }
        mlflow.set_tags(tags)
        mlflow.log_params({f"detector.{k}": v for k, v in detector.get_params().items()})
        mlflow.log_params({f"data.{k}": v for k, v in settings.data.model_dump().items()} | rows.counts)
        mlflow.log_params({f"evaluation.{k}": v for k, v in settings.evaluation.model_dump().items()})
        _fit(detector, rows.train)
        scores = detector.score_frame(rows.test, contributions=kind == "tabular")
        metrics = _calibration_metrics(detector)
        if rows.test_labels is not None:
            metrics |= evaluation.metrics(rows.test_labels, scores, detector.default_score_)
            metrics |= job.extra_metrics(detector)
            evaluation.report(metrics, rows.counts, detector.fpr, settings.data.train_on, job.unit)
            if metrics["test_auroc"] < 0.5:
                mlflow.set_tag("warning", evaluation.inverted_labels_warning(metrics["test_auroc"]))
        mlflow.log_metrics(metrics)
        for path in job.pictures(detector, scores, output):
            mlflow.log_artifact(str(path), artifact_path="plots")
        _check(detector, metrics, settings)
        model_version = register_model(detector, job.example, model_name)
        if alias:
            mlflow.MlflowClient().set_registered_model_alias(model_name, alias, model_version)
    logger.info(
        "registered %s version %s%s (run %s) in %s",
        model_name,
        model_version,
        f" as @{alias}" if alias else "",
        run.info.run_id,
        tracking_uri,
    )
    return TrainResult(run.info.run_id, model_name, model_version, alias, metrics, output)


@dataclass(frozen=True)
class TrainingJob:
    """What one kind of data brings to the job: its detector, the training and evaluation parts, the
    pictures of the run, the metrics beyond the common ones, and the pyfunc model's input example."""

    detector: BaseDetector
    rows: evaluation.Split
    pictures: Callable[[Any, pd.DataFrame, Path], list[Path]]
    example: pd.DataFrame
    unit: str  # what a record is called: "rows", "images"
    extra_metrics: Callable[[Any], dict[str, float]] = lambda detector: {}


def data_kind(data: Path, kind: str) -> str:
    """``kind`` ("tabular" or "image"), or for "auto" the kind of the data set at ``data``: a folder of
    images, an MVTec-AD tree or a ``.npz`` / ``.npy`` file is an image data set, anything else a table."""
    if kind != "auto":
        return kind
    return "image" if is_image_dataset(data) else "tabular"


def _tabular_job(data: Path, settings: TrainSettings, label_column: str | None, params: dict[str, Any]) -> TrainingJob:
    frame, labels = _read(data, settings, label_column)
    detector = VAEDetector(**params)
    detector._check_params()  # bad settings fail before any run is created
    _check_column_options(detector, frame, settings.data.drop_columns)
    rows = evaluation.split(frame, labels, settings.evaluation.test_fraction, settings.data.train_on)
    pictures = partial(_tabular_pictures, labels=rows.test_labels)
    return TrainingJob(detector, rows, pictures, rows.test.head(5), "rows")


def _image_job(data: Path, settings: TrainSettings, label_column: str | None, params: dict[str, Any]) -> TrainingJob:
    if settings.data.drop_columns:
        raise ValueError("data.drop_columns (--drop-columns) applies to tables, not to an image data set")
    detector = ImageVAEDetector(**params)
    detector._check_params()
    parts = image_training.split(data, label_column, settings.evaluation.test_fraction, settings.data.train_on)
    rows = parts.rows
    pictures = partial(image_training.log_pictures, images=rows.test, labels=rows.test_labels)
    masks = parts.test_masks
    extra = (lambda d: image_training.pixel_metrics(d, rows.test, masks)) if masks is not None else (lambda d: {})
    return TrainingJob(detector, rows, pictures, image_training.input_example(rows.test), "images", extra)


def _read(data: Path, settings: TrainSettings, label_column: str | None) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The feature columns (without the label and the columns to drop) and the 0/1 labels, if any."""
    table = read_table(data, max_rows=settings.data.max_rows)
    drop = settings.data.drop_columns
    if label_column is not None and label_column in drop:
        raise ValueError(f"the label column {label_column!r} is also a column to drop (data.drop_columns)")
    unknown = [c for c in drop if c not in table.columns]
    if unknown:
        raise ValueError(
            f"column(s) to drop (data.drop_columns, --drop-columns) not in the data: {unknown}; "
            f"its columns: {list(table.columns)[:20]}"
        )
    return split_labels(table.drop(columns=drop), label_column)


def _check_column_options(detector: VAEDetector, frame: pd.DataFrame, dropped: list[str]) -> None:
    """The columns that detector options name are features of the data."""
    for option in ("condition_on", "categorical_columns"):
        names = getattr(detector, option) or ()
        gone = [c for c in names if c in dropped]
        if gone:
            raise ValueError(f"detector.{option} names column(s) that data.drop_columns drops: {gone}")
        absent = [c for c in names if c not in frame.columns]
        if absent:
            raise ValueError(f"detector.{option} names column(s) not in the data: {absent}")


def _fit(detector: BaseDetector, rows: Any) -> None:
    """Fit on ``rows``. Fit knows the calibration set's size before training starts; one too small to
    resolve the detector's fpr refuses the model right then instead of after the training."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnresolvableFprWarning)
        try:
            detector.fit(rows, callbacks=[MlflowMetrics()])
        except UnresolvableFprWarning as warning:
            _refuse([f"calibration failed, before training: {warning} (setting detector.fpr)"])


def _calibration_metrics(detector: BaseDetector) -> dict[str, float]:
    metrics = {
        "calibration_rows": float(detector.calibration_.size),
        "best_step": float(detector.history_.best_step),
        "best_validation_loss": float(min(detector.history_.validation_loss)),
    }
    for name, value in detector.thresholds().items():
        metrics[f"threshold_{name}"] = value
    return metrics


def _check(detector: BaseDetector, metrics: dict[str, float], settings: TrainSettings) -> None:
    problems = []
    if not math.isfinite(detector.threshold_):
        problems.append(
            f"calibration failed: {detector.calibration_.size} calibration rows cannot reach fpr={detector.fpr} "
            f"(the smallest rate they resolve is {detector.calibration_.smallest_fpr:.3g}); give more data or "
            "raise detector.fpr"
        )
    for name in ("auroc", "aupr"):
        floor = getattr(settings.evaluation, f"min_{name}")
        if floor is not None:
            if f"test_{name}" not in metrics:
                problems.append(f"evaluation.min_{name} is set but no --label-column was given")
            elif metrics[f"test_{name}"] < floor:
                problems.append(f"test {name.upper()} {metrics[f'test_{name}']:.3f} is below min_{name}={floor}")
    if problems:
        _refuse(problems)


def _refuse(problems: list[str]) -> NoReturn:
    mlflow.set_tag("registration", "refused: " + "; ".join(problems))
    raise RegistrationRefused("model not registered: " + "; ".join(problems))


def _tabular_pictures(detector: VAEDetector, scores: pd.DataFrame, output: Path, *, labels: Any) -> list[Path]:
    # Without a label column the plotted rows are a sample of the training data itself (evaluation.split).
    rows = "held-out test rows" if labels is not None else f"{len(scores):,} of the training rows (no label column)"
    plots.loss_curves(detector, output / "loss_curves.png")
    plots.score_distribution(detector, scores, labels, output / "score_distribution.png", rows=rows)
    plots.contribution_summary(scores, output / "contributions.csv", output / "contributions.png", rows=rows)
    return [
        output / name
        for name in ("loss_curves.png", "score_distribution.png", "contributions.csv", "contributions.png")
    ]


def register_model(detector: BaseDetector, example: pd.DataFrame, model_name: str) -> str:
    """Log ``detector`` as the pyfunc model of the active run, registered as a new version of
    ``model_name`` (with its signature and ``example`` as input example); the version."""
    with tempfile.TemporaryDirectory() as folder:
        detector.save(Path(folder) / DETECTOR_ARTIFACT)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_CODE),
            artifacts={DETECTOR_ARTIFACT: str(Path(folder) / DETECTOR_ARTIFACT)},
            signature=model_signature(detector, example),
            input_example=example,
            registered_model_name=model_name,
            pip_requirements=REQUIREMENTS,
        )
    return str(info.registered_model_version)
