"""ADBench-style synthetic anomalies (Han et al., "ADBench", NeurIPS 2022, section 4.3) generated from the
normal rows of a real data set, so that a change is judged on more points than the 15 real sets.

Four types, as in ADBench's ``generate_realistic_synthetic``, with these documented differences:
- The generators work on the normal rows MinMax-scaled to [0, 1] (fitted on those rows) and map the result
  back to the data's units, so a column's offset and unit do not change what "scaled means" is.
- ``local``: a Gaussian mixture is fitted to the normal rows (full covariances, 1 to ``max_components``
  components chosen by BIC; ADBench tries 1 to 9, 5 here for time); normal rows are drawn from it and
  anomalies from the same mixture with every covariance scaled by ``ALPHA`` = 5.
- ``clustered``: normal rows from the mixture; anomalies from it with every component's mean scaled by
  ``ALPHA`` (in the [0, 1] units: columns whose normal values sit near 0 stay there, the others move out).
- ``global``: normal rows from the mixture; anomalies uniform on each column's range of those rows widened
  by ``WIDEN`` = 10% of it at both ends (ADBench: ``Unif(1.1 min, 1.1 max)``, one-sided for positive data).
- ``dependency``: the real normal rows stay; anomalies take each column independently from its empirical
  marginal over the normal rows (ADBench fits a vine copula to draw normal rows and a KDE per column for
  anomalies; independent marginals break every dependence the same way, and resampling real values keeps
  discrete columns discrete in both classes, so discreteness alone gives nothing away).
As in ADBench the numbers of normal rows and anomalies are those of the data set. Normal rows drawn from
the mixture are continuous in every class, so a detector cannot tell the classes apart by the
discreteness of a column either.
"""

from __future__ import annotations

import copy
import hashlib

import numpy as np
from sklearn.mixture import GaussianMixture

TYPES = ("local", "global", "dependency", "clustered")
ALPHA = 5.0
WIDEN = 0.1


def fit_mixture(X: np.ndarray, seed: int, max_components: int = 5) -> GaussianMixture:
    """The Gaussian mixture (full covariances) with the lowest BIC among 1..``max_components`` components."""
    best, best_bic = None, np.inf
    for k in range(1, max_components + 1):
        if k > len(X):
            break
        mixture = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(X)
        bic = mixture.bic(X)
        if bic < best_bic:
            best, best_bic = mixture, bic
    assert best is not None
    return best


_last_fit: dict[tuple[str, int, int], GaussianMixture] = {}


def cached_mixture(X: np.ndarray, seed: int, max_components: int) -> GaussianMixture:
    """:func:`fit_mixture`, reusing the last fit for the same rows and seed (the local, global and clustered
    anomalies of one data set and seed share it)."""
    key = (hashlib.sha256(np.ascontiguousarray(X).tobytes()).hexdigest(), seed, max_components)
    if key not in _last_fit:
        _last_fit.clear()
        _last_fit[key] = fit_mixture(X, seed, max_components)
    return _last_fit[key]


def _draw(mixture: GaussianMixture, n: int) -> np.ndarray:
    return mixture.sample(n)[0] if n else np.empty((0, mixture.means_.shape[1]))


def synthetic_anomalies(
    X: np.ndarray, y: np.ndarray, kind: str, seed: int, *, max_components: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """A data set with as many normal rows and anomalies as ``(X, y)``, built from its normal rows
    (``y == 0``) with anomalies of type ``kind`` (one of :data:`TYPES`; see the module docstring).
    Rows come back shuffled; ``y`` marks the synthetic anomalies with 1."""
    if kind not in TYPES:
        raise ValueError(f"unknown synthetic anomaly type {kind!r}; choose from {TYPES}")
    rng = np.random.RandomState(seed)
    normal = np.asarray(X, dtype=np.float64)[np.asarray(y) == 0]
    n_normal, n_anomalies = len(normal), int(np.sum(np.asarray(y) != 0))
    low, span = normal.min(axis=0), np.ptp(normal, axis=0)
    span = np.where(span > 0, span, 1.0)
    unit = (normal - low) / span
    if kind == "dependency":
        normals = unit
        anomalies = np.stack([rng.choice(unit[:, j], n_anomalies) for j in range(unit.shape[1])], axis=1)
    else:
        mixture = cached_mixture(unit, seed, max_components)
        normals = _draw(mixture, n_normal)
        anomalous = copy.deepcopy(mixture)
        anomalous.random_state = seed + 1
        if kind == "local":
            anomalous.covariances_ = ALPHA * mixture.covariances_
            anomalies = _draw(anomalous, n_anomalies)
        elif kind == "clustered":
            anomalous.means_ = ALPHA * mixture.means_
            anomalies = _draw(anomalous, n_anomalies)
        else:  # global
            lo, hi = normals.min(axis=0), normals.max(axis=0)
            anomalies = rng.uniform(lo - WIDEN * (hi - lo), hi + WIDEN * (hi - lo), size=(n_anomalies, len(lo)))
    rows = np.concatenate([normals, anomalies]) * span + low
    labels = np.r_[np.zeros(len(normals), int), np.ones(len(anomalies), int)]
    order = rng.permutation(len(rows))
    return rows[order], labels[order]
