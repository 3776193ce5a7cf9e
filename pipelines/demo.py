"""`make demo`: train, calibrate, evaluate and register a detector in the embedded MLflow store, then
score held-out data with the registered model, on real data sets that ship with scikit-learn: a table,
then images.

Table: the Wisconsin breast cancer data (569 tumours, 30 numeric measurements). Benign tumours are the
"normal" class. The training file holds 70% of the benign tumours plus malignant ones making up 3% of
it, as unlabelled contamination the way real training data has it (the label column is there for the
pipeline's evaluation only, never a feature). The held-out file mixes unseen benign and malignant ones.

Images: scikit-learn's handwritten digits (8 x 8 pixels), written as PNG files in the MVTec-AD layout
that inspection data sets use: 70% of the zeros are the "good parts" of ``train/good/``; ``test/good/``
holds the other zeros and ``test/<digit>/`` as many other digits, the "defects" the evaluation counts.
The registered image model then scores the ``test/`` images again, through its registry URI, as a batch
job over a folder.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.metrics import average_precision_score, roc_auc_score

from anomaly_vae.image.pictures import write_png
from anomaly_vae.registry import EMBEDDED_DB
from pipelines.batch import score_file
from pipelines.config import validate
from pipelines.registry import EMBEDDED_ARTIFACTS, load_detector
from pipelines.sample import sample_to_file
from pipelines.train import train_and_register

logger = logging.getLogger("anomaly_vae.demo")
MODEL_NAME, ALIAS = "breast-cancer-demo", "champion"
IMAGE_MODEL_NAME = "digits-demo"


def demo_frames(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training frame, held-out frame); both carry the ``malignant`` label column."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["malignant"] = (frame.pop("target") == 0).astype(int)
    benign = frame[frame.malignant == 0].sample(frac=1.0, random_state=seed)
    malignant = frame[frame.malignant == 1].sample(frac=1.0, random_state=seed)
    n_train = int(0.7 * len(benign))
    n_contamination = round(0.03 * n_train / 0.97)
    train = pd.concat([benign.iloc[:n_train], malignant.iloc[:n_contamination]])
    held_out = pd.concat([benign.iloc[n_train:], malignant.iloc[n_contamination:]])
    return train.reset_index(drop=True), held_out.reset_index(drop=True)


def write_digit_tree(root: Path, seed: int = 0) -> dict[str, int]:
    """scikit-learn's digits as an MVTec-AD tree of PNG files (see the module docstring), and the same
    test images in one flat folder ``held_out/`` (``good_<n>.png``, ``digit<d>_<n>.png``) for the batch job.
    Returns the label (1 = not a zero) of each held-out file."""
    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    rng = np.random.default_rng(seed)
    zeros = rng.permutation(np.flatnonzero(digits.target == 0))
    others = rng.permutation(np.flatnonzero(digits.target != 0))
    n_train = int(0.7 * len(zeros))
    for index in zeros[:n_train]:
        write_png(images[index], root / "train" / "good" / f"{index:04d}.png")
    labels = {}
    for index in [*zeros[n_train:], *others[: len(zeros) - n_train]]:
        digit = int(digits.target[index])
        folder = "good" if digit == 0 else f"digit{digit}"
        write_png(images[index], root / "test" / folder / f"{index:04d}.png")
        name = f"{folder}_{index:04d}.png"
        write_png(images[index], root / "held_out" / name)
        labels[name] = int(digit != 0)
    return labels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("demo_output"), help="folder for the demo's files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    tabular_demo(out)
    image_demo(out / "digits")
    logger.info("")
    logger.info("MLflow store: %s (runs and registry), %s/ (artifacts)", EMBEDDED_DB, EMBEDDED_ARTIFACTS)
    logger.info(
        "MLflow UI:   .venv/bin/mlflow ui --backend-store-uri sqlite:///%s   then open http://127.0.0.1:5000",
        EMBEDDED_DB,
    )


def tabular_demo(out: Path) -> None:
    train, held_out = demo_frames()
    train.to_csv(out / "train.csv", index=False)
    held_out.drop(columns="malignant").to_csv(out / "held_out.csv", index=False)
    # A few hundred rows: 1% would need >= 99 calibration rows, so the demo flags at 5%. The malignant rows
    # of the training file stay in training (train_on: all) as the contamination the demo is about.
    settings = validate({"detector": {"fpr": 0.05}, "data": {"train_on": "all"}, "evaluation": {"test_fraction": 0.25}})
    result = train_and_register(
        out / "train.csv", MODEL_NAME, settings, alias=ALIAS, label_column="malignant", output=out / "plots"
    )
    uri = f"models:/{MODEL_NAME}@{ALIAS}"
    score_file(uri, out / "held_out.csv", out / "scores.csv", contributions=3, progress=False)
    scores = pd.read_csv(out / "scores.csv")
    fidelity = sample_to_file(uri, 2000, out / "samples.csv", compare=out / "train.csv", report=out / "fidelity.png")

    labels = held_out["malignant"].to_numpy() == 1
    score = scores["neg_log_likelihood"]
    worst = scores.loc[score.idxmax()]
    logger.info("")
    logger.info("registered %s version %s as @%s (run %s)", MODEL_NAME, result.version, ALIAS, result.run_id)
    logger.info("scored %s with %s: %d benign, %d malignant", out / "held_out.csv", uri, (~labels).sum(), labels.sum())
    _log_quality(labels, score.to_numpy(), scores["is_outlier"].to_numpy(), ("malignant", "benign"))
    logger.info(
        "  most anomalous record's top columns: %s",
        ", ".join(f"{worst[f'top{k}_column']} ({worst[f'top{k}_nats']:.1f} nats)" for k in (1, 2, 3)),
    )
    columns = pd.DataFrame(fidelity["fidelity"]["columns"])
    logger.info(
        "  2000 samples vs training data: median KS %.3f (worst %.3f, %s), max correlation difference %.3f",
        columns["value"].median(),
        columns["value"].max(),
        columns.loc[columns["value"].idxmax(), "column"],
        fidelity["fidelity"]["max_correlation_difference"],
    )
    logger.info("results:     %s", out / "scores.csv")
    logger.info("samples:     %s (compared with the training data in %s)", out / "samples.csv", out / "fidelity.png")
    logger.info("plots:       %s", out / "plots")


def image_demo(out: Path) -> None:
    labels = write_digit_tree(out)
    # ~120 training images leave ~25 for calibration: 5% is the smallest fpr they resolve well
    settings = validate({"detector": {"fpr": 0.05}, "data": {"kind": "image"}})
    result = train_and_register(out, IMAGE_MODEL_NAME, settings, alias=ALIAS, output=out / "plots")
    uri = f"models:/{IMAGE_MODEL_NAME}@{ALIAS}"
    score_file(uri, out / "held_out", out / "scores.csv", progress=False)
    scores = pd.read_csv(out / "scores.csv")
    sample_to_file(uri, 32, out / "samples.png")
    truth = scores["name"].map(labels).to_numpy() == 1
    logger.info("")
    logger.info("registered %s version %s as @%s (run %s)", IMAGE_MODEL_NAME, result.version, ALIAS, result.run_id)
    logger.info("scored %s with %s: %d zeros, %d other digits", out / "held_out", uri, (~truth).sum(), truth.sum())
    default = scores[load_detector(uri)[0].default_score_].to_numpy()
    _log_quality(truth, default, scores["is_outlier"].to_numpy(), ("other digits", "zeros"))
    logger.info("results:     %s", out / "scores.csv")
    logger.info("samples:     %s (what the model thinks a zero looks like)", out / "samples.png")
    logger.info("plots:       %s (most and least anomalous test images, maps)", out / "plots")


def _log_quality(labels: np.ndarray, score: np.ndarray, flagged: np.ndarray, names: tuple[str, str]) -> None:
    """AUROC, AUPR and what was flagged, ``names`` = (anomalous, normal) records."""
    logger.info("  AUROC %.3f, AUPR %.3f", roc_auc_score(labels, score), average_precision_score(labels, score))
    logger.info(
        "  flagged at 5%% FPR: %d of %d %s, %d of %d %s",
        flagged[labels].sum(),
        labels.sum(),
        names[0],
        flagged[~labels].sum(),
        (~labels).sum(),
        names[1],
    )


if __name__ == "__main__":
    main()
