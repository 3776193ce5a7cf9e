"""Evaluation of a training run on labelled data: the held-out split, the metrics, and the lines the
command prints about them.

With a label column (1 = anomaly), a stratified share of the rows (``evaluation.test_fraction``) is held
out, so the evaluation sees normal and anomalous rows in the data's proportions. The model learns from
the other rows: by default only from those labelled normal (``data.train_on: normal``), or from every
one of them (``all``: the labels serve the evaluation only, and the anomalies among the training rows
contaminate them as they would unlabelled data). Without labels nothing is evaluated, and the pictures
show up to 5,000 of the training rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split

logger = logging.getLogger(__name__)
PICTURE_ROWS = 5000  # training rows the pictures show when there are no labels


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame  # the rows the model learns from
    test: pd.DataFrame  # held-out rows; without labels, a sample of the training rows
    test_labels: np.ndarray | None
    counts: dict[str, Any]  # the row counts, logged as MLflow parameters


def split(frame: pd.DataFrame, labels: np.ndarray | None, test_fraction: float, train_on: str) -> Split:
    """The training rows and the evaluation rows of ``frame``; raises before any training when the held-out
    part could not hold both classes."""
    if labels is None:
        test = frame.sample(min(len(frame), PICTURE_ROWS), random_state=0)
        return Split(frame, test, None, {"rows": len(frame), "train_rows": len(frame), "test_rows": len(test)})
    normal, anomalous = np.bincount(labels, minlength=2)
    if min(normal, anomalous) < 2:
        raise ValueError(
            f"the label column has {normal} normal and {anomalous} anomalous row(s): the evaluation needs at "
            "least 2 of each (1 = anomaly)"
        )
    rest, test, rest_labels, test_labels = train_test_split(
        frame, labels, test_size=test_fraction, stratify=labels, random_state=0
    )
    held_out = np.bincount(test_labels, minlength=2)
    if held_out.min() == 0:
        raise ValueError(
            f"the held-out part (evaluation.test_fraction={test_fraction}) has {held_out[0]} normal and "
            f"{held_out[1]} anomalous rows: the evaluation needs both; raise evaluation.test_fraction"
        )
    train = rest[rest_labels == 0] if train_on == "normal" else rest
    counts = {
        "rows": len(frame),
        "train_rows": len(train),
        "train_anomalous_rows": int(rest_labels.sum()) if train_on == "all" else 0,
        "test_rows": len(test),
        "test_normal_rows": int(held_out[0]),
        "test_anomalous_rows": int(held_out[1]),
    }
    return Split(train, test, test_labels, counts)


def metrics(labels: np.ndarray, scores: pd.DataFrame, score: str) -> dict[str, float]:
    """AUROC and AUPR of the score ``score``; precision, recall and false-positive rate of ``is_outlier``."""
    flagged = scores["is_outlier"].to_numpy()
    return {
        "test_auroc": float(roc_auc_score(labels, scores[score])),
        "test_aupr": float(average_precision_score(labels, scores[score])),
        "test_precision": float(precision_score(labels, flagged, zero_division=0)),
        "test_recall": float(recall_score(labels, flagged, zero_division=0)),
        "test_false_positive_rate": float(flagged[labels == 0].mean()),
        "test_flagged_normal_rows": float(flagged[labels == 0].sum()),
        "test_flagged_anomalous_rows": float(flagged[labels == 1].sum()),
    }


def report(values: dict[str, float], counts: dict[str, Any], fpr: float, train_on: str, unit: str = "rows") -> None:
    """Log the evaluation (two lines), and a warning when the test AUROC is below chance. ``unit``: what
    the records are ("rows", "images")."""
    learned = f"{unit} labelled normal" if train_on == "normal" else f"{unit}, anomalies included (train_on: all)"
    normal, anomalous = counts["test_normal_rows"], counts["test_anomalous_rows"]
    logger.info(
        f"evaluation on {counts['test_rows']:,} held-out {unit} ({normal:,} normal, {anomalous:,} anomalous); "
        f"the model learned from {counts['train_rows']:,} {learned}:"
    )
    logger.info(
        f"  AUROC {values['test_auroc']:.3f}, AUPR {values['test_aupr']:.3f}; is_outlier at fpr={fpr:g}: "
        f"precision {values['test_precision']:.3f}, recall {values['test_recall']:.3f} (flagged "
        f"{values['test_flagged_anomalous_rows']:,.0f} of {anomalous:,} anomalous and "
        f"{values['test_flagged_normal_rows']:,.0f} of {normal:,} normal {unit})"
    )
    if values["test_auroc"] < 0.5:
        logger.warning("WARNING: %s", inverted_labels_warning(values["test_auroc"]))


def inverted_labels_warning(auroc: float) -> str:
    return (
        f"test AUROC {auroc:.3f} is below 0.5: rows labelled 1 score as less anomalous than rows labelled 0. "
        "Labels inverted? 1 must mean anomaly"
    )
