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


def check_fpr(fpr: float) -> None:
    if not (isinstance(fpr, (int, float)) and 0.0 < fpr < 1.0):
        raise ValueError(f"fpr must be in (0, 1), got: {fpr!r}")
