"""The quality benchmarks' results (ADBench, MNIST): one row per data set, method and seed, written as a
CSV and summarised as markdown tables."""

from __future__ import annotations

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


def per_set_means(results: list[Result]) -> pd.DataFrame:
    """One row per data set and method: AUROC, AUPR and fit seconds, means over seeds."""
    import pandas as pd

    frame = pd.DataFrame([r.__dict__ for r in results])
    return frame.groupby(["dataset", "method"])[["auroc", "aupr", "fit_seconds"]].mean().reset_index()


def write_tables(results: list[Result], output: Path, stem: str, header: str, extra: str = "") -> str:
    """Write ``stem.csv`` (one row per data set, method and seed) and ``stem.md`` to ``output``.

    Returns the markdown: ``header``, then mean AUROC, mean AUPR, average AUROC rank and mean fit time per
    method, then AUROC per data set and method (means over seeds), then ``extra`` when given.
    """
    import pandas as pd

    frame = pd.DataFrame([r.__dict__ for r in results])
    output.mkdir(parents=True, exist_ok=True)
    frame.to_csv(output / f"{stem}.csv", index=False)
    per_set = per_set_means(results)
    per_set["rank"] = per_set.groupby("dataset")["auroc"].rank(ascending=False)
    summary = per_set.groupby("method")[["auroc", "aupr", "rank", "fit_seconds"]].mean()
    summary = summary.sort_values("auroc", ascending=False)
    wide = per_set.pivot(index="dataset", columns="method", values="auroc")[summary.index]
    lines = [
        header,
        "",
        "| method | mean AUROC | mean AUPR | average rank | mean fit seconds |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {m} | {r.auroc:.3f} | {r.aupr:.3f} | {r['rank']:.2f} | {r.fit_seconds:.2f} |"
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
