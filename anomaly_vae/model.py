"""The tabular VAE: an MLP encoder, the reparameterization trick and an MLP decoder with one
likelihood head per column type (see :mod:`anomaly_vae.losses` for the likelihoods)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class VAEConfig:
    """Shape of the network. ``missing_features`` are the feature indexes whose missingness is modelled."""

    n_numeric: int
    category_sizes: tuple[int, ...]
    n_boolean: int
    missing_features: tuple[int, ...] = ()
    hidden: tuple[int, ...] = (128, 64)
    latent_dim: int = 8
    min_sigma: float = 0.05

    @property
    def n_features(self) -> int:
        return self.n_numeric + len(self.category_sizes) + self.n_boolean

    @property
    def input_dim(self) -> int:
        return self.n_numeric + sum(self.category_sizes) + self.n_boolean + len(self.missing_features)


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


@dataclass
class DecoderOutput:
    numeric_mean: torch.Tensor  # (n, n_numeric)
    numeric_sigma: torch.Tensor  # (n_numeric,)
    category_logits: list[torch.Tensor]  # one (n, size) per categorical column
    boolean_logits: torch.Tensor  # (n, n_boolean)
    missing_logits: torch.Tensor  # (n, len(missing_features))


class TabularVAE(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        hidden = list(config.hidden)
        output_dim = config.input_dim  # one output per input unit: means, logits, missingness logits
        self.encoder = mlp([config.input_dim, *hidden, 2 * config.latent_dim])
        self.decoder = mlp([config.latent_dim, *reversed(hidden), output_dim])
        self.raw_sigma = nn.Parameter(torch.zeros(config.n_numeric))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each (n, latent_dim)."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return mu + eps * torch.exp(0.5 * logvar)

    def decode(self, z: torch.Tensor) -> DecoderOutput:
        out = self.decoder(z)
        c = self.config
        sizes = [c.n_numeric, *c.category_sizes, c.n_boolean, len(c.missing_features)]
        parts = list(out.split(sizes, dim=-1))
        sigma = c.min_sigma + F.softplus(self.raw_sigma + 0.5413)  # softplus(0.5413) = 1: start at 1
        return DecoderOutput(parts[0], sigma, parts[1:-2], parts[-2], parts[-1])
