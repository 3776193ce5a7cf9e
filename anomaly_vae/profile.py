"""The reference profile saved with every model, and drift reports of new data against it: what both
detectors share. The tabular detector adds its columns' encoding and categorical vocabularies
(:mod:`anomaly_vae.tabular.profile`), the image detector its image statistics
(:mod:`anomaly_vae.image.profile`).

A :class:`ReferenceProfile` summarises what the model was trained on, computed in ``fit``:

- per feature (a numeric value per record: a tabular column, an image statistic): decile bin edges and
  the reference counts in them, a 100-point quantile sketch (for the KS statistic and the report's CDF
  plots), the missing rate; tabular categorical / boolean columns keep the count of every vocabulary
  entry instead;
- on held-out records scored by the whole ensemble (the calibration part, or the validation part with
  out-of-bag calibration): decile bins of the default score and the histogram of p-values;
- per ensemble member, on the calibration records it did not learn from: the mean and covariance of the
  latent codes (encoder means).

:meth:`ReferenceProfile.level` is the Bonferroni level of one report's tests (it counts the profile's
features) and :meth:`ReferenceProfile.report` turns the features' drift, a window's scores, p-values and
latent codes into a :class:`DriftReport`; :meth:`ReferenceProfile.compare_numeric` does both for a
profile of numeric features only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Self

import numpy as np
import torch

from anomaly_vae import drift
from anomaly_vae.network import ModelInput, VAENetwork

N_BINS = 10  # decile bins for numeric features and scores; top-9 categories + "other" for categoricals
SKETCH_SIZE = 100
P_VALUE_EDGES = np.linspace(0.0, 1.0, N_BINS + 1)[1:-1]
NUMERIC = "numeric"
NO_PROFILE = "this model has no reference profile (saved before drift monitoring existed); retrain it"


@dataclass(frozen=True)
class DriftThresholds:
    """When a statistic counts as drift: its test finds the window and the reference different (p-value
    below ``alpha`` over the number of tests in the report: Bonferroni, so a report of an unchanged
    distribution raises any alarm with probability about ``alpha`` at most, whatever the window and
    reference sizes) AND the difference is not negligible (at least the effect below), so that very large
    windows do not flag meaningless shifts. docs/drift.md has the measured false-alarm and detection rates."""

    alpha: float = 1e-4
    feature_psi: float = 0.05
    missing_delta: float = 0.02  # absolute change of a column's missing rate
    score_psi: float = 0.05
    latent_kl: float = 0.02  # nats
    outlier_ratio: float = 2.0  # the window's outlier rate is at least this many times the calibrated rate


def n_tests(n_features: int) -> int:
    """Tests in one drift report, for Bonferroni: two per feature, the score, the latent codes, the outlier count."""
    return 2 * n_features + 3


@dataclass
class FeatureProfile:
    name: str
    kind: str
    missing_rate: float
    counts: list[int]  # reference counts per bin (numeric) or per vocabulary entry (categorical, boolean)
    edges: list[float] = field(default_factory=list)  # numeric only, in the profiled (e.g. encoded) units
    sketch: list[float] = field(default_factory=list)  # numeric only, in the profiled (e.g. encoded) units


@dataclass
class FeatureDrift:
    name: str
    kind: str
    psi: float
    p_value: float  # the chi-square test of the PSI bins
    missing_p_value: float  # the chi-square test of the missing counts
    ks: float | None  # numeric features
    js: float | None  # categorical and boolean columns
    missing_rate: float
    reference_missing_rate: float
    drifted: bool  # distribution_drifted or missing_drifted
    distribution_drifted: bool  # the PSI bins' test and effect floor
    missing_drifted: bool  # the missing counts' test and effect floor
    bins: list[str]  # the PSI bins, with the reference and current shares in each
    reference: list[float]
    current: list[float]

    @property
    def missing_delta(self) -> float:
        return self.missing_rate - self.reference_missing_rate


@dataclass
class DriftReport:
    """Drift of one batch or window of records (or images) against the model's reference profile."""

    n_records: int
    features: list[FeatureDrift]
    score_psi: float
    score_p_value: float
    score_ks: float
    p_value_histogram: list[float]  # shares of p-values in [0, 0.1), [0.1, 0.2), ...
    reference_p_value_histogram: list[float]
    outlier_rate: float
    expected_outlier_rate: float
    outlier_p_value: float  # P(this many outliers or more | no change), see drift.outlier_count_p_value
    latent_kl: float
    latent_p_value: float
    thresholds: DriftThresholds
    alarms: list[str]  # what crossed its threshold: "feature:<name>", "score", "latent", "outlier_rate"

    @property
    def drifted(self) -> bool:
        return bool(self.alarms)

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for feature, source in zip(data["features"], self.features, strict=True):
            feature["missing_delta"] = source.missing_delta
        return {"drifted": self.drifted, "drifted_features": self.drifted_features, **data}


