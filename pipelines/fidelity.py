"""How faithful is a model's idea of "normal"? Synthetic samples compared with real data.

Per column: the two-sample Kolmogorov-Smirnov statistic for numeric columns (present values), the largest
difference of any category's frequency for categorical and boolean columns (missing counts as a
category), and the difference of the missing shares. Across columns: the largest difference between the
Spearman correlation matrices of the numeric and boolean columns. A model that cannot reproduce its data
should not be trusted as a density.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

MISSING = "<missing>"


@dataclass(frozen=True)
class Fidelity:
    columns: pd.DataFrame  # one row per column: kind, statistic, value, missing_data, missing_samples
    data_correlation: pd.DataFrame
    sample_correlation: pd.DataFrame

    @property
    def max_correlation_difference(self) -> float:
        difference = (self.sample_correlation - self.data_correlation).abs().to_numpy()
        return float(np.nanmax(difference)) if difference.size else 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-able numbers: per-column statistics and the worst correlation difference."""
        return {
            "columns": self.columns.reset_index().to_dict(orient="records"),
            "max_correlation_difference": self.max_correlation_difference,
        }


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs (NaN ignored)."""
    a, b = np.sort(a[~np.isnan(a)]), np.sort(b[~np.isnan(b)])
    if not (len(a) and len(b)):
        return math.nan
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def frequencies(series: pd.Series) -> pd.Series:
    """Share of each value, missing values counted as ``<missing>``."""
    labels = series.astype(object).where(series.notna(), MISSING).map(str)
    return labels.value_counts(normalize=True)


def compare(samples: pd.DataFrame, data: pd.DataFrame) -> Fidelity:
    """Compare ``samples`` with ``data`` column by column (the columns of ``data``; both must have them)."""
    absent = [c for c in data.columns if c not in samples.columns]
    if absent:
        raise ValueError(f"samples lack the data's column(s): {absent}")
    rows = []
    for name in data.columns:
        real, fake = data[name], samples[name]
        if is_numeric(real):
            kind, statistic = "numeric", "ks"
            value = ks_statistic(real.to_numpy(np.float64, na_value=np.nan), _as_float(fake))
        else:
            kind, statistic = "categorical", "max_frequency_difference"
            value = float(frequencies(fake).sub(frequencies(real), fill_value=0.0).abs().max())
        rows.append(
            {
                "column": name,
                "kind": kind,
                "statistic": statistic,
                "value": value,
                "missing_data": float(real.isna().mean()),
                "missing_samples": float(fake.isna().mean()),
            }
        )
    numeric = [c for c in data.columns if is_numeric(data[c]) or pd.api.types.is_bool_dtype(data[c].dtype)]
    return Fidelity(
        pd.DataFrame(rows).set_index("column"),
        _correlation(data[numeric]),
        _correlation(samples[numeric]),
    )


def _as_float(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(np.float64, na_value=np.nan)


def _correlation(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(_as_float).corr(method="spearman")


def plot(fidelity: Fidelity, samples: pd.DataFrame, data: pd.DataFrame, path: Path, max_columns: int = 12) -> None:
    """One panel per column (histograms or category bars, data vs samples, with the statistic) and the two
    correlation matrices with their difference; the worst-fitting columns first when there are many."""
    worst = fidelity.columns.sort_values("value", ascending=False).index[:max_columns]
    names = [c for c in data.columns if c in set(worst)]
    per_row = 4
    column_rows = math.ceil(len(names) / per_row)
    fig = plt.figure(figsize=(4 * per_row, 3.2 * column_rows + 4.2))
    grid = fig.add_gridspec(column_rows + 1, per_row * 3, height_ratios=[3.2] * column_rows + [4.2])
    for i, name in enumerate(names):
        ax = fig.add_subplot(grid[i // per_row, (i % per_row) * 3 : (i % per_row) * 3 + 3])
        row = fidelity.columns.loc[name]
        if row["kind"] == "numeric":
            real, fake = data[name].to_numpy(np.float64, na_value=np.nan), _as_float(samples[name])
            real, fake = real[~np.isnan(real)], fake[~np.isnan(fake)]
            low, high = np.percentile(real, [0.5, 99.5]) if len(real) else (0.0, 1.0)
            span = (high - low) or 1.0
            bins = np.linspace(low - 0.1 * span, high + 0.1 * span, 40)
            for values, label in ((real, "data"), (fake, "samples")):
                ax.hist(np.clip(values, bins[0], bins[-1]), bins=bins, density=True, alpha=0.5, label=label)
            title = f"{name}: KS {row['value']:.3f}"
        else:
            table = pd.DataFrame({"data": frequencies(data[name]), "samples": frequencies(samples[name])}).fillna(0.0)
            table = table.sort_values("data", ascending=False).head(15)
            positions = np.arange(len(table))
            ax.bar(positions - 0.2, table["data"], width=0.4, label="data")
            ax.bar(positions + 0.2, table["samples"], width=0.4, label="samples")
            ax.set_xticks(positions, [str(v)[:12] for v in table.index], rotation=45, ha="right", fontsize=8)
            title = f"{name}: max freq. diff {row['value']:.3f}"
        if row["missing_data"] or row["missing_samples"]:
            title += f"\nmissing {row['missing_data']:.1%} data, {row['missing_samples']:.1%} samples"
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
        if i == 0:
            ax.legend(fontsize=8)
    matrices = (
        ("data: Spearman correlation", fidelity.data_correlation),
        ("samples: Spearman correlation", fidelity.sample_correlation),
        (
            f"samples - data (max |diff| {fidelity.max_correlation_difference:.3f})",
            fidelity.sample_correlation - fidelity.data_correlation,
        ),
    )
    width = per_row
    for k, (title, matrix) in enumerate(matrices):
        ax = fig.add_subplot(grid[column_rows, k * width : (k + 1) * width])
        image = ax.imshow(matrix.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
        ticks = np.arange(len(matrix))
        ax.set_xticks(ticks, [str(c)[:10] for c in matrix.columns], rotation=90, fontsize=7)
        ax.set_yticks(ticks, [str(c)[:10] for c in matrix.index], fontsize=7)
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle("Model samples vs data", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
