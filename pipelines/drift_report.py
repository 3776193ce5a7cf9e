"""`anomaly-vae drift`: drift of a data set against a model's reference profile, as JSON and as a
self-contained HTML report with plots (reference vs current, per feature)."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from anomaly_vae import VAEDetector
from anomaly_vae.drift import bin_counts
from anomaly_vae.image.profile import image_statistics
from anomaly_vae.persistence import atomic_path
from anomaly_vae.profile import DriftReport, FeatureProfile, n_tests
from anomaly_vae.tabular.schema import decode_numeric
from pipelines.data import read_table
from pipelines.registry import load_detector

logger = logging.getLogger(__name__)
PLOTTED_FEATURES = 12  # the report plots the features with the highest PSI; the table lists all
REJECT_EXAMPLES = 5  # the first rejected rows (images) and their reasons, in the JSON


def drift_file(
    model: str,
    data: Path,
    *,
    report: Path | None = None,
    output: Path | None = None,
    max_rows: int = 200_000,
    image_column: str | None = None,
) -> dict[str, Any]:
    """Drift of the data set ``data`` against ``model``'s profile; returns the JSON-able result.

    Rows that cannot be scored (wrong type, infinity; for an image model unreadable images or ones the
    model cannot take) are left out and counted; a missing model column is an error. Data sets above
    ``max_rows`` rows (images) are sampled down while being read. An image model reads a folder of images,
    a list of paths, a table with ``image_column`` or a ``.npy`` / ``.npz`` stack (as ``score`` does), and
    its features are image statistics (intensity, contrast, sharpness, size, aspect).
    """
    detector, identity = load_detector(model)
    if getattr(detector, "profile_", None) is None:
        raise ValueError(f"model {model} has no reference profile (trained before drift monitoring); retrain it")
    current: Any  # a frame of records, or a list of images
    rejects: list[tuple[Any, str]]  # (row or name, reason)
    if detector.kind == "image":
        current, values, rejects = _image_data(detector, Path(data), image_column, max_rows)
    elif image_column is not None:
        raise ValueError("--image-column is for image models; this model is tabular")
    else:
        current, rejects = _table_data(detector, Path(data), max_rows)
        values = current
    scores = detector.decision_function(current)
    result = detector.drift(current, scores=scores)
    summary = {"model": identity, "data": str(data), "rows_rejected": len(rejects), **result.to_dict()}
    if rejects:
        summary["rejected_examples"] = [{"name": str(n), "reason": r} for n, r in rejects[:REJECT_EXAMPLES]]
    if output is not None:
        _write_atomic(Path(output), json.dumps(summary, indent=1, allow_nan=False) + "\n")
    if report is not None:
        _write_atomic(Path(report), render_html(detector, result, values, scores, summary))
    return summary


def _table_data(detector: Any, data: Path, max_rows: int) -> tuple[pd.DataFrame, list[tuple[Any, str]]]:
    """The rows of the table ``data`` the tabular model can score (its columns), and (row, reason) of the others."""
    frame = read_table(data, max_rows=max_rows)
    names = list(detector.feature_names_in_)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ValueError(f"{data}: missing model column(s): {missing}")
    extra = [c for c in frame.columns if c not in names]
    if extra:
        logger.info("ignoring %d column(s) the model does not use: %s", len(extra), extra[:10])
    reasons = detector.schema_.invalid_rows(frame[names])
    good = np.ones(len(frame), dtype=bool)
    good[reasons.index.to_numpy(dtype=int)] = False
    if not good.any():
        raise ValueError(f"{data}: no row can be scored" + (f" (first: {reasons.iloc[0]})" if len(reasons) else ""))
    return frame.loc[good, names].reset_index(drop=True), list(reasons.items())


def _image_data(
    detector: Any, data: Path, image_column: str | None, max_images: int
) -> tuple[list[np.ndarray], pd.DataFrame, list[tuple[Any, str]]]:
    """The images of ``data`` the image model can score (as read), their statistics (the profile's
    features, one row per image), and (name, reason) of the others."""
    from pipelines.image_inputs import ImageSource, read_valid_images

    source = ImageSource(data, image_column=image_column)
    images, names, rejects = read_valid_images(detector, source, max_images=max_images)
    if not images:
        first = f" (first: {rejects[0][0]}: {rejects[0][1]})" if rejects else ""
        raise ValueError(f"{data}: no image can be scored{first}")
    return images, pd.DataFrame(image_statistics(images), index=names), rejects


def alarm_summary(alarms: list[str]) -> str:
    """``feature:a, feature:b, score`` -> ``2 features (a, b), score``; long feature lists are cut."""
    features = [a.removeprefix("feature:") for a in alarms if a.startswith("feature:")]
    others = [a for a in alarms if not a.startswith("feature:")]
    named = ", ".join(features[:5]) + (", ..." if len(features) > 5 else "")
    return ", ".join(([f"{len(features)} feature(s) ({named})"] if features else []) + others)


def flag_rule(report: DriftReport) -> str:
    """When a statistic is flagged, in words, with the report's numbers."""
    limits = report.thresholds
    tests = n_tests(len(report.features))
    return (
        f"A statistic is flagged when its test's p-value is below alpha / number of tests = {limits.alpha:g} / "
        f"{tests} = {limits.alpha / tests:.2g} (Bonferroni: with nothing changed, any flag in this report has "
        f"probability about {limits.alpha:g} at most) AND its effect is at least the threshold: PSI "
        f"{limits.feature_psi:g} for a feature's distribution, a change of {limits.missing_delta:g} in its missing "
        f"rate, score PSI {limits.score_psi:g}, latent KL {limits.latent_kl:g} nats. The outlier rate is flagged "
        f"when its test's p-value is below the same level and the rate is above {limits.outlier_ratio:g}x the "
        "calibrated rate."
    )


