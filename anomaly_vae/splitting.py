"""Row splits for training, validation and calibration that keep identical rows together.

Data sets are often full of exact duplicates (or are bootstrapped, as in the ADBench protocol). A
duplicate of a training row in the validation split hides overfitting from early stopping, and one in
the calibration split makes the conformal scores optimistic. Rows are therefore grouped by content and
whole groups are assigned to a split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def split_rows(frame: pd.DataFrame, fractions: Sequence[float], seed: int) -> tuple[np.ndarray, ...]:
    """Row positions of (rest, part_1, ..., part_k) where part_i holds about ``fractions[i]`` of the rows.

    Every group of identical rows lands in exactly one part. Each group's part is drawn at random with
    the given probabilities, so the sizes are right in expectation; on small data a draw can leave a part
    without rows, and such a part then takes the group whose draw lies nearest its share (see
    ``_fill_empty_parts``), so every part has rows whenever there are at least k + 1 distinct rows.
    """
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    _, group = np.unique(hashes, return_inverse=True)
    k = len(fractions)
    n_groups = group.max() + 1 if len(group) else 0
    if n_groups < k + 1:
        raise ValueError(
            f"X has {n_groups} distinct rows; at least {k + 1} are needed so that each part of the fit "
            f"({', '.join(['training', 'validation', 'calibration'][: k + 1])}) gets rows of its own "
            "(identical rows always share a part)"
        )
    rng = np.random.default_rng(seed)
    draw = rng.random(n_groups)
    edges = np.cumsum(fractions)
    group_part = _fill_empty_parts(np.searchsorted(edges, draw, side="right"), draw, edges)
    part = group_part[group]  # 0..k-1 for the fractions, k for the rest
    rest = np.flatnonzero(part == k)
    return (rest, *(np.flatnonzero(part == i) for i in range(k)))


def _fill_empty_parts(group_part: np.ndarray, draw: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Give every empty part one group: among the groups of parts that have more than one, the group whose
    draw is nearest the middle of the empty part's interval of [0, 1). Parts that already have groups keep
    them all, so the result equals the plain draw whenever the draw leaves no part empty."""
    group_part = group_part.copy()
    bounds = np.r_[0.0, edges, 1.0]
    for empty in range(len(bounds) - 1):
        if (group_part == empty).any():
            continue
        counts = np.bincount(group_part, minlength=len(bounds) - 1)
        donors = np.flatnonzero(counts[group_part] > 1)
        middle = (bounds[empty] + bounds[empty + 1]) / 2
        group_part[donors[np.argmin(np.abs(draw[donors] - middle))]] = empty
    return group_part
