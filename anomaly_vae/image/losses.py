"""The image network's loss: a Gaussian pixel likelihood with one learned scale per channel (why: see
:mod:`anomaly_vae.image.model`), the negative ELBO, and the shift augmentation used while training."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from anomaly_vae.image.data import ImageData
from anomaly_vae.image.model import ImageVAE
from anomaly_vae.network import HALF_LOG_2PI, kl_divergence


def pixel_nll(decoded: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Gaussian NLL in nats of each pixel and channel of ``x``, shape of the decoded means (..., C, H, W);
    ``x`` of shape (n, C, H, W) broadcasts against them."""
    mean, log_sigma = decoded
    return 0.5 * ((x - mean) * torch.exp(-log_sigma)).square() + log_sigma + HALF_LOG_2PI


def image_elbo_loss(
    model: ImageVAE, data: ImageData, beta: float = 1.0, generator: torch.Generator | None = None, max_shift: int = 0
) -> torch.Tensor:
    """Negative ELBO per member and image (one reparameterized sample each), shape (E, n). In training mode
    each image is first shifted by up to ``max_shift`` pixels in each direction (augmentation)."""
    x = data.inputs
    if model.training and max_shift:
        x = random_shift(x, max_shift)
    mu, logvar = model.encode(x)
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    recon = pixel_nll(model.decode(model.reparameterize(mu, logvar, eps)), x).flatten(2).sum(dim=-1)
    return recon + beta * kl_divergence(mu, logvar)


def random_shift(x: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Shift each (C, H, W) image by a random whole number of pixels in [-max_shift, max_shift] along each
    axis, repeating the border pixels into the uncovered strip."""
    n, _, height, width = x.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), device=x.device).to(x.dtype)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = shifts[:, 0] * 2.0 / width
    theta[:, 1, 2] = shifts[:, 1] * 2.0 / height
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="border", align_corners=False)
