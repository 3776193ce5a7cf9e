"""Pictures logged with a training run: loss curves, score distribution with thresholds, contributions."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

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


BINS = 60


def score_distribution(
    detector: VAEDetector, scores: pd.DataFrame, labels: np.ndarray | None, path: Path, *, rows: str = "scored rows"
) -> None:
    """Histogram of the default score of ``rows`` (what the scored rows are, e.g. "held-out test rows") with
    the calibrated thresholds at 1%, 5% and fpr; see :func:`score_figure`."""
    fig = score_figure(detector, scores, labels, rows=rows)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def score_figure(
    detector: VAEDetector, scores: pd.DataFrame, labels: np.ndarray | None, *, rows: str = "scored rows"
) -> Figure:
    """The score histogram. Every score is drawn: the bins span the 0.5th to 99.5th percentiles, widened to
    take in every threshold line; scores beyond that go in hatched underflow / overflow bars at the ends,
    labelled with their count and extreme value, so a score above a threshold always lies right of its
    line. Without labels the bars count rows; with 0/1 labels each class is a share of its rows."""
    name = detector.default_score_
    values = scores[name].to_numpy(dtype=np.float64)
    thresholds = {}
    for fpr in sorted({0.01, 0.05, detector.fpr}):
        threshold = detector.calibration_.threshold(name, fpr)
        if np.isfinite(threshold):
            thresholds[fpr] = threshold
    low, high = _main_range(values, list(thresholds.values()))
    edges = np.linspace(low, high, BINS + 1)
    width = edges[1] - edges[0]
    groups = (
        [(values, rows)]
        if labels is None
        else [(values[labels == k], text) for k, text in ((0, "normal"), (1, "anomaly"))]
    )
    fig, ax = plt.subplots(figsize=(9, 4))
    for group, text in groups:
        weight = 1.0 if labels is None else 1.0 / max(len(group), 1)
        inside = group[(group >= low) & (group <= high)]
        line = ax.stairs(np.histogram(inside, edges)[0] * weight, edges, fill=True, alpha=0.6, label=text)
        colour = line.get_facecolor()
        # end bars: one bin width outside the regular bins, two bins wide, hatched and named on the plot
        prefix = "" if labels is None else f"{text}: "
        below, above = group[group < low], group[group > high]
        for outside, centre, where in ((below, low - 2 * width, "below"), (above, high + 2 * width, "above")):
            if len(outside):
                edge, extreme = (
                    (low, f"min {outside.min():.4g}") if where == "below" else (high, f"max {outside.max():.4g}")
                )
                label = f"{prefix}{len(outside):,} {where} {edge:.4g} ({extreme})"
                ax.bar(centre, len(outside) * weight, 2 * width, color=colour, hatch="//", label=label)
                ax.text(centre, len(outside) * weight, extreme, ha="center", va="bottom", fontsize="x-small")
    styles = {0.01: "-", 0.05: "--"} | {detector.fpr: ":"}
    for fpr, threshold in thresholds.items():
        ax.axvline(threshold, color="black", linestyle=styles[fpr], label=f"threshold at {fpr:g} FPR")
    ylabel = "rows" if labels is None else "share of the class's rows"
    ax.set(xlabel=f"{name} (nats)", ylabel=ylabel, title=f"Score distribution: {rows}")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def _main_range(values: np.ndarray, thresholds: list[float]) -> tuple[float, float]:
    """The span of the regular bins: the 0.5th to 99.5th percentiles, widened to every threshold; stretched
    to the minimum or maximum score when that is less than half the span away (no end bar needed then)."""
    low, high = np.percentile(values, [0.5, 99.5])
    low, high = min([low, *thresholds]), max([high, *thresholds])
    span = max(high - low, 1e-9)
    if values.min() >= low - span / 2:
        low = values.min()
    if values.max() <= high + span / 2:
        high = values.max()
    return float(low), float(max(high, low + 1e-9))


def contribution_summary(
    scores: pd.DataFrame, path_csv: Path, path_png: Path, *, rows: str = "scored rows"
) -> pd.DataFrame:
    """Mean contribution of each column over all ``rows`` and over the flagged ones among them."""
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
    ax.barh(top.index, top["mean_all"], label="all rows")
    if len(flagged):
        ax.barh(top.index, top["mean_flagged"], alpha=0.5, label="flagged rows")
    ax.set(xlabel="mean reconstruction NLL (nats)", title=f"Per-column contributions: {rows}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path_png, dpi=110)
    plt.close(fig)
    return summary
