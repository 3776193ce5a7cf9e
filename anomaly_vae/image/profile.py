"""The image part of the reference profile (:mod:`anomaly_vae.profile` has what both detectors share): the
features are simple statistics of each image AS GIVEN (before it is resized to the model's size), all
numeric, so the report has the tabular one's shape (``features``, score, latent codes, outlier rate):

- ``mean_intensity``: the mean of the pixel intensities in [0, 1] (all channels);
- ``contrast``: their standard deviation over the image (of the gray image: the channels' mean);
- ``sharpness``: the mean absolute 4-neighbour Laplacian of the gray image (0 for images under 3 pixels
  a side): blur lowers it, noise and sharpening raise it;
- ``height``, ``width`` in pixels and ``aspect_ratio`` = width / height: a camera or crop change.

A change of lighting moves the first two, a focus problem or compression the third, a new camera the
last three; the score, the p-values and the latent codes catch what these do not describe.

The latent codes are tested per dimension (:func:`anomaly_vae.drift.diagonal_gaussian_test`), not with
the tabular profile's full-covariance test: an image model's calibration part is often a few dozen
images for 16 latent dimensions, far too few for a covariance matrix (that test then alarmed on the
training images themselves).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from anomaly_vae import drift
from anomaly_vae.image.data import load_images
from anomaly_vae.profile import ReferenceProfile, numeric_profile

FEATURES = ("mean_intensity", "contrast", "sharpness", "height", "width", "aspect_ratio")
_IMAGES_PER_CHUNK = 64  # of a stack: bounds the float64 copy


def image_statistics(X: Any) -> dict[str, np.ndarray]:
    """The profile's features of the images X (anything the detector scores: a stack, a list of arrays of
    mixed sizes, a path), as ``{feature name: (n_images,) float64}`` in the order of ``FEATURES``."""
    return statistics(load_images(X)[0])


def statistics(images: list[torch.Tensor] | torch.Tensor) -> dict[str, np.ndarray]:
    """:func:`image_statistics` of loaded images: (N, C, H, W) in [0, 1], or a list of (C, H, W)."""
    if isinstance(images, torch.Tensor):
        parts = [_chunk(images[i : i + _IMAGES_PER_CHUNK]) for i in range(0, len(images), _IMAGES_PER_CHUNK)]
    else:
        parts = [_chunk(image[None]) for image in images]
    return {name: np.concatenate([part[name] for part in parts]) for name in FEATURES}


def _chunk(images: torch.Tensor) -> dict[str, np.ndarray]:
    """The statistics of (n, C, H, W) images of one size."""
    gray = images.double().mean(dim=1)  # (n, H, W)
    n, height, width = gray.shape
    if height >= 3 and width >= 3:
        centre = gray[:, 1:-1, 1:-1]
        laplacian = 4 * centre - gray[:, :-2, 1:-1] - gray[:, 2:, 1:-1] - gray[:, 1:-1, :-2] - gray[:, 1:-1, 2:]
        sharpness = laplacian.abs().mean(dim=(1, 2)).cpu().numpy()
    else:
        sharpness = np.zeros(n)
    return {
        "mean_intensity": images.double().mean(dim=(1, 2, 3)).cpu().numpy(),
        "contrast": gray.std(dim=(1, 2), correction=0).cpu().numpy(),
        "sharpness": sharpness,
        "height": np.full(n, float(height)),
        "width": np.full(n, float(width)),
        "aspect_ratio": np.full(n, width / height),
    }


class ImageProfile(ReferenceProfile):
    """The reference profile of an image model (saved in its ``model.json`` as the shared fields)."""

    def _latent_test(self, latent: np.ndarray) -> tuple[float, float]:
        """Mean over members of the diagonal Gaussians' KL, and the Bonferroni p-value over members of the
        per-dimension tests of means and variances."""
        kls, p_values = [], []
        n_latent = self.n_latent or [self.n_calibration] * len(self.latent_mean)
        for codes, mean, cov, n_reference in zip(latent, self.latent_mean, self.latent_cov, n_latent, strict=True):
            kl, p_value = drift.diagonal_gaussian_test(codes, np.asarray(mean), np.diag(np.asarray(cov)), n_reference)
            kls.append(kl)
            p_values.append(p_value)
        return float(np.mean(kls)), min(1.0, len(p_values) * min(p_values))


def fit_profile(
    images: list[torch.Tensor] | torch.Tensor,
    *,
    score_name: str,
    reference_scores: np.ndarray,
    reference_p_values: np.ndarray,
    reference_latent: Sequence[np.ndarray],
) -> ImageProfile:
    """The reference profile of an image model: the statistics of its training ``images`` (as loaded,
    before resizing), and the held-out scores, p-values and latent codes as for a tabular model."""
    values = statistics(images)
    return ImageProfile.build(
        [numeric_profile(name, values[name]) for name in FEATURES],
        n_reference=len(values[FEATURES[0]]),
        score_name=score_name,
        reference_scores=reference_scores,
        reference_p_values=reference_p_values,
        reference_latent=reference_latent,
    )