def _write_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as staging:
        staging.write_text(text)


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _bars(
    ax: Any, labels: list[str], reference: list[float], current: list[float], title: str, source: str = "training"
) -> None:
    x = np.arange(len(labels))
    ax.bar(x - 0.2, reference, width=0.4, label=f"reference ({source})")
    ax.bar(x + 0.2, current, width=0.4, label="current")
    ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=7)
    ax.set(ylabel="share of records", title=title)
    ax.legend(fontsize=7)


def feature_figure(detector: Any, profile: FeatureProfile, drift: Any, values: pd.Series) -> str:
    """Reference vs current shares per PSI bin; for numeric features also both CDFs in raw units (an image
    model's profile keeps its statistics' sketches in raw units already)."""
    numeric = profile.kind == "numeric"
    fig, axes = plt.subplots(1, 2 if numeric else 1, figsize=(10 if numeric else 5.5, 3.4), squeeze=False)
    title = f"{drift.name}: PSI {drift.psi:.3f}"
    _bars(axes[0, 0], drift.bins, drift.reference, drift.current, title)
    if numeric:
        sketch = np.asarray(profile.sketch)
        if isinstance(detector, VAEDetector):
            sketch = decode_numeric(sketch, next(c for c in detector.schema_.columns if c.name == profile.name))
        current = np.sort(pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=np.float64))
        ax = axes[0, 1]
        ax.step(sketch, (np.arange(len(sketch)) + 0.5) / len(sketch), where="post", label="reference (training)")
        ax.step(current, np.arange(1, len(current) + 1) / max(len(current), 1), where="post", label="current")
        ax.set(xlabel=profile.name, ylabel="cumulative share", title=f"CDF: KS {drift.ks:.3f}")
        ax.legend(fontsize=7)
    return _png(fig)


