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
    the given probabilities, so the sizes are right in expectation.
    """
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    _, group = np.unique(hashes, return_inverse=True)
    rng = np.random.default_rng(seed)
    draw = rng.random(group.max() + 1)[group]
    edges = np.cumsum(fractions)
    part = np.searchsorted(edges, draw, side="right")  # 0..k-1 for the fractions, k for the rest
    k = len(fractions)
    rest = np.flatnonzero(part == k)
    return (rest, *(np.flatnonzero(part == i) for i in range(k)))
