"""``ImageVAEDetector``: the detector contract of :class:`~anomaly_vae.VAEDetector` for images, with a
VAE (dense or convolutional), per-pixel anomaly maps and reconstructions."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from anomaly_vae.base import CALIBRATED_SCORES, MIN_FIT_ROWS, BaseDetector, check_positive_int
from anomaly_vae.image.data import ImageData, ImageShape, complexity_nats, load_images
from anomaly_vae.image.losses import image_elbo_loss, pixel_nll
from anomaly_vae.image.model import DENSE_MAX_VALUES, ImageVAE, ImageVAEConfig
from anomaly_vae.image.profile import ImageProfile, fit_profile, statistics
from anomaly_vae.network import HALF_LOG_2PI
from anomaly_vae.profile import NO_PROFILE, DriftReport, DriftThresholds, checked_scores, latent_means
from anomaly_vae.scoring import SCORE_NAMES, score_data
from anomaly_vae.training import Callback

IMAGE_SCORES = (*CALIBRATED_SCORES, "neg_log_likelihood_ratio")
COMPRESSED_SHARE = 0.5  # default_score="auto": the ratio when images compress to less than this share
_VALUES_PER_CHUNK = 2**24  # members x samples x images x pixels held at once while scoring
_IMAGES_PER_CHUNK = 256  # encoded or decoded at once (latent codes, samples, reconstructions)
ARCHITECTURES = ("auto", "dense", "conv")


class ImageVAEDetector(BaseDetector):
    """VAE outlier detector for grayscale and RGB images (8 x 8 up to 256 x 256): a dense network for small
    images, a convolutional one for larger ones (``architecture``).

    Same contract as its sibling :class:`~anomaly_vae.VAEDetector` (both on
    :class:`~anomaly_vae.base.BaseDetector`): HIGHER = MORE ANOMALOUS; ``score_frame`` gives ``neg_elbo``,
    ``reconstruction_nll``, ``kl``, ``neg_log_likelihood`` (importance-weighted -log p(x), nats), conformal
    ``p_value`` and ``is_outlier``; ``predict`` / ``predict_proba`` use the calibrated threshold.

    Default score (``decision_function``, ``default_score="auto"``): the plain -log p(x)
    (``neg_log_likelihood``) or ``neg_log_likelihood_ratio`` = -log p(x) + P log 255 - L(x), the VAE's
    -log-probability of the 8-bit image (P values, density times bin width) minus its PNG code length
    L(x) in nats (the file's length; ``complexity``): the log-likelihood ratio against a generic
    compressor (Serra et al., "Input complexity and out-of-distribution detection with likelihood-based
    generative models", ICLR 2020). A likelihood alone rates simple images (few strokes, flat areas) as
    likely under any model; the ratio asks how much better the VAE explains the image than a model of
    images in general. That only holds where the
    compressor IS a model of the images: "auto" takes the ratio when it codes the held-out training images
    in less than half their raw 8-bit size (one-class MNIST, 28 x 28: about 40% with PNG, a quarter with
    zlib; the ratio lifted digit 8 from 0.88 to 0.95 AUROC), else -log p(x) (scikit-learn's 8 x 8 digits:
    more than their raw size, where the code length is mostly noise and the ratio cost 7 points). PNG
    rather than raw zlib (before #21's session 7): +0.5 and +0.4 AUROC points on the MNIST tuning and
    confirmation digits; docs/benchmarks.md. ``default_score_`` says which score was taken; a score name
    instead of "auto" fixes it. Models saved before keep zlib (``compressor_``).

    Inputs (``X`` everywhere): a numpy stack (N, H, W) or (N, H, W, C) with C = 1 or 3, uint8 (0-255) or
    float in [0, 1]; a list of such images of mixed sizes; or the path of a ``.npz`` (array ``X``) /
    ``.npy`` file or of a folder of PNG/JPEG files. Images are resized to the size fitted on the training
    images (``image_shape_``, saved with the model). Image files' bytes go through
    :func:`~anomaly_vae.image.data.decode_image` (pixel limit, corrupt files: a
    :class:`~anomaly_vae.errors.RecordError` naming the image); data sets in other layouts (tables of
    images, MVTec-AD trees) through :func:`~anomaly_vae.image.datasets.read_image_dataset`.

    Pixel likelihood: Gaussian with the decoder's mean and one learned standard deviation per channel
    (why: see :mod:`anomaly_vae.image.model`). :meth:`anomaly_maps` gives each pixel's share of
    ``reconstruction_nll``, :meth:`reconstruct` the decoded images, :meth:`sample` generated ones.

    Drift: ``fit`` keeps a reference profile (``profile_``, saved with the model): statistics of the
    training images as given (mean intensity, contrast, sharpness, height, width, aspect ratio), the
    held-out default scores and p-values, and each member's latent codes; :meth:`drift` compares a batch
    of images with it (see :mod:`anomaly_vae.image.profile`).

    Parameters (those not listed mean what they mean for :class:`~anomaly_vae.VAEDetector`)
    ----------
    default_score : {"auto", "neg_log_likelihood", "neg_log_likelihood_ratio", "neg_elbo", "reconstruction_nll"}
        See "Default score" above.
    n_importance_samples : int
        K samples of q(z|x) per image for ``neg_log_likelihood``; each costs a decoder pass, and scoring time
        grows with K. 4 (was 16): AUROC within 0.2 points of K = 16 on one-class MNIST and 8 x 8 digits, 3.4x faster
        scoring (docs/benchmarks.md, "MNIST speed and quality (#21)").
    latent_dim : int
    architecture : {"auto", "dense", "conv"}
        The network: "auto" takes the dense one for images of at most 4,096 values (channels x height x
        width: 64 x 64 grayscale), the convolutional one for larger images (why: :mod:`anomaly_vae.image.model`).
    base_channels : int
        Channels of the first convolution; each stride-2 stage doubles them (at most 256).
    image_size : (height, width) or None
        Size the network works at; None takes the first training image's. Sides above 256 are scaled
        down to 256 (aspect ratio kept).
    augment_shift : int or None
        Training augmentation: each image shifted by up to this many pixels along each axis. None: 2 for the
        convolutional network, 0 for the dense one (shifts cost it 1-3 AUROC points on MNIST digits and 2 on
        8 x 8 digits, where 2 pixels are a quarter of the image).
    calibration : {"auto", "out_of_bag", "split"}
        As for :class:`~anomaly_vae.VAEDetector`; with the default single network, "auto" is "split".
    device : {"auto", "cpu", "cuda"} or str
        "auto" picks CUDA when available.
    """

    kind = "image"
    calibrated_scores = IMAGE_SCORES
    table_scores = (*SCORE_NAMES, "complexity", "neg_log_likelihood_ratio")
    p_value_scores = IMAGE_SCORES
    score_rules = ("auto",)
    tuple_params = ("image_size",)
    config_: ImageVAEConfig
    model_: ImageVAE

    def __init__(
        self,
        *,
        latent_dim: int = 16,
        architecture: str = "auto",
        base_channels: int = 32,
        image_size: tuple[int, int] | None = None,
        default_score: str = "auto",
        fpr: float = 0.01,
        contamination: float = 0.0,
        n_importance_samples: int = 4,
        n_members: int = 1,
        validation_fraction: float = 0.1,
        calibration_fraction: float = 0.2,
        max_steps: int = 600,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        eval_every: int = 100,
        patience: int = 5,
        kl_warmup_steps: int = 200,
        trim_fraction: float = 0.0,
        bagging_fraction: float = 0.7,
        calibration: str = "auto",
        augment_shift: int | None = None,
        device: str = "auto",
        progress: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.base_channels = base_channels
        self.image_size = image_size
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
        self.augment_shift = augment_shift
        self.device = device
        self.progress = progress
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None, *, callbacks: Sequence[Callback] = ()) -> ImageVAEDetector:
        """Fit the VAE on the images X and calibrate its scores (y is ignored)."""
        self._start_fit()
        images, _ = load_images(X)
        size = None if self.image_size is None else (int(self.image_size[0]), int(self.image_size[1]))
        self.image_shape_ = ImageShape.fit(images, size)
        pixels = self.image_shape_.transform(images)
        if len(pixels) < MIN_FIT_ROWS:
            raise ValueError(f"X has {len(pixels)} images; at least {MIN_FIT_ROWS} are needed to train and calibrate")
        self.n_features_in_ = int(pixels[0].numel())
        shape = self.image_shape_
        architecture = self.architecture
        if architecture == "auto":
            architecture = "dense" if self.n_features_in_ <= DENSE_MAX_VALUES else "conv"
        self.config_ = ImageVAEConfig(
            shape.channels,
            shape.height,
            shape.width,
            int(self.latent_dim),
            self.base_channels,
            self.n_members,
            architecture,
        )
        self.compressor_ = "png"  # of the complexity term; models saved before PNG keep zlib
        # identical images always land in the same split (see anomaly_vae.splitting)
        digests = pd.DataFrame({"image": [hashlib.sha1(p.numpy().tobytes()).hexdigest() for p in pixels]})
        calibrated = self._train_and_calibrate(ImageData(pixels.to(self.device_)), digests, callbacks)
        default = calibrated.reference[self.default_score_]
        latent = latent_means(self.model_, calibrated.data, _IMAGES_PER_CHUNK)  # each member's left-out images
        self.profile_: ImageProfile | None = fit_profile(
            images,
            score_name=self.default_score_,
            reference_scores=default,
            reference_p_values=self.calibration_.p_value(self.default_score_, default),
            reference_latent=[codes[rows] for codes, rows in zip(latent, calibrated.members, strict=True)],
        )
        return self

    def _check_params(self) -> None:
        super()._check_params()
        for name in ("latent_dim", "base_channels"):
            check_positive_int(name, getattr(self, name))
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got: {self.architecture!r}")
        shift = self.augment_shift
        if not (shift is None or (isinstance(shift, (int, np.integer)) and shift >= 0)):
            raise ValueError(f"augment_shift must be None or a non-negative integer, got: {shift!r}")
        size = self.image_size
        if size is not None and not (len(size) == 2 and all(isinstance(s, int) and s >= 1 for s in size)):
            raise ValueError(f"image_size must be None or (height, width) in pixels, got: {size!r}")

    def _chosen_score(self, calibration_scores: dict[str, np.ndarray]) -> str:
        """``default_score="auto"`` (see the class docstring): the complexity-corrected ratio when the
        compressor is a model of these images, i.e. codes the held-out training images in less than
        ``COMPRESSED_SHARE`` of their raw 8-bit size; else the plain -log p(x)."""
        if self.default_score != "auto":
            return self.default_score
        nll, ratio = calibration_scores["neg_log_likelihood"], calibration_scores["neg_log_likelihood_ratio"]
        code_length = nll + self.n_features_in_ * math.log(255.0) - ratio  # the compressor's, in nats
        raw = self.n_features_in_ * 8 * math.log(2.0)
        return "neg_log_likelihood_ratio" if np.mean(code_length) < COMPRESSED_SHARE * raw else "neg_log_likelihood"

    def _network(self) -> ImageVAE:
        return ImageVAE(self.config_)

    def _loss(self) -> Any:
        shift = self.augment_shift
        if shift is None:
            shift = 2 if self.config_.architecture == "conv" else 0
        return partial(image_elbo_loss, max_shift=shift)

    # ------------------------------------------------------------------ scoring
    def _model_input(self, X: Any) -> ImageData:
        check_is_fitted(self, "model_")
        return ImageData(self.image_shape_.transform(load_images(X)[0]).to(self.device_))

    def _score_data(
        self, data: ImageData, per_feature: bool, by_member: bool = False
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        scores, per_pixel = score_data(
            self.model_,
            data,
            self._noise(),
            rows_per_chunk=max(1, _VALUES_PER_CHUNK // self.n_features_in_),
            nll_fn=lambda decoded, batch: pixel_nll(decoded, batch.inputs).flatten(-3),
            per_feature=per_feature,
            by_member=by_member,
        )
        # -log of the VAE's probability of the 8-bit image (density x bin width 1/255 per value) minus
        # -log of the compressor's: the log-likelihood ratio of the VAE against a generic compressor
        scores["complexity"] = complexity_nats(data.inputs, self.compressor_)
        bins = self.n_features_in_ * math.log(255.0)
        scores["neg_log_likelihood_ratio"] = scores["neg_log_likelihood"] + bins - scores["complexity"]
        return scores, per_pixel

    def score_columns(self, X: Any, *, fpr: float | None = None, contributions: bool = False) -> dict[str, np.ndarray]:
        """Every per-image score as ``{column name: array of shape (n_images,)}``: the columns of
        :meth:`BaseDetector.score_columns` plus ``complexity`` (PNG code length in nats) and
        ``neg_log_likelihood_ratio`` (the default score, see the class docstring), and a ``p_value_<score>``
        of every calibrated score. Per-pixel contributions come from :meth:`anomaly_maps`."""
        if contributions:
            raise ValueError("images have no per-column contributions: use anomaly_maps(X) for per-pixel ones")
        return super().score_columns(X, fpr=fpr)

    def score_frame(self, X: Any, *, fpr: float | None = None, contributions: bool = False) -> pd.DataFrame:
        """:meth:`score_columns` as a DataFrame, one row per image (indexed by file name for a folder)."""
        names = load_images(X)[1] if isinstance(X, (str, Path)) and Path(X).is_dir() else None
        return pd.DataFrame(self.score_columns(X, fpr=fpr, contributions=contributions), index=names)

    def anomaly_maps(self, X: Any) -> np.ndarray:
        """Per-pixel anomaly maps (N, H, W) at the fitted size: each pixel's NLL in nats above that of a
        perfect reconstruction, i.e. its squared error 0.5 ((x - mean) / sigma)^2 averaged over importance
        samples and members, summed over channels. A map sums to ``reconstruction_nll`` minus a constant
        (the same for every image of a model)."""
        _, per_pixel = self._score_data(self._model_input(X), per_feature=True)
        assert per_pixel is not None  # per_feature=True
        shape = self.image_shape_
        floor = self.model_.log_sigma.detach().clamp(min=-6.0).mean(dim=0).cpu().double().numpy() + HALF_LOG_2PI
        return (per_pixel.reshape(-1, shape.channels, shape.height, shape.width) - floor).clip(min=0.0).sum(axis=1)

    @torch.inference_mode()
    def reconstruct(self, X: Any) -> np.ndarray:
        """Decoded images (N, H, W, C) in [0, 1] from each image's posterior mean, averaged over members."""
        data = self._model_input(X)
        self.model_.eval()
        chunks = []
        for start in range(0, len(data), _IMAGES_PER_CHUNK):
            mean, _ = self.model_.decode(self.model_.encode(data.inputs[start : start + _IMAGES_PER_CHUNK])[0])
            chunks.append(mean.mean(dim=0).permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(chunks)

    def preprocess(self, X: Any) -> np.ndarray:
        """The images as the model sees them: (N, H, W, C) in [0, 1], resized."""
        return self._model_input(X).inputs.permute(0, 2, 3, 1).cpu().numpy()

    # ------------------------------------------------------------------ drift
    def drift(
        self, X: Any, *, scores: np.ndarray | None = None, thresholds: DriftThresholds | None = None
    ) -> DriftReport:
        """Drift of the images X (anything :meth:`score_frame` takes: a stack, a list of arrays of mixed
        sizes, a path) against the reference profile saved with the model.

        Features: the image statistics of :mod:`anomaly_vae.image.profile` (mean intensity, contrast,
        sharpness, height, width, aspect ratio of the images as given, before resizing), each with PSI and
        KS; then the shift of the default score, the outlier rate at ``fpr`` against the calibrated rate,
        and the drift of the latent codes, as for :meth:`VAEDetector.drift <anomaly_vae.VAEDetector.drift>`
        (same :class:`~anomaly_vae.profile.DriftReport`, Bonferroni over these 6 features). ``scores``: the
        default scores of X when already computed (the service passes them), else X is scored. Models
        saved before image drift existed have ``profile_ = None`` and raise a ``ValueError``.
        """
        check_is_fitted(self, "model_")
        profile = getattr(self, "profile_", None)
        if profile is None:
            raise ValueError(NO_PROFILE)
        images = load_images(X)[0]  # decoded once: statistics of the originals, then the model's input
        data = ImageData(self.image_shape_.transform(images).to(self.device_))
        scores = checked_scores(
            scores, len(data), lambda: self._score_data(data, per_feature=False)[0][self.default_score_]
        )
        return profile.compare_numeric(
            statistics(images),
            scores=scores,
            p_values=self.calibration_.p_value(self.default_score_, scores),
            latent=latent_means(self.model_, data, _IMAGES_PER_CHUNK),
            fpr=self.fpr,
            n_calibration=self.calibration_.size,
            thresholds=thresholds,
        )

    # ------------------------------------------------------------------ generating
    @torch.inference_mode()
    def sample(self, n: int = 1, random_state: int | None = None) -> np.ndarray:
        """``n`` images generated by the model, (n, H, W, C) float32 in [0, 1] at the fitted size: what it
        thinks normal images look like.

        Each image draws z ~ N(0, I) and is decoded by one ensemble member picked at random; the result is
        the decoder's mean (the Gaussian pixel noise of the likelihood is not added, as usual for image
        VAEs: it would only add grain). ``random_state`` seeds the draw (None: fresh randomness); the same
        seed gives the same images on every device (drawn on the CPU by numpy), and ``sample(k, seed)`` is
        the first k images of ``sample(n, seed)``.
        """
        check_is_fitted(self, "model_")
        if not (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1):
            raise ValueError(f"n must be a positive integer, got: {n!r}")
        normal, picks = [np.random.default_rng(s) for s in np.random.SeedSequence(random_state).spawn(2)]
        z = torch.from_numpy(normal.standard_normal((int(n), self.config_.latent_dim), dtype=np.float32))
        members = torch.from_numpy(picks.integers(self.config_.n_members, size=int(n)))
        self.model_.eval()
        chunks = []
        for start in range(0, int(n), _IMAGES_PER_CHUNK):
            codes = z[start : start + _IMAGES_PER_CHUNK].to(self.device_)
            mean, _ = self.model_.decode(codes.expand(self.config_.n_members, *codes.shape))  # every member decodes
            picked = members[start : start + _IMAGES_PER_CHUNK].to(self.device_)
            chunks.append(mean[picked, torch.arange(len(codes), device=self.device_)].permute(0, 2, 3, 1).cpu())
        return torch.cat(chunks).numpy()

    # ------------------------------------------------------------------ persistence
    def _extra_meta(self) -> dict[str, Any]:
        profile = None if self.profile_ is None else self.profile_.to_dict()
        return {"image_shape": asdict(self.image_shape_), "profile": profile, "compressor": self.compressor_}

    def _restore(self, meta: dict[str, Any]) -> None:
        self.image_shape_ = ImageShape(**meta["image_shape"])
        self.compressor_ = meta.get("compressor", "zlib")  # models saved before PNG: zlib
        self.config_ = ImageVAEConfig(**meta["network"])
        self.n_features_in_ = self.config_.channels * self.config_.height * self.config_.width
        profile = meta.get("profile")  # absent in models saved before image drift monitoring
        self.profile_ = None if profile is None else ImageProfile.from_dict(profile)
