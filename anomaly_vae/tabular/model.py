"""The tabular VAE: an MLP encoder, the reparameterization trick and an MLP decoder with one
likelihood head per column type (see :mod:`anomaly_vae.tabular.losses` for the likelihoods)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from anomaly_vae.network import VAENetwork

# Without autograd, layer outputs are computed in multiples of this many columns. MKL's single-precision
# GEMM (AVX-512, oneMKL 2024.2) rounds a row differently by its position in the batch (mod 2 or 4) for
# outputs 5-7 and 9-11 wide; measured with widths padded to a multiple of 8 and row counts a multiple of
# 64 (scoring.ROW_BLOCK), every row is the same bits at any row count, position and thread count.
GEMM_COLUMNS = 8


@dataclass(frozen=True)
class VAEConfig:
    """Shape of the network. ``missing_features`` are the feature indexes whose missingness is modelled."""

    n_numeric: int
    category_sizes: tuple[int, ...]
    n_boolean: int
    missing_features: tuple[int, ...] = ()
    hidden: tuple[int, ...] = (64, 32)
    latent_dim: int = 8
    min_sigma: float = 0.05
    # per numeric column, half its grid step in encoded units: > 0 gives the column a discretized likelihood
    # (the probability of the value's grid cell); 0, or () for models saved before: a density
    half_steps: tuple[float, ...] = ()
    n_members: int = 1
    context_dim: int = 0  # width of the encoded context of a conditional VAE (0: unconditional)

    @property
    def input_dim(self) -> int:
        return self.n_numeric + sum(self.category_sizes) + self.n_boolean + len(self.missing_features)

    @property
    def discrete(self) -> list[int]:
        """Indexes of the numeric columns with a discretized likelihood."""
        return [j for j, half in enumerate(self.half_steps) if half > 0]


class EnsembleLinear(nn.Module):
    """``n_members`` independent linear layers applied at once: (E, m, in) or (m, in) -> (E, m, out)."""

    def __init__(self, n_members: int, d_in: int, d_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)  # nn.Linear's default initialisation, per member
        self.weight = nn.Parameter(torch.empty(n_members, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_members, 1, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # the same inputs for every member
            x = x.expand(self.weight.shape[0], *x.shape)
        d_out = self.weight.shape[-1]
        if torch.is_grad_enabled() or d_out % GEMM_COLUMNS == 0:
            return torch.bmm(x, self.weight).add_(self.bias)  # in place: a fresh large tensor costs more than the add
        # Without autograd (scoring), the output is computed GEMM_COLUMNS wide and cut: for some widths
        # MKL's kernel rounds a row differently by its position in the batch (see GEMM_COLUMNS).
        weight = F.pad(self.weight, (0, -d_out % GEMM_COLUMNS))
        return torch.bmm(x, weight)[..., :d_out].add(self.bias)


def mlp(n_members: int, sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(EnsembleLinear(n_members, d_in, d_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


@dataclass
class DecoderOutput:
    """Likelihood parameters; every tensor has the leading shape (E, ...) of the decoded ``z``."""

    numeric_mean: torch.Tensor  # (E, ..., n_numeric)
    numeric_sigma: torch.Tensor  # (E, 1, ..., n_numeric): one scale per member and column
    category_logits: list[torch.Tensor]  # one (E, ..., size) per categorical column
    boolean_logits: torch.Tensor  # (E, ..., n_boolean)
    missing_logits: torch.Tensor  # (E, ..., len(missing_features))


class TabularVAE(VAENetwork):
    """An ensemble of ``n_members`` VAEs trained side by side (batched matrix products, one optimizer).

    Members share nothing but the data; E = 1 is a plain VAE. Encoder outputs and decoder inputs carry
    the member as their first dimension.
    """

    config: VAEConfig

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        e, hidden = config.n_members, list(config.hidden)
        output_dim = config.input_dim  # one output per input unit: means, logits, missingness logits
        self.encoder = mlp(e, [config.input_dim + config.context_dim, *hidden, 2 * config.latent_dim])
        self.decoder = mlp(e, [config.latent_dim + config.context_dim, *reversed(hidden), output_dim])
        self.raw_sigma = nn.Parameter(torch.zeros(e, config.n_numeric))

    def encode(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of (n, input_dim) inputs, each (E, n, latent_dim); a conditional
        VAE also sees the (n, context_dim) context."""
        if context is not None:
            x = torch.cat([x, context], dim=-1)
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor, context: torch.Tensor | None = None) -> DecoderOutput:
        """Decode z of shape (E, ..., n, latent_dim), given the (n, context_dim) context of a conditional VAE."""
        if context is not None:
            z = torch.cat([z, context.expand(*z.shape[:-1], context.shape[-1])], dim=-1)
        e, batch_shape = z.shape[0], z.shape[1:-1]
        out = self.decoder(z.reshape(e, -1, z.shape[-1]))
        out = out.reshape(e, *batch_shape, out.shape[-1])
        c = self.config
        sizes = [c.n_numeric, *c.category_sizes, c.n_boolean, len(c.missing_features)]
        parts = list(out.split(sizes, dim=-1))
        sigma = c.min_sigma + F.softplus(self.raw_sigma + 0.5413)  # softplus(0.5413) = 1: start at 1
        sigma = sigma.reshape(e, *([1] * len(batch_shape)), c.n_numeric)
        return DecoderOutput(parts[0], sigma, parts[1:-2], parts[-2], parts[-1])
