"""The reference profile saved with every model, and drift reports of new data against it.

A :class:`ReferenceProfile` summarises what the model was trained on, computed in ``fit``:

- per numeric column: decile bin edges and the reference counts in them, a 100-point quantile sketch
  (for the KS statistic and the report's CDF plots), the missing rate;
- per categorical / boolean column: the count of every vocabulary entry (index 0 = unknown), the
  missing rate;
- on held-out rows scored by the whole ensemble (the calibration part, or the validation part with
  out-of-bag calibration): decile bins of the default score and the histogram of p-values;
- per ensemble member, on the calibration rows it did not learn from: the mean and covariance of the
  latent codes (encoder means).

Numeric statistics work on the schema's encoded values (robust-scaled and soft-clipped, a strictly
monotone transform), so bins, PSI and KS are those of the raw values, and ties in discrete columns stay
ties. :meth:`ReferenceProfile.compare` turns a window of new records into a :class:`DriftReport`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from anomaly_vae import drift
from anomaly_vae.tabular.model import TabularVAE
from anomaly_vae.tabular.schema import (
    BOOLEAN,
    CATEGORICAL,
    NUMERIC,
    UNKNOWN,
    Column,
    EncodedBatch,
    TabularSchema,
    decode_numeric,
)
from anomaly_vae.tabular.tensors import TensorData

N_BINS = 10  # decile bins for numeric columns and scores; top-9 categories + "other" for categoricals
SKETCH_SIZE = 100
P_VALUE_EDGES = np.linspace(0.0, 1.0, N_BINS + 1)[1:-1]


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
    edges: list[float] = field(default_factory=list)  # numeric only, in encoded units
    sketch: list[float] = field(default_factory=list)  # numeric only, in encoded units


@dataclass
class FeatureDrift:
    name: str
    kind: str
    psi: float
    p_value: float  # the chi-square test of the PSI bins
    missing_p_value: float  # the chi-square test of the missing counts
    ks: float | None  # numeric columns
    js: float | None  # categorical and boolean columns
    missing_rate: float
    reference_missing_rate: float
    drifted: bool
    bins: list[str]  # the PSI bins, with the reference and current shares in each
    reference: list[float]
    current: list[float]

    @property
    def missing_delta(self) -> float:
        return self.missing_rate - self.reference_missing_rate


@dataclass
class DriftReport:
    """Drift of one batch or window of records against the model's reference profile."""

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
    def fit(
        cls,
        schema: TabularSchema,
        encoded: EncodedBatch,
        *,
        score_name: str,
        reference_scores: np.ndarray,
        reference_p_values: np.ndarray,
        reference_latent: Sequence[np.ndarray],
    ) -> ReferenceProfile:
        """Profile of the training rows ``encoded``, of held-out rows' scores and p-values, and per member of
        the encoder means (n, latent_dim) of the rows it did not learn from (``reference_latent``)."""
        features = []
        for column, values in _columns(schema, encoded):
            missing = drift.missing_rate(values)
            if column.kind == NUMERIC:
                edges = drift.quantile_edges(values, N_BINS)
                counts = drift.bin_counts(values, edges)
                sketch = drift.quantile_sketch(values, SKETCH_SIZE)
                features.append(
                    FeatureProfile(column.name, column.kind, missing, counts.tolist(), edges.tolist(), sketch.tolist())
                )
            else:
                size = column.n_categories if column.kind == CATEGORICAL else 2
                features.append(FeatureProfile(column.name, column.kind, missing, _code_counts(values, size).tolist()))
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
            n_reference=len(encoded),
            n_calibration=len(reference_scores),
            n_latent=[len(codes) for codes in reference_latent],
        )

    def compare(
        self,
        schema: TabularSchema,
        encoded: EncodedBatch,
        *,
        scores: np.ndarray,
        p_values: np.ndarray,
        latent: np.ndarray,
        fpr: float,
        n_calibration: int,
        thresholds: DriftThresholds | None = None,
    ) -> DriftReport:
        """Drift of the records ``encoded`` (with their default ``scores``, conformal ``p_values`` from
        ``n_calibration`` calibration scores, and encoder means ``latent`` of shape (members, n,
        latent_dim)) against this profile; outliers are ``p_values <= fpr``."""
        limits = thresholds or DriftThresholds()
        if len(encoded) == 0:
            raise ValueError("no records to compare with the reference profile")
        profiles = {f.name: f for f in self.features}
        level = limits.alpha / n_tests(len(self.features))
        features = [
            _feature_drift(profiles[column.name], column, values, limits, level, self.n_reference)
            for column, values in _columns(schema, encoded)
        ]
        score_counts = drift.bin_counts(scores, np.asarray(self.score_edges))
        score_psi = drift.psi(np.asarray(self.score_counts), score_counts)
        score_p_value = drift.homogeneity_p_value(np.asarray(self.score_counts), score_counts)
        flagged = int(np.sum(p_values <= fpr))
        outlier_rate = flagged / len(encoded)
        expected = drift.expected_outlier_rate(fpr, n_calibration)
        outlier_p_value = drift.outlier_count_p_value(flagged, len(encoded), n_calibration, fpr)
        latent_kl = self._latent_kl(latent)
        n_latent = min(self.n_latent or [self.n_calibration])
        latent_p_value = drift.gaussian_kl_p_value(latent_kl, len(encoded), n_latent, len(self.latent_mean[0]))
        alarms = [f"feature:{f.name}" for f in features if f.drifted]
        if score_p_value < level and score_psi >= limits.score_psi:
            alarms.append("score")
        if latent_p_value < level and latent_kl >= limits.latent_kl:
            alarms.append("latent")
        if outlier_p_value < level and outlier_rate > limits.outlier_ratio * expected:
            alarms.append("outlier_rate")
        return DriftReport(
            n_records=len(encoded),
            features=features,
            score_psi=score_psi,
            score_p_value=score_p_value,
            score_ks=drift.ks_statistic(np.asarray(self.score_sketch), scores),
            p_value_histogram=_shares(drift.bin_counts(p_values, P_VALUE_EDGES)),
            reference_p_value_histogram=_shares(np.asarray(self.p_value_counts)),
            outlier_rate=outlier_rate,
            expected_outlier_rate=expected,
            outlier_p_value=outlier_p_value,
            latent_kl=latent_kl,
            latent_p_value=latent_p_value,
            thresholds=limits,
            alarms=alarms,
        )

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
    def from_dict(cls, data: dict[str, Any]) -> ReferenceProfile:
        return cls(**{**data, "features": [FeatureProfile(**f) for f in data["features"]]})


