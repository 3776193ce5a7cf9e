"""The fixed tuning / confirmation split and the paired comparison reported per group."""

import math

import numpy as np
import pandas as pd
import pytest

from pipelines.benchmarks.groups import GROUPS, SHARED_SETS, group_of, grouped_tables, wilcoxon_p, wins_and_p


def test_the_split_is_fixed_balanced_and_ignores_variants_and_unknown_sets():
    assert len(SHARED_SETS) == 15 and list(GROUPS.values()).count("tuning") == 8
    assert group_of("2_annthyroid") == "tuning" and group_of("5_campaign") == "confirmation"
    assert group_of("40_vowels:local") == "confirmation"  # a synthetic variant keeps its set's group
    assert group_of("47_yeast") == "other"  # unseen sets are never tuning data


def test_wins_and_wilcoxon():
    reference = pd.Series([0.9, 0.8, 0.7, 0.6, 0.95, 0.85], index=list("abcdef"))
    other = pd.Series([0.8, 0.7, 0.6, 0.6, 0.90, 0.80], index=list("abcdef"))
    assert wins_and_p(reference, other) == "5-0 (p = 0.06)"  # the tie counts on neither side
    assert math.isnan(wilcoxon_p(np.zeros(4)))
    assert wilcoxon_p(np.r_[np.ones(8), -0.5]) < 0.05


def test_grouped_tables_report_each_group_and_all():
    rng = np.random.default_rng(0)
    names = ["2_annthyroid", "5_campaign", "6_cardio", "12_fault", "99_unseen"]
    per_set = pd.DataFrame(
        [
            {"dataset": d, "method": m, "auroc": rng.random(), "aupr": rng.random()}
            for d in names
            for m in ("VAEDetector", "KNN")
        ]
    )
    text = grouped_tables(per_set, "VAEDetector")
    titles = [line.split(":")[0] for line in text.splitlines() if line.startswith("Group")]
    assert titles == ["Group tuning", "Group confirmation", "Group other", "Group all"]
    tuning = per_set[per_set.dataset.isin(["2_annthyroid", "6_cardio"]) & (per_set.method == "KNN")]
    assert f"| KNN | {tuning.auroc.mean():.3f} |" in text.split("Group confirmation")[0]


@pytest.mark.parametrize("group", ["tuning", "confirmation"])
def test_no_set_is_in_both_groups(group):
    other = {"tuning": "confirmation", "confirmation": "tuning"}[group]
    assert not {s for s in SHARED_SETS if group_of(s) == group} & {s for s in SHARED_SETS if group_of(s) == other}


def test_a_table_per_synthetic_anomaly_type():
    per_set = pd.DataFrame(
        [
            {"dataset": f"{d}:{k}", "method": m, "auroc": 0.5 + 0.1 * (m == "VAEDetector"), "aupr": 0.3}
            for d in ("2_annthyroid", "5_campaign")
            for k in ("local", "global")
            for m in ("VAEDetector", "KNN")
        ]
    )
    text = grouped_tables(per_set, "VAEDetector")
    assert "Anomaly type local, every group: 2 data set(s)." in text and "Anomaly type global" in text
    assert "| KNN | 0.500 | 2-0 (p = 0.50) |" in text
