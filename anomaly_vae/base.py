"""The skeleton every detector of the family shares: parameter checks, seeding, device choice, fitting
(split -> train -> calibrate), the score table and everything read off it, and the model folder.

A detector subclass says what its data is: how X becomes model input (:meth:`BaseDetector._model_input`),
its network and loss, how it scores that input (:meth:`BaseDetector._score_data`), and what it saves
besides the weights and the calibration. ``fit`` is written per subclass (it fits the preprocessing)
and calls :meth:`BaseDetector._train_and_calibrate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from anomaly_vae.calibration import Calibration, check_fpr, warn_if_unresolvable
from anomaly_vae.network import ModelInput, VAENetwork
from anomaly_vae.persistence import load_folder, save_folder
from anomaly_vae.scoring import SCORE_NAMES, importance_noise
from anomaly_vae.splitting import split_rows
from anomaly_vae.training import Callback, History, TrainConfig, bagging_rows, train

MIN_FIT_ROWS = 20  # the fewest records fit accepts: about 14 to train on, 2 to validate, 4 to calibrate
CALIBRATED_SCORES = ("neg_log_likelihood", "neg_elbo", "reconstruction_nll")
_KINDS: dict[str, type[BaseDetector]] = {}  # saved kind -> detector class
Data = TypeVar("Data", bound=ModelInput)
CALIBRATION_METHODS = ("auto", "out_of_bag", "split")


@dataclass
class Calibrated(Generic[Data]):
    """The records calibration scored, their scores, and which members scored each record: (E, n) bool,
    True where the member did not learn from the record (every member for a held-out part). ``reference``:
    whole-ensemble scores of held-out records, distributed as new records' scores are (the calibration
    part; with out-of-bag calibration, whose scores come from fewer members, the validation part)."""

    data: Data
    scores: dict[str, np.ndarray]
    members: np.ndarray
    reference: dict[str, np.ndarray]


class BaseDetector(OutlierMixin, BaseEstimator):
    """Base of :class:`~anomaly_vae.VAEDetector` and :class:`~anomaly_vae.ImageVAEDetector`: HIGHER scores =
    MORE ANOMALOUS, calibrated p-values and thresholds, deterministic scores, folders without pickle."""

    kind: ClassVar[str]  # the "kind" saved in the model folder
    calibrated_scores: ClassVar[tuple[str, ...]] = CALIBRATED_SCORES  # those with p-values and thresholds
    table_scores: ClassVar[tuple[str, ...]] = SCORE_NAMES  # the score columns of the table, in order
    p_value_scores: ClassVar[tuple[str, ...]] = ("neg_elbo", "reconstruction_nll")  # with a p_value_<name> column
    score_rules: ClassVar[tuple[str, ...]] = ()  # default_score values that fit resolves (see _chosen_score)
    tuple_params: ClassVar[tuple[str, ...]] = ()  # parameters saved as JSON lists and loaded back as tuples

    # set by the subclass's constructor (scikit-learn: the constructor only stores its arguments)
    default_score: str
    fpr: float
    contamination: float
    n_importance_samples: int
    n_members: int
    validation_fraction: float
    calibration_fraction: float
    max_steps: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    eval_every: int
    patience: int
    kl_warmup_steps: int
    trim_fraction: float
    bagging_fraction: float
    calibration: str
    device: str
    progress: bool
    random_state: int | None

    # fitted
    config_: Any
    model_: VAENetwork
    calibration_: Calibration
    threshold_: float
    calibration_method_: str
    default_score_: str  # the score decision_function gives: default_score, or what "auto" chose in fit
    seed_: int
    device_: torch.device
    n_features_in_: int
    history_: History

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _KINDS[cls.kind] = cls

    # ------------------------------------------------------------------ what a subclass provides
    def _model_input(self, X: Any) -> ModelInput:
        """X (checked) as the network's input on ``device_``."""
        raise NotImplementedError

    def _network(self) -> VAENetwork:
        raise NotImplementedError

    def _loss(self) -> Callable[[Any, Any, float, torch.Generator | None], torch.Tensor]:
        raise NotImplementedError

    def _score_data(
        self, data: Any, per_feature: bool, by_member: bool = False
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """Scores (name -> (n,), or (E, n) by member) of model input, with per-feature NLL (n, n_features)
        when asked."""
        raise NotImplementedError

    def _contribution_columns(self, per_feature: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _input_counts(self, data: Any) -> dict[str, np.ndarray]:
        """Per-record counts of input the model scores but never saw in training (none by default)."""
        return {}

    def _extra_meta(self) -> dict[str, Any]:
        """What the model folder holds besides parameters, network, seed, threshold, weights, calibration."""
        raise NotImplementedError

    def _restore(self, meta: dict[str, Any]) -> None:
        """Set the fitted attributes ``_extra_meta`` describes (and ``config_``, ``n_features_in_``)."""
        raise NotImplementedError

    def _chosen_score(self, calibration_scores: dict[str, np.ndarray]) -> str:
        """The default score of the fitted model from the held-out calibration scores: ``default_score``
        (a subclass that offers ``default_score="auto"`` decides here)."""
        return self.default_score

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        """The checks every detector shares; a subclass adds its own."""
        choices = (*self.calibrated_scores, *self.score_rules)
        if self.default_score not in choices:
            raise ValueError(f"default_score must be one of {choices}, got: {self.default_score!r}")
        check_fpr(self.fpr)
        for name, low_open in (
            ("contamination", False),
            ("validation_fraction", True),
            ("calibration_fraction", True),
            ("trim_fraction", False),
        ):
            value = getattr(self, name)
            if not (0.0 < value < 0.5 if low_open else 0.0 <= value < 0.5):
                raise ValueError(f"{name} must be in {'(' if low_open else '['}0, 0.5), got: {value!r}")
        if not 0.0 < self.bagging_fraction <= 1.0:
            raise ValueError(f"bagging_fraction must be in (0, 1], got: {self.bagging_fraction!r}")
        if self.calibration not in CALIBRATION_METHODS:
            raise ValueError(f"calibration must be one of {CALIBRATION_METHODS}, got: {self.calibration!r}")
        if self.calibration == "out_of_bag" and not (self.n_members > 1 and self.bagging_fraction < 1.0):
            raise ValueError("calibration='out_of_bag' needs n_members > 1 and bagging_fraction < 1")
        for name in ("n_importance_samples", "n_members", "max_steps", "batch_size", "eval_every", "patience"):
            check_positive_int(name, getattr(self, name))

    def _start_fit(self) -> None:
        """Parameter checks, the seed of everything random in this fit, the device."""
        self._check_params()
        self.seed_ = int(np.random.SeedSequence(self.random_state).generate_state(1)[0] & 0x7FFFFFFF)
        self.device_ = resolve_device(self.device)

    def _train_and_calibrate(
        self, data: Data, split_keys: pd.DataFrame, callbacks: Sequence[Callback]
    ) -> Calibrated[Data]:
        """Split the records (identical ``split_keys`` rows share a part), train the network with early
        stopping on the validation part, and calibrate on records the scoring members did not learn from:
        with out-of-bag calibration, every training record a member left out, scored by those members;
        else a held-out calibration part. Says at once (a warning) when the calibration set will be too
        small to resolve ``fpr``."""
        out_of_bag = self.calibration_method() == "out_of_bag"
        fractions = (self.validation_fraction,) if out_of_bag else (self.validation_fraction, self.calibration_fraction)
        train_rows, validation_rows, *held_out = (
            torch.as_tensor(p, device=self.device_) for p in split_rows(split_keys, fractions, seed=self.seed_)
        )
        with torch.random.fork_rng(devices=[self.device_] if self.device_.type == "cuda" else []):
            torch.manual_seed(self.seed_)
            self.model_ = self._network().to(self.device_)
            member_rows = bagging_rows(self.n_members, len(train_rows), self.bagging_fraction, self.device_)
            out_of_bag_rows = (~member_rows.all(dim=0)).nonzero()[:, 0]  # left out by at least one member
            calibration_rows = out_of_bag_rows if out_of_bag else held_out[0]
            if not len(calibration_rows):  # every member drew every training row: a handful of rows at most
                raise ValueError("no training row was left out by any member to calibrate on: use calibration='split'")
            warn_if_unresolvable(self.fpr, len(calibration_rows), self.contamination)
            self.history_ = train(
                self.model_,
                data[train_rows],
                data[validation_rows],
                self._train_config(),
                loss_fn=self._loss(),
                member_rows=member_rows,
                callbacks=callbacks,
                progress=self.progress,
            )
        if out_of_bag:
            calibration_data = data[train_rows[calibration_rows]]
            members = (~member_rows[:, calibration_rows]).cpu().numpy()  # (E, n): who scores each record
            by_member, _ = self._score_data(calibration_data, per_feature=False, by_member=True)
            scores = {name: (values * members).sum(axis=0) / members.sum(axis=0) for name, values in by_member.items()}
            reference, _ = self._score_data(data[validation_rows], per_feature=False)
        else:
            calibration_data = data[calibration_rows]
            members = np.ones((self.n_members, len(calibration_rows)), dtype=bool)
            scores, _ = self._score_data(calibration_data, per_feature=False)
            reference = scores
        self.calibration_method_ = "out_of_bag" if out_of_bag else "split"
        self.calibration_ = Calibration.fit({name: scores[name] for name in self.calibrated_scores}, self.contamination)
        self.default_score_ = self._chosen_score(scores)
        self.threshold_ = self.calibration_.threshold(self.default_score_, self.fpr)
        return Calibrated(calibration_data, scores, members, reference)

    def calibration_method(self) -> str:
        """ "out_of_bag" or "split": what ``calibration`` means for this ensemble."""
        if self.calibration == "auto":
            bagged = self.n_members > 1 and self.bagging_fraction < 1.0
            return "out_of_bag" if bagged else "split"
        return self.calibration

    def _train_config(self) -> TrainConfig:
        return TrainConfig(
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            max_steps=self.max_steps,
            eval_every=self.eval_every,
            patience=self.patience,
            kl_warmup_steps=self.kl_warmup_steps,
            trim_fraction=self.trim_fraction,
            bagging_fraction=self.bagging_fraction,
        )

    def _noise(self) -> torch.Tensor:
        return importance_noise(self.seed_, self.n_importance_samples, self.config_.latent_dim)

    # ------------------------------------------------------------------ scoring
    def score_columns(self, X: Any, *, fpr: float | None = None, contributions: bool = False) -> dict[str, np.ndarray]:
        """Every per-record score as ``{column name: array of shape (n_samples,)}``: the score table.

        Columns: ``neg_elbo``, ``reconstruction_nll``, ``kl``, ``neg_log_likelihood`` (nats; images add
        ``complexity`` and ``neg_log_likelihood_ratio``), ``p_value`` (conformal, of the default score),
        ``p_value_<score>`` of the other calibrated scores, ``is_outlier`` (``p_value``-consistent at
        ``fpr``, default ``self.fpr``) and, with ``contributions=True`` (tabular models),
        ``contribution_<column>`` for each column: its share of ``reconstruction_nll`` (they sum to it).
        """
        fpr = self._fitted_fpr(fpr)  # first: it checks that the detector is fitted
        return self._score_table(self._model_input(X), fpr, contributions)

    def _fitted_fpr(self, fpr: float | None) -> float:
        """``fpr``, or the model's own when None, checked; first checks that the detector is fitted."""
        check_is_fitted(self, "model_")
        fpr = self.fpr if fpr is None else fpr
        check_fpr(fpr)
        return fpr

    def _score_table(self, data: ModelInput, fpr: float, contributions: bool) -> dict[str, np.ndarray]:
        scores, per_feature = self._score_data(data, per_feature=contributions)
        default = scores[self.default_score_]
        columns = {name: scores[name] for name in self.table_scores}
        columns["p_value"] = self.calibration_.p_value(self.default_score_, default)
        for name in self.p_value_scores:
            columns[f"p_value_{name}"] = self.calibration_.p_value(name, scores[name])
        columns["is_outlier"] = default > self.calibration_.threshold(self.default_score_, fpr)
        columns.update(self._input_counts(data))
        if per_feature is not None:
            columns.update(self._contribution_columns(per_feature))
        return columns

    def score_frame(self, X: Any, *, fpr: float | None = None, contributions: bool = False) -> pd.DataFrame:
        """:meth:`score_columns` as a DataFrame, one row per record of X (index kept from a DataFrame X)."""
        columns = self.score_columns(X, fpr=fpr, contributions=contributions)
        return pd.DataFrame(columns, index=X.index if isinstance(X, pd.DataFrame) else None)

    def decision_function(self, X: Any) -> np.ndarray:
        """Outlier score of shape (n_samples,): the default score, HIGHER = MORE ANOMALOUS."""
        return self.score_columns(X)[self.default_score_]

    def score_samples(self, X: Any) -> np.ndarray:
        """``-decision_function(X)``: an estimate of log p(x) (scikit-learn's direction)."""
        return -self.decision_function(X)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of ``score_samples(X)``: the average estimated log-likelihood in nats."""
        return float(np.mean(self.score_samples(X)))

    def predict(self, X: Any, *, fpr: float | None = None) -> np.ndarray:
        """0/1 labels of shape (n_samples,): 1 where the record is an outlier at ``fpr``."""
        return self.score_columns(X, fpr=fpr)["is_outlier"].astype(int)

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n_samples, 2): columns P(inlier), P(outlier) with P(outlier) = 1 - conformal p-value."""
        p_value = self.score_columns(X)["p_value"]
        return np.column_stack([p_value, 1.0 - p_value])

    def thresholds(self, fpr: float | None = None) -> dict[str, float]:
        """Calibrated threshold of each calibrated score at ``fpr`` (default ``self.fpr``)."""
        fpr = self._fitted_fpr(fpr)
        return {name: self.calibration_.threshold(name, fpr) for name in self.calibrated_scores}

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the fitted detector to a folder (JSON + safetensors, no pickle), atomically."""
        check_is_fitted(self, "model_")
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()}
        meta = {
            "kind": self.kind,
            "params": params,
            **self._extra_meta(),
            "network": asdict(self.config_),
            "seed": self.seed_,
            "threshold": self.threshold_,
            "calibration_method": self.calibration_method_,
            "default_score": self.default_score_,
        }
        tensors = {f"model.{k}": v for k, v in self.model_.state_dict().items()}
        for name, values in self.calibration_.scores.items():
            tensors[f"calibration.{name}"] = torch.from_numpy(values)
        save_folder(Path(path), meta, tensors)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> Self:
        """Read a detector of this class written by :meth:`save`; ``device`` as in the constructor.
        :func:`anomaly_vae.load` reads either kind."""
        meta, tensors = load_folder(Path(path))
        kind = saved_kind(meta)
        if kind != cls.kind:
            raise ValueError(f"{path} holds a model of kind {kind!r}, not {cls.kind!r}: load it with anomaly_vae.load")
        return cls._from_saved(meta, tensors, device)

    @classmethod
    def _from_saved(cls, meta: dict[str, Any], tensors: dict[str, torch.Tensor], device: str) -> Self:
        params = {**meta["params"], "device": device}
        for name in cls.tuple_params:
            params[name] = None if params[name] is None else tuple(params[name])
        detector = cls(**params)
        detector.seed_ = meta["seed"]
        detector.device_ = resolve_device(device)
        detector._restore(meta)
        detector.model_ = detector._network()
        detector.model_.load_state_dict(
            {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
        )
        detector.model_.to(detector.device_).eval()
        detector.calibration_ = Calibration(
            {k.removeprefix("calibration."): v.numpy() for k, v in tensors.items() if k.startswith("calibration.")}
        )
        detector.threshold_ = meta["threshold"]
        detector.calibration_method_ = meta.get("calibration_method", "split")  # older folders: split only
        detector.default_score_ = meta.get("default_score", params["default_score"])  # older folders: the parameter
        return detector

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def load(path: str | Path, *, device: str = "cpu") -> BaseDetector:
    """The detector saved in the folder ``path``, of whichever kind (tabular or image)."""
    meta, tensors = load_folder(Path(path))
    return _KINDS[saved_kind(meta)]._from_saved(meta, tensors, device)


def saved_kind(meta: dict[str, Any]) -> str:
    kind = meta.get("kind", "tabular")  # folders of tabular models saved before images existed have none
    if kind not in _KINDS:
        raise ValueError(f"unknown model kind {kind!r}; this version reads {sorted(_KINDS)}")
    return str(kind)


def check_positive_int(name: str, value: Any) -> None:
    if not (isinstance(value, (int, np.integer)) and value >= 1):
        raise ValueError(f"{name} must be a positive integer, got: {value!r}")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available")
    return resolved
