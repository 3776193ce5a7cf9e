"""The training run's pictures: truthful labels, and a score histogram that shows every score."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle, StepPatch

from anomaly_vae.calibration import Calibration
from pipelines import plots

NAME = "neg_log_likelihood"


@pytest.fixture
def detector():
    """What the plots read from a fitted detector: a calibration whose 1% threshold (about 3.5) lies above
    the 99.5th percentile of the scores below."""
    calibration = np.r_[np.random.default_rng(1).normal(size=594), np.linspace(3.5, 4.5, 6)]
    return SimpleNamespace(default_score_=NAME, fpr=0.01, calibration_=Calibration.fit({NAME: calibration}))


def scores_with(*extra: float) -> pd.DataFrame:
    return pd.DataFrame({NAME: np.r_[np.random.default_rng(0).normal(size=2000), extra]})


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def threshold_lines(ax) -> list[float]:
    return [line.get_xdata()[0] for line in ax.get_lines()]


def test_a_score_above_the_threshold_is_drawn_right_of_its_line(detector):
    threshold = detector.calibration_.threshold(NAME, 0.01)
    assert np.percentile(scores_with(4.0)[NAME], 99.8) < threshold < 4.0  # the old plot clipped 4.0 left of it
    fig = plots.score_figure(detector, scores_with(4.0), None, rows="2,001 of the training rows (no label column)")
    ax = fig.axes[0]
    assert ax.get_title() == "Score distribution: 2,001 of the training rows (no label column)"
    assert "2,001 of the training rows (no label column)" in legend_texts(ax)
    assert ax.get_ylabel() == "rows"
    assert ax.get_xlim()[0] <= -3 and ax.get_xlim()[1] >= 4.0  # the whole range: no end bars needed
    (histogram,) = [p for p in ax.patches if isinstance(p, StepPatch)]
    counts, edges = histogram.get_data()[:2]
    assert counts.sum() == 2001
    assert edges[np.flatnonzero(counts)[-1]] > threshold  # the top score's bin starts right of the line
    assert max(threshold_lines(ax)) == pytest.approx(threshold)
    plt.close(fig)


def test_far_scores_go_in_a_labelled_overflow_bar_right_of_every_threshold(detector):
    fig = plots.score_figure(detector, scores_with(250.0, 900.0, -80.0), None)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 2 and all(bar.get_hatch() == "//" for bar in bars)
    underflow, overflow = sorted(bars, key=lambda bar: bar.get_x())
    assert overflow.get_height() == 2  # 250 and 900; the underflow bar holds -80 and the lowest 0.5%
    assert overflow.get_x() > max(threshold_lines(ax)) and ax.get_xlim()[1] >= overflow.get_x() + overflow.get_width()
    assert ax.get_xlim()[0] <= underflow.get_x()
    texts = legend_texts(ax)
    assert any(t.startswith("2 above") and t.endswith("(max 900)") for t in texts)
    assert any(t.startswith(f"{underflow.get_height():.0f} below") and t.endswith("(min -80)") for t in texts)
    (histogram,) = [p for p in ax.patches if isinstance(p, StepPatch)]
    assert histogram.get_data()[0].sum() + underflow.get_height() + overflow.get_height() == 2003  # each score once
    plt.close(fig)


def test_with_labels_each_class_is_a_share_of_its_rows(detector, tmp_path):
    scores = scores_with(*np.linspace(3, 6, 50))
    labels = np.r_[np.zeros(2000, int), np.ones(50, int)]
    fig = plots.score_figure(detector, scores, labels, rows="held-out test rows")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "share of the class's rows" and ax.get_title() == "Score distribution: held-out test rows"
    assert {"normal", "anomaly"} <= set(legend_texts(ax))
    shares = [p.get_data()[0].sum() for p in ax.patches if isinstance(p, StepPatch)]
    assert shares == pytest.approx([1.0, 1.0])
    plt.close(fig)
    plots.score_distribution(detector, scores, labels, tmp_path / "scores.png", rows="held-out test rows")
    assert (tmp_path / "scores.png").stat().st_size > 0


def test_contribution_summary_names_its_rows(tmp_path, monkeypatch):
    scores = pd.DataFrame(
        {"contribution_a": [1.0, 2.0, 9.0], "contribution_b": [0.5, 0.5, 0.5], "is_outlier": [False, False, True]}
    )
    figures = []
    savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **kw: figures.append(fig) or savefig(fig, *a, **kw))
    summary = plots.contribution_summary(scores, tmp_path / "c.csv", tmp_path / "c.png", rows="held-out test rows")
    (ax,) = figures[0].axes
    assert ax.get_title() == "Per-column contributions: held-out test rows"
    assert legend_texts(ax) == ["all rows", "flagged rows"]
    assert summary.loc["a", "mean_all"] == pytest.approx(4.0) and summary.loc["a", "mean_flagged"] == 9.0
    assert (tmp_path / "c.png").is_file() and (tmp_path / "c.csv").is_file()
