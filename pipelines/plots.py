"""Pictures logged with a training run: loss curves, score distribution with thresholds, contributions."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from anomaly_vae import VAEDetector


def loss_curves(detector: VAEDetector, path: Path) -> None:
    history = detector.history_
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(history.steps, history.train_loss, label="training")
    ax.plot(history.steps, history.validation_loss, label="validation")
    ax.axvline(history.best_step, color="grey", linestyle=":", label=f"kept (step {history.best_step})")
    ax.set(xlabel="step", ylabel="negative ELBO (nats per record)", title="Training")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def score_distribution(detector: VAEDetector, scores: pd.DataFrame, labels: np.ndarray | None, path: Path) -> None:
    """Histogram of the default score on held-out rows with the calibrated thresholds at 1%, 5% and fpr."""
    name = detector.default_score
    values = scores[name].to_numpy()
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(np.percentile(values, 0.5), np.percentile(values, 99.8), 60)
    if labels is None:
        ax.hist(np.clip(values, bins[0], bins[-1]), bins=bins, alpha=0.8, label="held-out rows")
    else:
        for label, text in ((0, "normal"), (1, "anomaly")):
            ax.hist(np.clip(values[labels == label], bins[0], bins[-1]), bins=bins, alpha=0.6, density=True, label=text)
    styles = {0.01: "-", 0.05: "--"} | {detector.fpr: ":"}
    for fpr, style in sorted(styles.items()):
        threshold = detector.calibration_.threshold(name, fpr)
        if np.isfinite(threshold):
            ax.axvline(threshold, color="black", linestyle=style, label=f"threshold at {fpr:g} FPR")
    ax.set(xlabel=f"{name} (nats)", ylabel="rows" if labels is None else "share of rows", title="Score distribution")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def contribution_summary(scores: pd.DataFrame, path_csv: Path, path_png: Path) -> pd.DataFrame:
    """Mean contribution of each column overall and among the flagged rows."""
    columns = [c for c in scores.columns if c.startswith("contribution_")]
    flagged = scores[scores["is_outlier"]]
    summary = pd.DataFrame(
        {
            "mean_all": scores[columns].mean(),
            "mean_flagged": flagged[columns].mean() if len(flagged) else np.nan,
        }
    )
    summary.index = [c.removeprefix("contribution_") for c in columns]
    summary = summary.sort_values("mean_all", ascending=False)
    summary.to_csv(path_csv, index_label="column")
    top = summary.head(20).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, max(3, 0.3 * len(top) + 1)))
    ax.barh(top.index, top["mean_all"], label="all held-out rows")
    if len(flagged):
        ax.barh(top.index, top["mean_flagged"], alpha=0.5, label="flagged rows")
    ax.set(xlabel="mean reconstruction NLL (nats)", title="Per-column contributions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path_png, dpi=110)
    plt.close(fig)
    return summary
