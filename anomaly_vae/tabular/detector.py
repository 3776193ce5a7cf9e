"""``VAEDetector``: a variational autoencoder outlier detector with the scikit-learn estimator contract
and PyOD's vocabulary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from anomaly_vae.base import MIN_FIT_ROWS, BaseDetector, check_positive_int
from anomaly_vae.profile import NO_PROFILE, DriftReport, DriftThresholds, checked_scores, latent_means
from anomaly_vae.scoring import score_data
from anomaly_vae.tabular.losses import elbo_loss, feature_nll
from anomaly_vae.tabular.model import TabularVAE, VAEConfig
from anomaly_vae.tabular.profile import ReferenceProfile
from anomaly_vae.tabular.sampling import context_frame, draw
from anomaly_vae.tabular.schema import NUMERIC, Column, EncodedBatch, TabularSchema
from anomaly_vae.tabular.tensors import TensorData
from anomaly_vae.tabular.validation import columns_from_input, frame_from_input
from anomaly_vae.training import Callback


class VAEDetector(BaseDetector):
    """Variational autoencoder outlier detector for tabular data.

    The VAE learns the density p(x) of the training data. Scores follow PyOD's direction: HIGHER = MORE
    ANOMALOUS. ``decision_function(X)`` is the default score, an importance-weighted estimate of -log p(x)
    in nats (``default_score="neg_log_likelihood"``); ``score_samples(X) = -decision_function(X)`` is
    scikit-learn's log-density direction; ``predict(X)`` is 1 where ``decision_function(X) > threshold_``.

    A held-out calibration split turns scores into conformal p-values and thresholds for any
    false-positive rate (see :mod:`anomaly_vae.calibration`).

    Likelihood per column: categorical and boolean columns are categorical and Bernoulli; numeric
    columns Gaussian with one learned scale each (at least ``min_sigma``), on values robust-scaled and
    soft-clipped (:mod:`anomaly_vae.tabular.schema`). A numeric column whose values lie on a grid (0/1
    flags, counts, coarse levels; ``schema_.columns[j].step``, found at fit time) with cells at least
    ``min_sigma`` wide in those units is scored by the Gaussian's probability of the value's cell
    instead of its density: a density rewards a decoder without bound for collapsing onto the few
    values such a column takes, so that records that are simple on those columns looked likely; a
    probability is at most 1 (+0.8 AUROC points on each group of the ADBench sets, docs/benchmarks.md,
    "Discrete columns").

    Parameters
    ----------
    latent_dim : int or "auto"
        Size of the latent code; "auto" is ``clip(ceil(sqrt(n_features)), 2, 16)``.
    hidden : tuple of int
        Widths of the encoder's hidden layers (the decoder mirrors them).
    default_score : {"neg_log_likelihood", "neg_elbo", "reconstruction_nll"}
        The default score behind ``decision_function``, ``p_value`` and ``predict``.
    fpr : float
        Default target false-positive rate of ``predict`` and ``is_outlier`` (changeable per call).
    contamination : float
        Known fraction of outliers in the training data; that top fraction of calibration scores is
        dropped before calibrating. 0 keeps them all (conservative thresholds).
    n_importance_samples : int
        K, the number of importance samples per record for ``neg_log_likelihood``. Scoring work grows with K;
        on ADBench K=4 and K=16 ranked records no better than the default 2 (docs/benchmarks.md). A larger K
        gives a tighter estimate of -log p(x).
    n_members : int
        Number of VAEs trained side by side (one batched network, different initialisations and noise);
        every score is the mean over members.
    validation_fraction, calibration_fraction : float
        Parts of the training rows held out for early stopping and (with ``calibration="split"``) for
        calibration. Identical rows always land in the same part, so duplicates cannot leak between them.
    calibration : {"auto", "out_of_bag", "split"}
        Where the calibration scores come from. "out_of_bag": every training row that some member did not
        learn from (bagging), scored by those members, so no rows are held out for calibration and small
        data sets keep them for training; "split": a held-out ``calibration_fraction`` of the rows, scored
        by the whole ensemble. "auto" is "out_of_bag" for a bagged ensemble (``n_members > 1`` and
        ``bagging_fraction < 1``), else "split". Measured false-positive rates of both:
        docs/benchmarks.md, "Calibration".
    max_steps, batch_size, learning_rate, weight_decay, patience, kl_warmup_steps :
        Training: Adam minibatch steps, early stopping after ``patience`` validation checks (every
        ``eval_every`` steps) without improvement, KL weight warmed up linearly from 0 to 1.
    trim_fraction : float
        After warm-up, each member ignores this share of each batch's worst-fitting records, so the
        outliers that contaminate most training data do not pull the model towards them.
    bagging_fraction : float
        With several members, each one learns from its own random subset of this share of the rows.
    min_sigma : float
        Floor of the numeric columns' scales, in robust-scaled units.
    categorical_columns : sequence of str, optional
        Columns to treat as categorical even if numeric. Strings, objects and categories always are.
    model_missingness : bool
        Model "is missing" as a Bernoulli feature for columns that had missing values in training.
    condition_on : sequence of str, optional
        Context columns of a conditional VAE: encoder and decoder see them, but they are not modelled, so
        every score, p-value and threshold is of x given its context, -log p(x | context). They remain
        required inputs (a missing context value is an error unless training had missing values there).
    device : {"cpu", "cuda", "auto"} or str
    progress : bool
        Show a progress bar while training.
    random_state : int or None
        Seeds the splits, the initialisation, training and the importance samples.

    Examples
    --------
    >>> import numpy as np
    >>> from anomaly_vae import VAEDetector
    >>> X = np.random.default_rng(0).normal(size=(500, 4))
    >>> detector = VAEDetector(max_steps=200, random_state=0).fit(X)
    >>> detector.predict(np.array([[0.0, 0.0, 0.0, 0.0], [9.0, -9.0, 9.0, -9.0]])).tolist()
    [0, 1]
    """

    kind = "tabular"
    tuple_params = ("hidden",)
    config_: VAEConfig
    model_: TabularVAE

    def __init__(
        self,
        *,
        latent_dim: int | str = "auto",
        hidden: tuple[int, ...] = (64, 32),
        default_score: str = "neg_log_likelihood",
        fpr: float = 0.01,
        contamination: float = 0.0,
        n_importance_samples: int = 2,
        n_members: int = 3,
        validation_fraction: float = 0.1,
        calibration_fraction: float = 0.2,
        max_steps: int = 800,
        batch_size: int = 512,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        eval_every: int = 50,
        patience: int = 3,
        kl_warmup_steps: int = 100,
        trim_fraction: float = 0.05,
        bagging_fraction: float = 0.7,
        calibration: str = "auto",
        min_sigma: float = 0.05,
        categorical_columns: Sequence[str] | None = None,
        max_categories: int = 100,
        model_missingness: bool = True,
        condition_on: Sequence[str] | None = None,
        device: str = "cpu",
        progress: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.default_score = default_score
        self.fpr = fpr
        self.contamination = contamination
        self.n_importance_samples = n_importance_samples
        self.n_members = n_members
        self.validation_fraction = validation_fraction
        self.calibration_fraction = calibration_fraction
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.eval_every = eval_every
        self.patience = patience
        self.kl_warmup_steps = kl_warmup_steps
        self.trim_fraction = trim_fraction
        self.bagging_fraction = bagging_fraction
        self.calibration = calibration
        self.min_sigma = min_sigma
        self.categorical_columns = categorical_columns
        self.max_categories = max_categories
        self.model_missingness = model_missingness
        self.condition_on = condition_on
        self.device = device
        self.progress = progress
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None, *, callbacks: Sequence[Callback] = ()) -> VAEDetector:
        """Fit the VAE on X and calibrate its scores.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Mixed numeric / categorical / boolean columns; NaN and None allowed.
        y : ignored
        callbacks : objects with ``on_epoch_end(step, logs)``, called at each validation check.
        """
        self._start_fit()
        frame = frame_from_input(X)
        if len(frame) < MIN_FIT_ROWS:
            raise ValueError(
                f"fit needs at least {MIN_FIT_ROWS} rows (training, validation and calibration rows), "
                f"got n_samples={len(frame)}"
            )
        self.schema_ = TabularSchema.fit(
            frame,
            categorical_columns=tuple(self.categorical_columns or ()),
            max_categories=self.max_categories,
            context_columns=tuple(self.condition_on or ()),
        )
        self._set_features()
        self.config_ = self._network_config()
        encoded = self.schema_.encode(frame)
        calibrated = self._train_and_calibrate(self._tensor_data(encoded), frame, callbacks)
        default = calibrated.reference[self.default_score_]
        latent = latent_means(self.model_, calibrated.data)  # each member's codes of the records it left out
        self.profile_: ReferenceProfile | None = ReferenceProfile.fit(
            self.schema_,
            encoded,
            score_name=self.default_score_,
            reference_scores=default,
            reference_p_values=self.calibration_.p_value(self.default_score_, default),
            reference_latent=[codes[rows] for codes, rows in zip(latent, calibrated.members, strict=True)],
        )
        return self

    def _check_params(self) -> None:
        super()._check_params()
        check_positive_int("max_categories", self.max_categories)
        if not (self.latent_dim == "auto" or (isinstance(self.latent_dim, int) and self.latent_dim >= 1)):
            raise ValueError(f"latent_dim must be a positive integer or 'auto', got: {self.latent_dim!r}")
        if not (len(self.hidden) >= 1 and all(isinstance(h, int) and h >= 1 for h in self.hidden)):
            raise ValueError(f"hidden must be a non-empty tuple of positive integers, got: {self.hidden!r}")
        if isinstance(self.condition_on, str):
            raise ValueError(f"condition_on must be a list of column names, got the string {self.condition_on!r}")

    def _set_features(self) -> None:
        self.feature_names_in_ = np.asarray(self.schema_.names, dtype=object)
        self.n_features_in_ = len(self.schema_.names)

    def _network_config(self) -> VAEConfig:
        modelled = self.schema_.subset(context=False)
        latent = self.latent_dim
        if latent == "auto":
            latent = int(min(16, max(2, math.ceil(math.sqrt(len(modelled.columns))))))
        return VAEConfig(
            **modelled.layout(self.model_missingness),
            hidden=tuple(self.hidden),
            latent_dim=int(latent),
            min_sigma=self.min_sigma,
            half_steps=tuple(half_step(c, self.min_sigma) for c in modelled.of_kind(NUMERIC)),
            n_members=self.n_members,
            context_dim=VAEConfig(**self.schema_.subset(context=True).layout(model_missingness=True)).input_dim,
        )

    def _network(self) -> TabularVAE:
        return TabularVAE(self.config_)

    def _loss(self) -> Any:
        return elbo_loss

    def _tensor_data(self, encoded: EncodedBatch) -> TensorData:
        """Model input: the modelled columns and, for a conditional model, the context."""
        modelled, context = self.schema_.split(encoded)
        return TensorData.from_batch(modelled, self.config_, self.device_, self._context_tensor(context))

    def _context_tensor(self, context: EncodedBatch) -> torch.Tensor | None:
        if not self.config_.context_dim:
            return None
        layout = VAEConfig(**self.schema_.subset(context=True).layout(model_missingness=True))
        return TensorData.from_batch(context, layout, self.device_).inputs

    # ------------------------------------------------------------------ scoring
    def _columns(self, X: Any) -> dict[str, np.ndarray]:
        columns = columns_from_input(X, feature_names=list(self.feature_names_in_))
        if len(next(iter(columns.values()), ())) == 0:
            raise ValueError("X has no rows")
        return columns

    def _model_input(self, X: Any) -> TensorData:
        return self._tensor_data(self.schema_.encode(self._columns(X)))

    def _score_data(
        self, data: TensorData, per_feature: bool, by_member: bool = False
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        nll = partial(feature_nll, config=self.config_)
        return score_data(self.model_, data, self._noise(), nll_fn=nll, per_feature=per_feature, by_member=by_member)

    def _input_counts(self, data: TensorData) -> dict[str, np.ndarray]:
        """``missing_unseen``: values missing in columns that had no missing value in training (scored as
        missing all the same); ``unknown_categories``: categorical values outside the model's vocabulary
        (unseen in training, or too rare to get a category of their own: scored in the unknown bucket)."""
        modelled = self.schema_.subset(context=False)
        rate = {c.name: c.missing_rate for c in modelled.columns}
        never_missing = torch.tensor([rate[name] == 0 for name in modelled.feature_order], device=data.missing.device)
        n_numeric = self.config_.n_numeric
        categorical_missing = data.missing[:, n_numeric : n_numeric + len(self.config_.category_sizes)]
        return {
            "missing_unseen": (data.missing & never_missing).sum(dim=1).cpu().numpy(),
            "unknown_categories": ((data.categorical == 0) & ~categorical_missing).sum(dim=1).cpu().numpy(),
        }

    def _contribution_columns(self, per_feature: np.ndarray) -> dict[str, np.ndarray]:
        modelled = self.schema_.subset(context=False)
        position = {name: j for j, name in enumerate(modelled.feature_order)}
        return {f"contribution_{name}": per_feature[:, position[name]] for name in modelled.names}

    def score_valid(
        self, X: Any, *, fpr: float | None = None, contributions: bool = False
    ) -> tuple[dict[str, np.ndarray], pd.Series]:
        """:meth:`score_columns` of the rows of X that can be scored, and the reason why each other row cannot
        (indexed by row position, as ``schema_.invalid_rows``): bad rows are set aside instead of raising.
        Validates once; the batch scorer's entry point."""
        fpr = self._fitted_fpr(fpr)
        encoded, reasons = self.schema_.partition(self._columns(X))
        return self._score_table(self._tensor_data(encoded), fpr, contributions), reasons

    def drift(
        self, X: Any, *, scores: np.ndarray | None = None, thresholds: DriftThresholds | None = None
    ) -> DriftReport:
        """Drift of the records X against the reference profile saved with the model.

        Per column PSI (and KS for numeric, Jensen-Shannon for categorical columns), missing-rate change,
        the shift of the default score, the outlier rate at ``fpr`` against the calibrated rate and the
        drift of the latent codes; see :mod:`anomaly_vae.profile` and :mod:`anomaly_vae.tabular.profile`.
        ``scores``: the default scores of X when already computed (the service passes them), else X is scored.
        """
        check_is_fitted(self, "model_")
        profile = getattr(self, "profile_", None)
        if profile is None:
            raise ValueError(NO_PROFILE)
        encoded = self.schema_.encode(self._columns(X))
        data = self._tensor_data(encoded)
        scores = checked_scores(
            scores, len(encoded), lambda: self._score_data(data, per_feature=False)[0][self.default_score_]
        )
        return profile.compare(
            self.schema_,
            encoded,
            scores=scores,
            p_values=self.calibration_.p_value(self.default_score_, scores),
            latent=latent_means(self.model_, data),
            fpr=self.fpr,
            n_calibration=self.calibration_.size,
            thresholds=thresholds,
        )

    # ------------------------------------------------------------------ generating
    def sample(self, n: int = 1, random_state: int | None = None, *, context: Any = None) -> pd.DataFrame:
        """``n`` synthetic records drawn from the model, as a frame with the training columns and dtypes.

        Numeric columns come back in original units, categoricals as their labels (``"<unknown>"`` for
        the bucket of rare or unseen values), booleans as booleans, and values go missing at the rates the
        model learned. Each record is drawn by one ensemble member picked at random.

        A conditional model (``condition_on``) needs ``context``: a mapping of context column to one value
        (shared by all records) or a DataFrame with 1 or ``n`` rows of context values; the output repeats
        it in the context columns. ``random_state`` seeds the draw (None: fresh randomness).
        """
        check_is_fitted(self, "model_")
        if not (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1):
            raise ValueError(f"n must be a positive integer, got: {n!r}")
        seed = int(np.random.SeedSequence(random_state).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)
        context_schema = self.schema_.subset(context=True)
        given = context_frame(context, context_schema, int(n))
        context_tensor = self._context_tensor(context_schema.encode(given)) if context_schema.names else None
        frame = self.schema_.subset(context=False).decode(draw(self.model_, int(n), generator, context_tensor))
        return pd.concat([frame, given], axis=1)[self.schema_.names]

    # ------------------------------------------------------------------ persistence
    def _extra_meta(self) -> dict[str, Any]:
        return {"schema": self.schema_.to_dict(), "profile": None if self.profile_ is None else self.profile_.to_dict()}

    def _restore(self, meta: dict[str, Any]) -> None:
        self.schema_ = TabularSchema.from_dict(meta["schema"])
        self._set_features()
        network: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["network"].items()}
        self.config_ = VAEConfig(**network)
        profile = meta.get("profile")  # absent in models saved before drift monitoring
        self.profile_ = None if profile is None else ReferenceProfile.from_dict(profile)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags


def half_step(column: Column, min_sigma: float) -> float:
    """Half a numeric column's grid step in encoded units where the column gets a discretized likelihood
    (cells at least ``min_sigma`` wide: flags, small counts, coarse levels), else 0 (a density). A decoder
    cannot collapse onto cells narrower than its smallest scale, ``min_sigma``: there the density is
    about the cell's probability over its width, a constant (fine grids, as of values rounded to a few
    decimals or counts in the thousands)."""
    width = column.step / column.scale
    return width / 2.0 if width >= min_sigma else 0.0