@torch.inference_mode()
def latent_means(model: TabularVAE, data: TensorData, rows_per_chunk: int = 65536) -> np.ndarray:
    """Encoder means (the latent codes the profile summarises) of shape (n_members, n_samples, latent_dim)."""
    model.eval()
    chunks = (data[i : i + rows_per_chunk] for i in range(0, len(data), rows_per_chunk))
    parts = [model.encode(chunk.inputs, chunk.context)[0] for chunk in chunks]  # context: a conditional VAE's
    return torch.cat(parts, dim=1).double().cpu().numpy()


def _columns(schema: TabularSchema, encoded: EncodedBatch) -> list[tuple[Column, np.ndarray]]:
    """(column, encoded values as float64 with NaN for missing) in the schema's feature order."""
    arrays = {NUMERIC: encoded.numeric, CATEGORICAL: encoded.categorical, BOOLEAN: encoded.boolean}
    pairs = []
    for kind, array in arrays.items():
        for j, column in enumerate(schema.of_kind(kind)):
            values = array[:, j].astype(np.float64)
            if kind == CATEGORICAL:
                values[values < 0] = np.nan
            pairs.append((column, values))
    return pairs


def _code_counts(values: np.ndarray, size: int) -> np.ndarray:
    """Counts per vocabulary entry: categorical codes 0..size-1 (0 = unknown), booleans 0/1."""
    return np.bincount(values[~np.isnan(values)].astype(np.int64), minlength=size)


def _interval_labels(edges: np.ndarray) -> list[str]:
    """Labels of the bins (-inf, e0], (e0, e1], ..., (e_last, inf) in raw units."""
    if len(edges) == 0:
        return ["all"]
    text = [f"{e:.4g}" for e in edges]
    middle = [f"({lo}, {hi}]" for lo, hi in itertools.pairwise(text)]
    return [f"<= {text[0]}", *middle, f"> {text[-1]}"]


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).tolist() if total else [0.0] * len(counts)


def _feature_drift(
    profile: FeatureProfile, column: Column, values: np.ndarray, limits: DriftThresholds, level: float, n_reference: int
) -> FeatureDrift:
    reference = np.asarray(profile.counts)
    ks = js = None
    if profile.kind == NUMERIC:
        edges = np.asarray(profile.edges)
        current = drift.bin_counts(values, edges)
        ks = drift.ks_statistic(np.asarray(profile.sketch), values)
        bins = _interval_labels(decode_numeric(edges, column))
        ref_bins, cur_bins = reference, current
    else:
        current = _code_counts(values, len(reference))
        js = drift.jensen_shannon(reference, current)
        labels = ["false", "true"] if profile.kind == BOOLEAN else [UNKNOWN, *column.categories]
        # PSI over the N_BINS - 1 most frequent reference entries and one bin for the rest, so that a
        # long tail of rare categories does not inflate it on small windows
        order = np.argsort(-reference, kind="stable")
        top, rest = order[: N_BINS - 1], order[N_BINS - 1 :]
        ref_bins = np.append(reference[top], reference[rest].sum()) if len(rest) else reference[top]
        cur_bins = np.append(current[top], current[rest].sum()) if len(rest) else current[top]
        bins = [labels[i] for i in top] + (["other"] if len(rest) else [])
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
        bins=bins,
        reference=_shares(ref_bins),
        current=_shares(cur_bins),
    )
