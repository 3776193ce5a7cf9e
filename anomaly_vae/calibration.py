"""Split-conformal calibration of outlier scores on a held-out calibration set.

For a score ``s`` and calibration scores ``c_1..c_n`` of records the model never trained on, the p-value
is ``(1 + #{c_i >= s}) / (n + 1)``: under the training distribution P(p <= a) <= a for every level a, so
flagging ``p_value <= fpr`` has a false-positive rate of at most ``fpr`` on average over calibration sets;
one fitted model's rate varies around that (a Beta law, wider for small n; docs/benchmarks.md). The
matching threshold is the calibration score just below the flagged region, and ``score > threshold``
flags exactly the same records, so any rate can be chosen at scoring time without retraining.

Contaminated training data: outliers in the calibration set only make p-values larger (conservative,
never more false alarms than asked for). If the contamination rate is known, ``contamination`` drops
that top fraction of calibration scores first, which restores power.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass
class Calibration:
    scores: dict[str, np.ndarray]  # sorted ascending calibration scores per score name

    @classmethod
    def fit(cls, scores: dict[str, np.ndarray], contamination: float = 0.0) -> Calibration:
        calibrated = {}
        for name, values in scores.items():
            values = np.sort(np.asarray(values, dtype=np.float64))
            keep = len(values) - math.floor(contamination * len(values))
            calibrated[name] = values[:keep]
        return cls(calibrated)

    @property
    def size(self) -> int:
        return len(next(iter(self.scores.values())))

    @property
    def smallest_fpr(self) -> float:
        """The smallest false-positive rate these scores resolve (``threshold`` is ``inf`` below it)."""
        return smallest_fpr(self.size)

    def p_value(self, name: str, scores: np.ndarray) -> np.ndarray:
        """Conformal p-values of ``scores`` (higher score = more anomalous = smaller p-value)."""
        reference = self.scores[name]
        at_least = len(reference) - np.searchsorted(reference, scores, side="left")
        return (1.0 + at_least) / (len(reference) + 1.0)

    def threshold(self, name: str, fpr: float) -> float:
        """Score above which a record is an outlier at false-positive rate ``fpr``.

        ``score > threshold(name, fpr)`` if and only if ``p_value(name, score) <= fpr``; ``inf`` when the
        calibration set is too small to reach that rate.
        """
        check_fpr(fpr)
        reference = self.scores[name]
        allowed = math.floor(fpr * (len(reference) + 1) + 1e-9) - 1  # calibration scores allowed >= s
        if allowed < 0:
            return math.inf
        if allowed >= len(reference):
            return -math.inf
        return float(reference[len(reference) - 1 - allowed])


def smallest_fpr(n_scores: int, contamination: float = 0.0) -> float:
    """The smallest false-positive rate ``n_scores`` calibration scores resolve (after dropping the
    ``contamination`` share): below it no threshold exists and nothing would be flagged."""
    return 1.0 / (n_scores - math.floor(contamination * n_scores) + 1)


def warn_if_unresolvable(fpr: float, n_scores: int, contamination: float = 0.0) -> None:
    smallest = smallest_fpr(n_scores, contamination)
    if fpr < smallest:
        warnings.warn(
            f"{n_scores} calibration scores cannot resolve fpr={fpr:g}: the smallest rate they resolve is "
            f"{smallest:.3g}, so nothing would be flagged at fpr={fpr:g}; fit on more rows or choose fpr >= "
            f"{smallest:.3g}",
            UnresolvableFprWarning,
            stacklevel=4,  # the caller of fit
        )


class UnresolvableFprWarning(UserWarning):
    """A requested false-positive rate below what the calibration set can resolve."""


def check_fpr(fpr: float) -> None:
    if not (isinstance(fpr, (int, float)) and 0.0 < fpr < 1.0):
        raise ValueError(f"fpr must be in (0, 1), got: {fpr!r}")