@dataclass
class ReferenceProfile:
    features: list[FeatureProfile]
    score_name: str
    score_edges: list[float]
    score_counts: list[int]
    score_sketch: list[float]
    p_value_counts: list[int]
    latent_mean: list[list[float]]  # (members, latent_dim)
    latent_cov: list[list[list[float]]]  # (members, latent_dim, latent_dim)
    n_reference: int
    n_calibration: int  # the held-out scores behind score_counts
    n_latent: list[int] = field(default_factory=list)  # codes behind each member's fit (older models: none)

    @classmethod
    def build(
        cls,
        features: list[FeatureProfile],
        *,
        n_reference: int,
        score_name: str,
        reference_scores: np.ndarray,
        reference_p_values: np.ndarray,
        reference_latent: Sequence[np.ndarray],
    ) -> Self:
        """The profile of ``features`` (profiled on ``n_reference`` training records), of held-out records'
        scores and p-values, and per member of the encoder means (n, latent_dim) of the records it did not
        learn from (``reference_latent``)."""
        score_edges = drift.quantile_edges(reference_scores, N_BINS)
        means, covs = [], []
        for codes in reference_latent:
            mean, cov = drift.mean_and_cov(codes, np.zeros(codes.shape[1]))
            means.append(mean.tolist())
            covs.append(cov.tolist())
        return cls(
            features=features,
            score_name=score_name,
            score_edges=score_edges.tolist(),
            score_counts=drift.bin_counts(reference_scores, score_edges).tolist(),
            score_sketch=drift.quantile_sketch(reference_scores, SKETCH_SIZE).tolist(),
            p_value_counts=drift.bin_counts(reference_p_values, P_VALUE_EDGES).tolist(),
            latent_mean=means,
            latent_cov=covs,
            n_reference=n_reference,
            n_calibration=len(reference_scores),
            n_latent=[len(codes) for codes in reference_latent],
        )

    def level(self, limits: DriftThresholds) -> float:
        """The p-value a test of one report must fall below: ``alpha`` over the report's number of tests."""
        return limits.alpha / n_tests(len(self.features))

    def compare_numeric(
        self,
        values: Mapping[str, np.ndarray],
        *,
        scores: np.ndarray,
        p_values: np.ndarray,
        latent: np.ndarray,
        fpr: float,
        n_calibration: int,
        thresholds: DriftThresholds | None = None,
    ) -> DriftReport:
        """Drift of records whose features are all numeric (``values``: feature name -> (n,) raw values,
        NaN for missing) against this profile; the other arguments as for :meth:`report`."""
        profiles = {f.name: f for f in self.features}

        def features(limits: DriftThresholds, level: float) -> list[FeatureDrift]:
            return [
                numeric_drift(profiles[name], column, limits, level, self.n_reference)
                for name, column in values.items()
            ]

        return self.report(
            features,
            scores=scores,
            p_values=p_values,
            latent=latent,
            fpr=fpr,
            n_calibration=n_calibration,
            thresholds=thresholds,
        )

    def report(
        self,
        feature_drift: Callable[[DriftThresholds, float], list[FeatureDrift]],
        *,
        scores: np.ndarray,
        p_values: np.ndarray,
        latent: np.ndarray,
        fpr: float,
        n_calibration: int,
        thresholds: DriftThresholds | None = None,
    ) -> DriftReport:
        """The report of a window of records: its features' drift (``feature_drift(limits, level)``,
        tested at :meth:`level`), default ``scores``, conformal ``p_values`` from ``n_calibration``
        calibration scores, and encoder means ``latent`` of shape (members, n, latent_dim); outliers are
        ``p_values <= fpr``."""
        limits = thresholds or DriftThresholds()
        n = len(scores)
        if n == 0:
            raise ValueError("no records to compare with the reference profile")
        level = self.level(limits)
        features = feature_drift(limits, level)
        score_counts = drift.bin_counts(scores, np.asarray(self.score_edges))
        score_psi = drift.psi(np.asarray(self.score_counts), score_counts)
        score_p_value = drift.homogeneity_p_value(np.asarray(self.score_counts), score_counts)
        flagged = int(np.sum(p_values <= fpr))
        outlier_rate = flagged / n
        expected = drift.expected_outlier_rate(fpr, n_calibration)
        outlier_p_value = drift.outlier_count_p_value(flagged, n, n_calibration, fpr)
        latent_kl, latent_p_value = self._latent_test(latent)
        alarms = [f"feature:{f.name}" for f in features if f.drifted]
        if score_p_value < level and score_psi >= limits.score_psi:
            alarms.append("score")
        if latent_p_value < level and latent_kl >= limits.latent_kl:
            alarms.append("latent")
        if outlier_p_value < level and outlier_rate > limits.outlier_ratio * expected:
            alarms.append("outlier_rate")
        return DriftReport(
            n_records=n,
            features=features,
            score_psi=score_psi,
            score_p_value=score_p_value,
            score_ks=drift.ks_statistic(np.asarray(self.score_sketch), scores),
            p_value_histogram=shares(drift.bin_counts(p_values, P_VALUE_EDGES)),
            reference_p_value_histogram=shares(np.asarray(self.p_value_counts)),
            outlier_rate=outlier_rate,
            expected_outlier_rate=expected,
            outlier_p_value=outlier_p_value,
            latent_kl=latent_kl,
            latent_p_value=latent_p_value,
            thresholds=limits,
            alarms=alarms,
        )

    def _latent_test(self, latent: np.ndarray) -> tuple[float, float]:
        """The latent codes' drift (nats) and its p-value: Gaussians with full covariances, the
        likelihood-ratio test's chi-square law (it needs many more reference codes than dimensions)."""
        latent_kl = self._latent_kl(latent)
        n_latent = min(self.n_latent or [self.n_calibration])
        return latent_kl, drift.gaussian_kl_p_value(latent_kl, latent.shape[1], n_latent, len(self.latent_mean[0]))

    def _latent_kl(self, latent: np.ndarray) -> float:
        """Mean over members of KL(window codes || reference codes), Gaussian fits."""
        values = []
        for codes, ref_mean, ref_cov in zip(latent, self.latent_mean, self.latent_cov, strict=True):
            ref_cov_array = np.asarray(ref_cov)
            ridge = 1e-3 * np.diag(ref_cov_array) + 1e-9  # a window of identical records stays finite
            mean, cov = drift.mean_and_cov(codes, ridge)
            values.append(drift.gaussian_kl(mean, cov, np.asarray(ref_mean), ref_cov_array + np.diag(ridge)))
        return float(np.mean(values))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(**{**data, "features": [FeatureProfile(**f) for f in data["features"]]})


