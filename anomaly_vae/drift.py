"""Drift statistics: pure functions comparing a current sample with a reference summary.

All of them return 0 for identical distributions and grow with the difference:

- :func:`psi`, the population stability index ``sum (q - p) * ln(q / p)`` over bins (symmetric KL);
  the usual reading is < 0.1 stable, 0.1-0.25 moderate, > 0.25 a major shift. Its value on samples of
  the same distribution is about ``(bins - 1) * (1/n + 1/m)``, so windows must be large enough for a
  threshold to mean something (docs/drift.md measures it).
- :func:`ks_statistic`, the Kolmogorov-Smirnov distance between the current values and the reference
  quantile sketch (largest gap between the two CDFs, in [0, 1]).
- :func:`jensen_shannon`, the Jensen-Shannon distance between category frequencies (in [0, 1], base 2).
- :func:`gaussian_kl`, KL(N(current) || N(reference)) between Gaussians fitted to latent codes, in nats.

How large a statistic is on two samples of one distribution depends on their sizes, so each also has a
test: :func:`homogeneity_p_value` (Pearson's chi-square on the two histograms, for PSI bins and missing
counts) and :func:`gaussian_kl_p_value` (the likelihood-ratio law of the Gaussian KL).
"""

from __future__ import annotations

import bisect
import math

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import betabinom, chi2, chi2_contingency, fisher_exact
from scipy.stats import f as f_dist
from scipy.stats import t as student_t

MIN_EXPECTED = 5.0  # records a test bin should expect in the smaller sample (Cochran's rule)
PSEUDO_COUNT = 0.5  # added to every bin of a sample's counts, so an empty bin does not make PSI infinite


def proportions(counts: np.ndarray) -> np.ndarray:
    """Smoothed bin proportions ``(count + 0.5) / (n + 0.5 * bins)``."""
    counts = np.asarray(counts, dtype=np.float64)
    return (counts + PSEUDO_COUNT) / (counts.sum() + PSEUDO_COUNT * len(counts))


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index between two histograms over the same bins (counts, smoothed)."""
    p, q = proportions(reference_counts), proportions(current_counts)
    return float(np.sum((q - p) * np.log(q / p)))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)`` (NaN left out)."""
    values = values[~np.isnan(values)]
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)


def quantile_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Distinct interior quantiles of ``values`` splitting them into at most ``n_bins`` equal-mass bins."""
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return np.empty(0)
    inner = np.quantile(finite, np.arange(1, n_bins) / n_bins, method="inverted_cdf")
    return np.unique(inner)


def quantile_sketch(values: np.ndarray, size: int) -> np.ndarray:
    """``size`` evenly spaced quantiles of the non-missing values: a compact stand-in for the sample."""
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return np.empty(0)
    return np.quantile(finite, (np.arange(size) + 0.5) / size, method="inverted_cdf")


def ks_statistic(sketch: np.ndarray, values: np.ndarray) -> float:
    """Largest distance between the CDF of ``values`` and that of the reference ``sketch`` (NaN left out)."""
    values = np.sort(values[~np.isnan(values)])
    if values.size == 0 or sketch.size == 0:
        return 0.0
    points = np.concatenate([sketch, values])
    reference = np.searchsorted(sketch, points, side="right") / sketch.size
    current = np.searchsorted(values, points, side="right") / values.size
    return float(np.max(np.abs(reference - current)))


def jensen_shannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (square root of the divergence, base 2) between two histograms."""
    p = np.asarray(reference_counts, dtype=np.float64)
    q = np.asarray(current_counts, dtype=np.float64)
    if p.sum() == 0 or q.sum() == 0:  # an empty sample has no frequencies to compare
        return 0.0
    return float(jensenshannon(p, q, base=2))


