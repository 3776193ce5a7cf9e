"""The quality benchmarks' results (ADBench, MNIST): one row per data set, method and seed, written as a
CSV and summarised as markdown tables."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Result:
    dataset: str
    method: str
    seed: int
    auroc: float
    aupr: float
    fit_seconds: float
    score_seconds: float = math.nan  # scoring the test part, where measured


def per_set_means(results: list[Result]) -> pd.DataFrame:
    """One row per data set and method: AUROC, AUPR, fit and scoring seconds, means over seeds."""
    import pandas as pd

    frame = pd.DataFrame([r.__dict__ for r in results])
    columns = ["auroc", "aupr", "fit_seconds", "score_seconds"]
    return frame.groupby(["dataset", "method"])[columns].mean().reset_index()


def write_tables(results: list[Result], output: Path, stem: str, header: str, extra: str = "") -> str:
    """Write ``stem.csv`` (one row per data set, method and seed) and ``stem.md`` to ``output``.

    Returns the markdown: ``header``, then mean AUROC, mean AUPR, average AUROC rank and mean fit time per
    method (and mean scoring time where any method measured it), then AUROC per data set and method
    (means over seeds), then ``extra`` when given.
    """
    import pandas as pd

    frame = pd.DataFrame([r.__dict__ for r in results])
    output.mkdir(parents=True, exist_ok=True)
    timed = bool(frame["score_seconds"].notna().any())
    frame.to_csv(output / f"{stem}.csv", index=False, columns=None if timed else frame.columns.drop("score_seconds"))
    per_set = per_set_means(results)
    per_set["rank"] = per_set.groupby("dataset")["auroc"].rank(ascending=False)
    summary = per_set.groupby("method")[["auroc", "aupr", "rank", "fit_seconds", "score_seconds"]].mean()
    summary = summary.sort_values("auroc", ascending=False)
    wide = per_set.pivot(index="dataset", columns="method", values="auroc")[summary.index]
    lines = [
        header,
        "",
        "| method | mean AUROC | mean AUPR | average rank | mean fit seconds |" + (" mean score seconds |" * timed),
        "| --- | --- | --- | --- | --- |" + " --- |" * timed,
        *(
            f"| {m} | {r.auroc:.3f} | {r.aupr:.3f} | {r['rank']:.2f} | {r.fit_seconds:.2f} |"
            + (f" {_seconds(r.score_seconds)} |" if timed else "")
            for m, r in summary.iterrows()
        ),
        "",
        "| data set | " + " | ".join(wide.columns) + " |",
        "| --- |" + " --- |" * len(wide.columns),
        *(f"| {d} | " + " | ".join(f"{v:.3f}" for v in row) + " |" for d, row in wide.iterrows()),
    ]
    table = "\n".join(lines) + (f"\n\n{extra}" if extra else "")
    (output / f"{stem}.md").write_text(table + "\n")
    return table


def _seconds(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.2f}"