def score_figure(detector: Any, report: DriftReport, scores: np.ndarray) -> str:
    profile = detector.profile_
    assert profile is not None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    edges = [f"{e:.3g}" for e in profile.score_edges]
    labels = [f"<= {edges[0]}", *[f"<= {e}" for e in edges[1:]], f"> {edges[-1]}"]
    counts = bin_counts(scores, np.asarray(profile.score_edges))
    reference = np.asarray(profile.score_counts) / max(sum(profile.score_counts), 1)
    current = (counts / counts.sum()).tolist()
    _bars(axes[0], labels, reference.tolist(), current, f"score: PSI {report.score_psi:.3f}", "calibration")
    axes[0].set_xlabel(f"{profile.score_name} (nats)")
    p_labels = [f"{0.1 * i:.1f}-{0.1 * (i + 1):.1f}" for i in range(10)]
    _bars(axes[1], p_labels, report.reference_p_value_histogram, report.p_value_histogram, "p-values", "calibration")
    return _png(fig)


def render_html(
    detector: Any, report: DriftReport, values: pd.DataFrame, scores: np.ndarray, summary: dict[str, Any]
) -> str:
    """The self-contained HTML report; ``values``: the compared records' feature values (an image model's:
    the image statistics), one column per profiled feature."""
    profile = detector.profile_
    assert profile is not None
    profiles = {f.name: f for f in profile.features}
    esc = html.escape
    verdict = "DRIFT: " + alarm_summary(report.alarms) if report.drifted else "no drift at the configured thresholds"
    limits = report.thresholds
    rows = [
        ("records compared", f"{report.n_records} (rejected: {summary['rows_rejected']})"),
        ("verdict", verdict),
        (
            "score PSI / KS",
            f"{report.score_psi:.3f} / {report.score_ks:.3f} (test p = {report.score_p_value:.2g}; "
            f"effect threshold: PSI {limits.score_psi:g})",
        ),
        (
            "outlier rate",
            f"{report.outlier_rate:.4f} vs calibrated {report.expected_outlier_rate:.4f} "
            f"(test p = {report.outlier_p_value:.2g}; effect threshold: {limits.outlier_ratio:g}x)",
        ),
        (
            "latent drift (KL, nats)",
            f"{report.latent_kl:.3f} (test p = {report.latent_p_value:.2g}; effect threshold: {limits.latent_kl:g})",
        ),
    ]
    head = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    ordered = sorted(report.features, key=lambda f: -f.psi)
    table = "".join(
        f"<tr class={'drifted' if f.drifted else 'ok'}><td>{esc(f.name)}</td><td>{f.kind}</td><td>{f.psi:.3f}</td>"
        f"<td>{f.p_value:.2g}</td>"
        f"<td>{'' if f.ks is None else f'{f.ks:.3f}'}</td><td>{'' if f.js is None else f'{f.js:.3f}'}</td>"
        f"<td>{f.reference_missing_rate:.3f} &rarr; {f.missing_rate:.3f}</td><td>{f.missing_p_value:.2g}</td>"
        f"<td>{'yes' if f.drifted else ''}</td></tr>"
        for f in ordered
    )
    figures = "".join(
        f"<h3>{esc(f.name)}</h3>" + feature_figure(detector, profiles[f.name], f, values[f.name])
        for f in ordered[:PLOTTED_FEATURES]
    )
    model = summary["model"]
    unit = "images" if detector.kind == "image" else "rows"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Drift report: {esc(str(model["name"]))}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{padding:2px 10px;text-align:left}}
tr.drifted{{background:#fdd}}table{{border-collapse:collapse}}img{{max-width:100%}}</style></head><body>
<h1>Drift report</h1>
<p>Model {esc(str(model["name"]))} version {esc(str(model["version"]))}; data {esc(summary["data"])}.
Reference: {profile.n_reference} training {unit}, {profile.n_calibration} calibration {unit}.</p>
<p>{esc(flag_rule(report))}</p>
<table>{head}</table>
<h2>Features (highest PSI first)</h2>
<table><tr><th>feature</th><th>kind</th><th>PSI</th><th>PSI test p</th><th>KS</th><th>JS</th><th>missing rate</th>
<th>missing test p</th><th>flagged</th></tr>
{table}</table>
<h2>Score and p-values</h2>{score_figure(detector, report, scores)}
<h2>Features, reference vs current</h2>{figures}
</body></html>
"""