def numeric_profile(name: str, values: np.ndarray, kind: str = NUMERIC) -> FeatureProfile:
    """The profile of one numeric feature's reference values (float64, NaN for missing)."""
    edges = drift.quantile_edges(values, N_BINS)
    counts = drift.bin_counts(values, edges)
    sketch = drift.quantile_sketch(values, SKETCH_SIZE)
    return FeatureProfile(name, kind, drift.missing_rate(values), counts.tolist(), edges.tolist(), sketch.tolist())


def numeric_drift(
    profile: FeatureProfile,
    values: np.ndarray,
    limits: DriftThresholds,
    level: float,
    n_reference: int,
    to_raw: Callable[[np.ndarray], np.ndarray] | None = None,
) -> FeatureDrift:
    """Drift of a numeric feature's ``values`` (in the units it was profiled in) against its profile;
    ``to_raw`` maps bin edges to the units the report's bin labels show (default: as profiled)."""
    edges = np.asarray(profile.edges)
    current = drift.bin_counts(values, edges)
    ks = drift.ks_statistic(np.asarray(profile.sketch), values)
    bins = interval_labels(edges if to_raw is None else to_raw(edges))
    return feature_drift(profile, values, np.asarray(profile.counts), current, bins, limits, level, n_reference, ks=ks)


