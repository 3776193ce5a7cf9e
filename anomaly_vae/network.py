"""What every network of the detector family shares, and what the training loop and the scorer rely on.

A network is an ensemble of ``config.n_members`` VAEs trained side by side: ``encode`` gives the posterior
mean and log-variance with the member as the first dimension, ``decode`` maps latent codes (member
first) to the parameters of its likelihood. Model inputs (:class:`ModelInput`) are row-indexable and
carry the encoder input and, for a conditional model, the context the encoder and decoder also see.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, Self

import torch
from torch import nn

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)  # of the Gaussian likelihoods


class NetworkConfig(Protocol):
    @property
    def n_members(self) -> int: ...

    @property
    def latent_dim(self) -> int: ...


class ModelInput(Protocol):
    """Records on a device as a network reads them."""

    @property
    def inputs(self) -> torch.Tensor: ...

    @property
    def context(self) -> torch.Tensor | None: ...

    def __len__(self) -> int: ...

    def __getitem__(self, index: torch.Tensor | slice) -> Self: ...


class VAENetwork(nn.Module):
    """Base of the tabular and the image network."""

    config: NetworkConfig

    def encode(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of the records ``x``, each (E, n, latent_dim)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor, context: torch.Tensor | None = None) -> Any:
        """Likelihood parameters of latent codes z of shape (E, ..., n, latent_dim)."""
        raise NotImplementedError

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return mu + eps * torch.exp(0.5 * logvar)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per record: the last dimension is summed."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(dim=-1)
