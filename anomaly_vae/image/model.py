"""The image VAE: a dense network for small images, a convolutional one for larger ones.

Architecture (``ImageVAEConfig.architecture``, chosen by :class:`~anomaly_vae.ImageVAEDetector`'s
``architecture="auto"``): images of at most ``DENSE_MAX_VALUES`` values (channels x height x width:
64 x 64 grayscale, 36 x 36 RGB) get a fully connected encoder and decoder (``DENSE_HIDDEN`` units), larger
ones stride-2 convolutions down to at most 8 x 8. On one-class MNIST (28 x 28) the dense network ranked
as well as the convolutional one at a quarter of its training cost, and on scikit-learn's 8 x 8 digits
better (docs/benchmarks.md, "MNIST speed and quality (#21)"); its first layer's weights grow with the
pixel count, so large images keep the convolutions.

Its likelihood (:mod:`anomaly_vae.image.losses`): Gaussian on intensities in [0, 1] with the mean from
the decoder and ONE learned standard deviation per channel (and ensemble member). Why: the score of an
image is then, up to a constant, its squared reconstruction error over sigma^2, which measures how far
the image is from what the model can produce. Likelihoods with a scale per pixel (Gaussian or
discretized logistic with decoder-predicted scales, or the Bernoulli / continuous Bernoulli whose
variance follows the mean) and the discretized 8-bit logistic even with one scale all make -log p(x)
grow with the number of mid-gray (edge) pixels, so simple images look normal to any model: on one-class
MNIST, digit 8 as normal, they scored 0.56-0.65 AUROC against 0.85 for this choice (docs/benchmarks.md,
"MNIST: what was tried").
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from anomaly_vae.network import VAENetwork


@dataclass(frozen=True)
class ImageVAEConfig:
    """Shape of the network: images of ``channels`` x ``height`` x ``width``."""

    channels: int
    height: int
    width: int
    latent_dim: int = 16
    base_channels: int = 32
    n_members: int = 1
    architecture: str = "conv"  # "dense" or "conv" (models saved before the dense network: "conv")

    @property
    def depth(self) -> int:
        """Stride-2 stages: enough to bring the longer side down to at most 8."""
        return max(1, math.ceil(math.log2(max(self.height, self.width) / 8)))

    @property
    def padded(self) -> tuple[int, int]:
        """Height and width padded up to a multiple of 2**depth (the network's own grid)."""
        step = 2**self.depth
        return -(-self.height // step) * step, -(-self.width // step) * step


DENSE_MAX_VALUES = 4096  # images with at most this many values (C x H x W) get the dense network
DENSE_HIDDEN = (512, 256)


class _DenseMember(nn.Module):
    """One VAE of fully connected layers (``DENSE_HIDDEN``) on the flattened image, and the mirror image."""

    def __init__(self, config: ImageVAEConfig) -> None:
        super().__init__()
        self.shape = (config.channels, config.height, config.width)
        self.encoder = _mlp([math.prod(self.shape), *DENSE_HIDDEN, 2 * config.latent_dim])
        self.decoder = _mlp([config.latent_dim, *DENSE_HIDDEN[::-1], math.prod(self.shape)])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder((x * 2.0 - 1.0).flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).unflatten(1, self.shape)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for d_in, d_out in itertools.pairwise(sizes):
        layers += [nn.Linear(d_in, d_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class _ConvMember(nn.Module):
    """One VAE: stride-2 convolutions down to at most 8 x 8, a dense layer, and the mirror image."""

    def __init__(self, config: ImageVAEConfig) -> None:
        super().__init__()
        self.config = config
        widths = [min(config.base_channels * 2**i, 256) for i in range(config.depth)]
        height, width = config.padded
        self.grid = (widths[-1], height // 2**config.depth, width // 2**config.depth)
        flat = math.prod(self.grid)
        down: list[nn.Module] = []
        for c_in, c_out in zip([config.channels, *widths[:-1]], widths, strict=True):
            down += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        self.encoder = nn.Sequential(
            *down, nn.Flatten(), nn.Linear(flat, 256), nn.ReLU(), nn.Linear(256, 2 * config.latent_dim)
        )
        up: list[nn.Module] = []
        for c_in, c_out in zip(widths[::-1], [*widths[::-1][1:], config.channels], strict=True):
            up += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        self.decoder = nn.Sequential(
            nn.Linear(config.latent_dim, 256),
            nn.ReLU(),
            nn.Linear(256, flat),
            nn.ReLU(),
            nn.Unflatten(1, self.grid),
            *up[:-1],
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        height, width = self.config.padded
        x = F.pad(x * 2.0 - 1.0, (0, width - x.shape[-1], 0, height - x.shape[-2]))
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z)
        return out[..., : self.config.height, : self.config.width]


class ImageVAE(VAENetwork):
    """An ensemble of ``n_members`` image VAEs, dense or convolutional (E = 1 is a plain VAE); the member is
    the first dimension of the encoder outputs and of the decoder inputs, as in
    :class:`~anomaly_vae.tabular.model.TabularVAE`."""

    config: ImageVAEConfig

    def __init__(self, config: ImageVAEConfig) -> None:
        super().__init__()
        self.config = config
        member = _DenseMember if config.architecture == "dense" else _ConvMember
        self.nets = [member(config) for _ in range(config.n_members)]  # typed view of the registered list
        self.members = nn.ModuleList(self.nets)
        self.log_sigma = nn.Parameter(torch.full((config.n_members, config.channels, 1, 1), -2.0))

    def encode(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of (n, C, H, W) images, each (E, n, latent_dim) (images have no
        context)."""
        mu, logvar = torch.stack([m.encode(x) for m in self.nets]).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel means in [0, 1], (E, ..., C, H, W), and the log standard deviations, (E, 1.., C, 1, 1), of z
        of shape (E, ..., latent_dim)."""
        batch_shape = z.shape[1:-1]
        out = torch.stack([m.decode(z[i].reshape(-1, z.shape[-1])) for i, m in enumerate(self.nets)])
        mean = torch.sigmoid(out.reshape(len(self.nets), *batch_shape, *out.shape[-3:]))
        log_sigma = self.log_sigma.clamp(min=-6.0).reshape(len(self.nets), *([1] * len(batch_shape)), -1, 1, 1)
        return mean, log_sigma
