"""The tabular part of the reference profile (:mod:`anomaly_vae.profile` has what both detectors share):
the features are the schema's columns.

- numeric columns are profiled on the schema's encoded values (robust-scaled and soft-clipped, a
  strictly monotone transform), so bins, PSI and KS are those of the raw values, ties in discrete
  columns stay ties, and the report's bin labels are decoded back to raw units;
- categorical / boolean columns keep the count of every vocabulary entry (index 0 = unknown) and are
  compared by Jensen-Shannon distance and by PSI over the most frequent entries.

:meth:`ReferenceProfile.compare` turns a window of encoded records into a :class:`DriftReport`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np

from anomaly_vae import drift
from anomaly_vae import profile as shared
from anomaly_vae.profile import (
    N_BINS,
    DriftReport,
    DriftThresholds,
    FeatureDrift,
    FeatureProfile,
    feature_drift,
    numeric_drift,
    numeric_profile,
)
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


class ReferenceProfile(shared.ReferenceProfile):
    """The profile of a tabular model (saved in its ``model.json``, as the fields of the shared one)."""

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
            if column.kind == NUMERIC:
                features.append(numeric_profile(column.name, values, column.kind))
            else:
                size = column.n_categories if column.kind == CATEGORICAL else 2
                counts = _code_counts(values, size).tolist()
                features.append(FeatureProfile(column.name, column.kind, drift.missing_rate(values), counts))
        return cls.build(
            features,
            n_reference=len(encoded),
            score_name=score_name,
            reference_scores=reference_scores,
            reference_p_values=reference_p_values,
            reference_latent=reference_latent,
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
        profiles = {f.name: f for f in self.features}

        def features(limits: DriftThresholds, level: float) -> list[FeatureDrift]:
            return [
                _feature_drift(profiles[column.name], column, values, limits, level, self.n_reference)
                for column, values in _columns(schema, encoded)
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


def _feature_drift(
    profile: FeatureProfile, column: Column, values: np.ndarray, limits: DriftThresholds, level: float, n_reference: int
) -> FeatureDrift:
    if profile.kind == NUMERIC:
        return numeric_drift(profile, values, limits, level, n_reference, partial(decode_numeric, column=column))
    reference = np.asarray(profile.counts)
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
    return feature_drift(profile, values, ref_bins, cur_bins, bins, limits, level, n_reference, js=js)
