"""`anomaly-vae train`: load, split, fit, calibrate, evaluate, and register the model in MLflow.

A model is registered only when calibration succeeded (the calibration set reaches the configured
false-positive rate) and the evaluation floors, when configured, are met; otherwise the run is marked
failed and the error says why.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split

import anomaly_vae
from anomaly_vae import VAEDetector
from pipelines import plots
from pipelines.config import TrainSettings
from pipelines.data import read_table, split_labels
from pipelines.pyfunc_model import DETECTOR_ARTIFACT
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
    frame, labels = split_labels(read_table(data, max_rows=settings.data.max_rows), label_column)
    params = {"random_state": 0, **settings.detector, "progress": progress}
    detector = VAEDetector(**params)
    detector._check_params()  # bad settings fail before any run is created
    absent = [c for c in detector.condition_on or () if c not in frame.columns]
    if absent:
        raise ValueError(f"detector.condition_on names column(s) not in the data: {absent}")
    if labels is None:
        train, test, test_labels = frame, frame.sample(min(len(frame), 5000), random_state=0), None
    else:
        train, test, _, test_labels = train_test_split(
            frame, labels, test_size=settings.evaluation.test_fraction, stratify=labels, random_state=0
        )
    tracking_uri = configure_tracking()
    experiment_id = ensure_experiment()
    output = Path(output or tempfile.mkdtemp(prefix="anomaly-vae-"))
    output.mkdir(parents=True, exist_ok=True)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{model_name}") as run:
        mlflow.set_tags({"data": str(data), "label_column": str(label_column), "anomaly_vae": anomaly_vae.__version__})
        mlflow.log_params({f"detector.{k}": v for k, v in detector.get_params().items()})
        mlflow.log_params({"rows": len(frame), "train_rows": len(train), "test_rows": len(test)})
        mlflow.log_params({f"evaluation.{k}": v for k, v in settings.evaluation.model_dump().items()})
        detector.fit(train, callbacks=[MlflowMetrics()])
        scores = detector.score_frame(test, contributions=True)
        metrics = _calibration_metrics(detector)
        if test_labels is not None:
            metrics |= _evaluation_metrics(test_labels, scores, detector.default_score)
        mlflow.log_metrics(metrics)
        _log_pictures(detector, scores, test_labels, output)
        _check(detector, metrics, settings)
        model_version = _log_model(detector, test, model_name)
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


def _calibration_metrics(detector: VAEDetector) -> dict[str, float]:
    metrics = {
        "calibration_rows": float(detector.calibration_.size),
        "best_step": float(detector.history_.best_step),
        "best_validation_loss": float(min(detector.history_.validation_loss)),
    }
    for name, value in detector.thresholds().items():
        metrics[f"threshold_{name}"] = value
    return metrics


def _evaluation_metrics(labels: np.ndarray, scores: pd.DataFrame, score: str) -> dict[str, float]:
    if labels.min() == labels.max():
        raise ValueError("the evaluation split holds only one class: AUROC needs normal and anomalous rows")
    flagged = scores["is_outlier"].to_numpy()
    return {
        "test_auroc": float(roc_auc_score(labels, scores[score])),
        "test_aupr": float(average_precision_score(labels, scores[score])),
        "test_precision": float(precision_score(labels, flagged, zero_division=0)),
        "test_recall": float(recall_score(labels, flagged, zero_division=0)),
        "test_false_positive_rate": float(flagged[labels == 0].mean()),
    }


def _check(detector: VAEDetector, metrics: dict[str, float], settings: TrainSettings) -> None:
    problems = []
    if not math.isfinite(detector.threshold_):
        problems.append(
            f"calibration failed: {detector.calibration_.size} calibration rows cannot reach fpr={detector.fpr} "
            f"(need at least {math.ceil(1 / detector.fpr) - 1}); give more data or raise detector.fpr"
        )
    for name in ("auroc", "aupr"):
        floor = getattr(settings.evaluation, f"min_{name}")
        if floor is not None:
            if f"test_{name}" not in metrics:
                problems.append(f"evaluation.min_{name} is set but no --label-column was given")
            elif metrics[f"test_{name}"] < floor:
                problems.append(f"test {name.upper()} {metrics[f'test_{name}']:.3f} is below min_{name}={floor}")
    if problems:
        mlflow.set_tag("registration", "refused: " + "; ".join(problems))
        raise RegistrationRefused("model not registered: " + "; ".join(problems))


def _log_pictures(detector: VAEDetector, scores: pd.DataFrame, labels: Any, output: Path) -> None:
    # Without a label column the plotted rows are a sample of the training data itself (see train_and_register).
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
            signature=infer_signature(example, detector.score_frame(example), params={"fpr": detector.fpr}),
            input_example=example,
            registered_model_name=model_name,
            pip_requirements=REQUIREMENTS,
        )
    return str(info.registered_model_version)