def homogeneity_p_value(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """P-value of Pearson's chi-square test that two histograms over the same bins are samples of one
    distribution; 1 when there is nothing to compare.

    The chi-square law is far too light-tailed for bins where a sample expects only a few records (one
    record in a rare category would look like strong evidence), so the two smallest bins are merged until
    every bin expects at least ``MIN_EXPECTED`` records in the smaller sample, or two bins are left (and
    a rare one of those two is tested exactly, with Fisher's test).
    """
    table = np.vstack([reference_counts, current_counts]).astype(np.float64)
    if (table.sum(axis=1) == 0).any():
        return 1.0
    need = MIN_EXPECTED * table.sum() / table.sum(axis=1).min()  # a bin's total that gives that expectation
    bins = sorted(map(tuple, table[:, table.sum(axis=0) > 0].T), key=sum)
    while len(bins) > 2 and sum(bins[0]) < need:
        first, second = bins.pop(0), bins.pop(0)
        bisect.insort(bins, (first[0] + second[0], first[1] + second[1]), key=sum)
    if len(bins) < 2:
        return 1.0
    if sum(bins[0]) < need:  # two bins, one of them rare: Fisher's exact test instead of the approximation
        return float(fisher_exact(np.array(bins).T).pvalue)
    return float(chi2_contingency(np.array(bins).T, correction=False).pvalue)


def gaussian_kl_p_value(kl: float, n: int, n_reference: int, dim: int) -> float:
    """Approximate P-value of a KL this large between Gaussians fitted to ``n`` and ``n_reference`` samples
    of one d-dimensional law: ``2 KL / (1/n + 1/n_reference)`` is about chi-square with d + d(d+1)/2
    degrees of freedom (the likelihood-ratio test of equal mean and covariance)."""
    if n < 2 or n_reference < 2:
        return 1.0
    return float(chi2.sf(2.0 * kl / (1.0 / n + 1.0 / n_reference), dim + dim * (dim + 1) // 2))


def missing_rate(values: np.ndarray) -> float:
    """Share of NaN entries (0 for an empty array)."""
    return float(np.isnan(values).mean()) if values.size else 0.0


def gaussian_kl(mean: np.ndarray, cov: np.ndarray, ref_mean: np.ndarray, ref_cov: np.ndarray) -> float:
    """KL(N(mean, cov) || N(ref_mean, ref_cov)) in nats, for d-dimensional Gaussians."""
    d = len(ref_mean)
    inverse = np.linalg.inv(ref_cov)
    delta = mean - ref_mean
    _, logdet_ref = np.linalg.slogdet(ref_cov)
    _, logdet = np.linalg.slogdet(cov)
    value = 0.5 * (np.trace(inverse @ cov) + delta @ inverse @ delta - d + logdet_ref - logdet)
    return float(max(value, 0.0))


def mean_and_cov(codes: np.ndarray, ridge: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of (n, d) codes with ``ridge`` (d,) added to the diagonal (keeps it invertible)."""
    mean = codes.mean(axis=0)
    centered = codes - mean
    cov = centered.T @ centered / max(len(codes) - 1, 1)
    return mean, cov + np.diag(ridge)


def expected_outlier_rate(fpr: float, n_calibration: int) -> float:
    """The chance that a new record's score lands above the threshold calibrated at ``fpr`` on
    ``n_calibration`` scores: ``floor(fpr * (n + 1)) / (n + 1)`` (at most ``fpr``)."""
    return min(math.floor(fpr * (n_calibration + 1) + 1e-9), n_calibration + 1) / (n_calibration + 1)


def outlier_count_p_value(flagged: int, n: int, n_calibration: int, fpr: float) -> float:
    """P(at least ``flagged`` of ``n`` new records are flagged) when nothing changed.

    With ``n_calibration`` calibration scores, the share of new records above the calibrated threshold is
    not exactly ``fpr``: it is Beta(k, n_calibration + 1 - k) distributed with k = floor(fpr *
    (n_calibration + 1)) (the exact law of a conformal threshold), so the count in a window is
    beta-binomial. Using it, and not Binomial(n, fpr), keeps a small calibration set from raising alarms.
    """
    a = expected_outlier_rate(fpr, n_calibration) * (n_calibration + 1)
    b = n_calibration + 1 - a
    if a <= 0 or b <= 0:  # nothing or everything is flagged, whatever the data
        return 1.0
    # sf(k) is P(X > k), so P(X >= flagged) is sf(flagged - 1)
    return float(min(1.0, betabinom.sf(flagged - 1, n, a, b)))


def diagonal_gaussian_test(
    codes: np.ndarray, ref_mean: np.ndarray, ref_var: np.ndarray, n_reference: int
) -> tuple[float, float]:
    """KL(N(current) || N(reference)) between Gaussians with diagonal covariances fitted to the (n, d)
    ``codes`` and to ``n_reference`` reference codes (their ``ref_mean`` and ``ref_var``), in nats, and the
    p-value of "same means and variances": per dimension Welch's t-test of the means and the F-test of
    the variances, Bonferroni over the 2 d tests.

    Small-sample exact under normality (where the chi-square law of :func:`gaussian_kl_p_value` needs
    many more codes than dimensions: with 25 reference codes in 16 dimensions it rejects almost always).
    """
    n, d = codes.shape
    ridge = 1e-3 * ref_var + 1e-9  # a window of identical codes stays finite
    mean, var = codes.mean(axis=0), codes.var(axis=0, ddof=1) + ridge if n > 1 else ref_var + ridge
    ref = ref_var + ridge
    kl = float(max(0.5 * np.sum(var / ref + (mean - ref_mean) ** 2 / ref - 1.0 + np.log(ref / var)), 0.0))
    if n < 2 or n_reference < 2:
        return kl, 1.0
    current_se, reference_se = var / n, ref / n_reference
    t = (mean - ref_mean) / np.sqrt(current_se + reference_se)
    welch_dof = (current_se + reference_se) ** 2 / (current_se**2 / (n - 1) + reference_se**2 / (n_reference - 1))
    mean_p = 2.0 * student_t.sf(np.abs(t), welch_dof)
    # Box and Andersen's correction: heavy tails (excess kurtosis k of the window's codes) make variance
    # estimates noisier, as if from 1 / (1 + k / 2) as many codes
    centered = codes - mean
    excess = np.mean(centered**4, axis=0) / np.maximum(np.mean(centered**2, axis=0), 1e-300) ** 2 - 3.0
    shrink = 1.0 / (1.0 + np.clip(excess, 0.0, None) / 2.0)
    ratio, dof, ref_dof = var / ref, (n - 1) * shrink, (n_reference - 1) * shrink
    var_p = 2.0 * np.minimum(f_dist.cdf(ratio, dof, ref_dof), f_dist.sf(ratio, dof, ref_dof))
    return kl, float(min(1.0, 2 * d * min(mean_p.min(), var_p.min())))
