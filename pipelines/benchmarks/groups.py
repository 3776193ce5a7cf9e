"""The tuning / confirmation split of the 15 ADBench data sets in ``../shared/data/adbench``, and the paired
comparison the quality tables report for each group: mean AUROC and AUPR per method, and against the
reference method (the project's detector) the wins and losses over the data sets with a Wilcoxon
signed-rank p-value.

The split is fixed and mechanical, chosen before any result was looked at: the 15 sets ordered by their
ADBench number, alternately tuning and confirmation starting with tuning (8 tuning, 7 confirmation).
Decide on the tuning group, then report the confirmation group once. A data set outside the 15 (an
unseen set, a name that is not one of them) belongs to the group ``other``: counted under ``all``, never
under tuning or confirmation. Synthetic-anomaly variants of a set (``NAME:local``) keep the set's group.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SHARED_SETS = (
    "2_annthyroid",
    "5_campaign",
    "6_cardio",
    "12_fault",
    "18_Ionosphere",
    "22_magic.gamma",
    "23_mammography",
    "24_mnist",
    "28_pendigits",
    "30_satellite",
    "31_satimage-2",
    "32_shuttle",
    "38_thyroid",
    "40_vowels",
    "44_Wilt",
)  # ordered by ADBench number
GROUPS = {name: ("tuning", "confirmation")[i % 2] for i, name in enumerate(SHARED_SETS)}
CHOICES = ("tuning", "confirmation", "all")


def group_of(dataset: str) -> str:
    """``tuning``, ``confirmation`` or ``other`` for a data set's name (a file stem, or ``stem:variant``)."""
    return GROUPS.get(dataset.split(":")[0], "other")


def in_group(dataset: str, group: str) -> bool:
    return group == "all" or group_of(dataset) == group


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences; NaN when every difference is zero or
    there are fewer than two."""
    from scipy.stats import wilcoxon

    differences = np.asarray(differences, dtype=float)
    if len(differences) < 2 or not np.any(differences != 0):
        return math.nan
    return float(wilcoxon(differences).pvalue)


def wins_and_p(reference: pd.Series, other: pd.Series) -> str:
    """``W-L (p = P)``: the data sets where ``reference`` is above / below ``other`` (ties left out of both
    counts) and the Wilcoxon p-value of the paired differences."""
    difference = (reference - other.reindex(reference.index)).dropna().to_numpy()
    p = wilcoxon_p(difference)
    shown = f"{p:.2f}" if math.isnan(p) or p >= 0.01 else f"{p:.0e}"
    return f"{int(np.sum(difference > 0))}-{int(np.sum(difference < 0))} (p = {shown})"


def paired_table(per_set: pd.DataFrame, reference: str) -> list[str]:
    """Markdown rows for one group. ``per_set``: one row per data set and method (columns dataset, method,
    auroc, aupr; means over seeds). Every method's mean AUROC and AUPR, and next to each the reference's
    wins-losses against it with the Wilcoxon p-value."""
    auroc = per_set.pivot(index="dataset", columns="method", values="auroc")
    aupr = per_set.pivot(index="dataset", columns="method", values="aupr")
    order = auroc.mean().sort_values(ascending=False).index
    lines = [
        f"| method | mean AUROC | {reference} vs it, AUROC | mean AUPR | {reference} vs it, AUPR |",
        "| --- | --- | --- | --- | --- |",
    ]
    for method in order:
        if method == reference:
            versus_auroc = versus_aupr = "(reference)"
        else:
            versus_auroc = wins_and_p(auroc[reference], auroc[method])
            versus_aupr = wins_and_p(aupr[reference], aupr[method])
        lines.append(
            f"| {method} | {auroc[method].mean():.3f} | {versus_auroc} | {aupr[method].mean():.3f} | {versus_aupr} |"
        )
    return lines


def grouped_tables(per_set: pd.DataFrame, reference: str) -> str:
    """:func:`paired_table` for the tuning group, the confirmation group, the other sets and all of them
    (those that have data sets), each under a line naming the group and its size; then, when the results
    hold several anomaly types (``STEM:TYPE``), one per type over every group."""
    if reference not in set(per_set["method"]):
        return ""
    groups = per_set["dataset"].map(group_of)
    present = [g for g in ("tuning", "confirmation", "other") if (groups == g).any()]
    parts = []
    for group in present + (["all"] if len(present) > 1 else []):
        rows = per_set if group == "all" else per_set[groups == group]
        title = f"Group {group}: {rows['dataset'].nunique()} data set(s); wins-losses over data sets, Wilcoxon p."
        parts.append("\n".join([title, "", *paired_table(rows, reference)]))
    kinds = per_set["dataset"].str.partition(":")[2]
    for kind in [k for k in kinds.unique() if k] if kinds.nunique() > 1 else []:
        rows = per_set[kinds == kind]
        title = f"Anomaly type {kind}, every group: {rows['dataset'].nunique()} data set(s)."
        parts.append("\n".join([title, "", *paired_table(rows, reference)]))
    return "\n\n".join(parts)
