"""How numeric columns are scaled for the network: a robust centre and scale, the logarithmic soft clip
beyond ``SOFT_CLIP`` scale units, and the grid a column's values lie on (see :mod:`anomaly_vae.tabular.schema`)."""

from __future__ import annotations

import numpy as np

SOFT_CLIP = 5.0


def soft_clip(x: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """Identity on ``[-SOFT_CLIP, SOFT_CLIP]``, logarithmic growth beyond; monotone and NaN-preserving."""
    clipped = x if in_place else x.copy()
    outside = np.abs(clipped) > SOFT_CLIP  # few values: the logarithm is computed for those only
    values = clipped[outside]
    clipped[outside] = np.copysign(SOFT_CLIP + np.log1p(np.abs(values) - SOFT_CLIP), values)
    return clipped


def grid_step(values: np.ndarray) -> float:
    """The step of the grid the finite values lie on (every value is the smallest one plus a whole number of
    steps, the step being the smallest gap): 1 for counts and 0/1 flags, 0.01 for amounts in cents; 0 when
    they lie on none (measurements) or there are fewer than two distinct values."""
    distinct = np.unique(values[np.isfinite(values)])
    if len(distinct) < 2:
        return 0.0
    step = float(np.diff(distinct).min())
    steps = (distinct - distinct[0]) / step
    return step if bool(np.all(np.abs(steps - np.round(steps)) < 1e-3)) else 0.0


def snap(values: np.ndarray, origin: float, step: float) -> np.ndarray:
    """``values`` moved to the nearest point of the grid ``origin + k * step``."""
    return origin + np.round((values - origin) / step) * step


def robust_center_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and a scale that survives heavy tails and (near-)constant columns."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    center = float(np.median(finite))
    q25, q75 = np.percentile(finite, [25, 75])
    for scale in (
        (q75 - q25) / 1.349,
        1.4826 * float(np.median(np.abs(finite - center))),
        float(np.std(finite)),
    ):
        if scale > 1e-12 * max(1.0, abs(center)):
            return center, float(scale)
    return center, 1.0