def feature_drift(
    profile: FeatureProfile,
    values: np.ndarray,
    ref_bins: np.ndarray,
    cur_bins: np.ndarray,
    bins: list[str],
    limits: DriftThresholds,
    level: float,
    n_reference: int,
    *,
    ks: float | None = None,
    js: float | None = None,
) -> FeatureDrift:
    """A feature's drift from its reference and current counts in the same PSI bins (labelled ``bins``)
    and its ``values`` (NaN for missing: the missing-rate test)."""
    missing = drift.missing_rate(values)
    value, p_value = drift.psi(ref_bins, cur_bins), drift.homogeneity_p_value(ref_bins, cur_bins)
    reference_missing = round(profile.missing_rate * n_reference)
    missing_p_value = drift.homogeneity_p_value(
        np.array([reference_missing, n_reference - reference_missing]),
        np.array([np.isnan(values).sum(), (~np.isnan(values)).sum()]),
    )
    shifted = p_value < level and value >= limits.feature_psi
    missing_moved = missing_p_value < level and abs(missing - profile.missing_rate) >= limits.missing_delta
    return FeatureDrift(
        name=profile.name,
        kind=profile.kind,
        psi=value,
        p_value=p_value,
        missing_p_value=missing_p_value,
        ks=ks,
        js=js,
        missing_rate=missing,
        reference_missing_rate=profile.missing_rate,
        drifted=bool(shifted or missing_moved),
        distribution_drifted=bool(shifted),
        missing_drifted=bool(missing_moved),
        bins=bins,
        reference=shares(ref_bins),
        current=shares(cur_bins),
    )


def interval_labels(edges: np.ndarray) -> list[str]:
    """Labels of the bins (-inf, e0], (e0, e1], ..., (e_last, inf) in raw units."""
    if len(edges) == 0:
        return ["all"]
    text = [f"{e:.4g}" for e in edges]
    middle = [f"({lo}, {hi}]" for lo, hi in itertools.pairwise(text)]
    return [f"<= {text[0]}", *middle, f"> {text[-1]}"]


def shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).tolist() if total else [0.0] * len(counts)


def checked_scores(scores: np.ndarray | None, n: int, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """The default scores of a window of ``n`` records: ``scores`` when given (checked), else ``compute()``."""
    scores = np.asarray(compute() if scores is None else scores, dtype=np.float64)
    if scores.shape != (n,):
        raise ValueError(f"scores has shape {scores.shape}, expected ({n},)")
    return scores


@torch.inference_mode()
def latent_means(model: VAENetwork, data: ModelInput, rows_per_chunk: int = 65536) -> np.ndarray:
    """Encoder means (the latent codes the profile summarises) of shape (n_members, n_samples, latent_dim)."""
    model.eval()
    chunks = (data[i : i + rows_per_chunk] for i in range(0, len(data), rows_per_chunk))
    parts = [model.encode(chunk.inputs, chunk.context)[0] for chunk in chunks]  # context: a conditional VAE's
    return torch.cat(parts, dim=1).double().cpu().numpy()
