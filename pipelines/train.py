"""`anomaly-vae train`: load, split, fit, calibrate, evaluate, and register the model in MLflow.

The label column and the columns to drop (``data.drop_columns``) are removed before anything else; the
held-out evaluation part and the training rows are chosen by :func:`pipelines.evaluation.split`. A model
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import mlflow
import numpy as np
import pandas as pd

import anomaly_vae
from anomaly_vae import VAEDetector
from anomaly_vae.calibration import UnresolvableFprWarning
from pipelines import evaluation, plots
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
    frame, labels = _read(data, settings, label_column)
    params = {"random_state": 0, **settings.detector, "progress": progress}
    detector = VAEDetector(**params)
    detector._check_params()  # bad settings fail before any run is created
    _check_column_options(detector, frame, settings.data.drop_columns)
    rows = evaluation.split(frame, labels, settings.evaluation.test_fraction, settings.data.train_on)
    tracking_uri = configure_tracking()
    experiment_id = ensure_experiment()
    output = Path(output or tempfile.mkdtemp(prefix="anomaly-vae-"))
    output.mkdir(parents=True, exist_ok=True)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{model_name}") as run:
        mlflow.set_tags({"data": str(data), "label_column": str(label_column), "anomaly_vae": anomaly_vae.__version__})
        mlflow.log_params({f"detector.{k}": v for k, v in detector.get_params().items()})
        mlflow.log_params({f"data.{k}": v for k, v in settings.data.model_dump().items()} | rows.counts)
        mlflow.log_params({f"evaluation.{k}": v for k, v in settings.evaluation.model_dump().items()})
        _fit(detector, rows.train)
        scores = detector.score_frame(rows.test, contributions=True)
        metrics = _calibration_metrics(detector)
        if rows.test_labels is not None:
            metrics |= evaluation.metrics(rows.test_labels, scores, detector.default_score)
            evaluation.report(metrics, rows.counts, detector.fpr, settings.data.train_on)
            if metrics["test_auroc"] < 0.5:
                mlflow.set_tag("warning", evaluation.inverted_labels_warning(metrics["test_auroc"]))
        mlflow.log_metrics(metrics)
        _log_pictures(detector, scores, rows.test_labels, output)
        _check(detector, metrics, settings)
        model_version = _log_model(detector, rows.test, model_name)
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


def _fit(detector: VAEDetector, rows: pd.DataFrame) -> None:
    """Fit on ``rows``. Fit knows the calibration set's size before training starts; one too small to
    resolve the detector's fpr refuses the model right then instead of after the training."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnresolvableFprWarning)
        try:
            detector.fit(rows, callbacks=[MlflowMetrics()])
        except UnresolvableFprWarning as warning:
            _refuse([f"calibration failed, before training: {warning} (setting detector.fpr)"])


def _calibration_metrics(detector: VAEDetector) -> dict[str, float]:
    metrics = {
        "calibration_rows": float(detector.calibration_.size),
        "best_step": float(detector.history_.best_step),
        "best_validation_loss": float(min(detector.history_.validation_loss)),
    }
    for name, value in detector.thresholds().items():
        metrics[f"threshold_{name}"] = value
    return metrics


def _check(detector: VAEDetector, metrics: dict[str, float], settings: TrainSettings) -> None:
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


def _log_pictures(detector: VAEDetector, scores: pd.DataFrame, labels: Any, output: Path) -> None:
    # Without a label column the plotted rows are a sample of the training data itself (evaluation.split).
    rows = "held-out test rows" if labels is not None else f"{len(scores):,} of the training rows (no label column)"
    plots.loss_curves(detector, output / "loss_curves.png")
    plots.score_distribution(detector, scores, labels, output / "score_distribution.png", rows=rows)
    plots.contribution_summary(scores, output / "contributions.csv", output / "contributions.png", rows=rows)
    for name in ("loss_curves.png", "score_distribution.png", "contributions.csv", "contributions.png"):
        mlflow.log_artifact(str(output / name), artifact_path="plots")


def _log_model(detector: VAEDetector, sample: pd.DataFrame, model_name: str) -> str:
    example = sample.head(5)
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
