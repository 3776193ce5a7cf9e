"""Per-sample loss terms. Every function returns one value per record (or per record and feature);
the caller averages. Missing entries contribute nothing to the likelihood; where missingness is
modelled, a Bernoulli term for "is missing" is added to that feature instead."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from anomaly_vae.model import DecoderOutput, VAEConfig
from anomaly_vae.schema import EncodedBatch

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class TensorData:
    """An :class:`EncodedBatch` on a device, with the encoder input and masks computed once."""

    inputs: torch.Tensor  # (n, input_dim) encoder input
    numeric: torch.Tensor  # (n, n_numeric), missing -> 0
    categorical: torch.Tensor  # (n, n_categorical), missing -> 0
    boolean: torch.Tensor  # (n, n_boolean), missing -> 0
    missing: torch.Tensor  # (n, n_features) bool, feature order numeric|categorical|boolean
    context: torch.Tensor | None = None  # (n, context_dim) input of a conditional VAE
    any_missing: bool = True  # False when no entry is missing (the mask is then skipped; kept by slices)

    @classmethod
    def from_batch(
        cls, batch: EncodedBatch, config: VAEConfig, device: torch.device | str, context: torch.Tensor | None = None
    ) -> TensorData:
        numeric = torch.as_tensor(batch.numeric, device=device)
        categorical = torch.as_tensor(batch.categorical, device=device)
        boolean = torch.as_tensor(batch.boolean, device=device)
        missing = torch.cat([numeric.isnan(), categorical < 0, boolean.isnan()], dim=1)
        numeric = numeric.nan_to_num(0.0)
        boolean = boolean.nan_to_num(0.0)
        categorical = categorical.clamp(min=0)
        one_hots = [
            F.one_hot(categorical[:, j], size).float() * (~missing[:, config.n_numeric + j, None]).float()
            for j, size in enumerate(config.category_sizes)
        ]
        indicators = missing[:, list(config.missing_features)].float()
        inputs = torch.cat([numeric, *one_hots, boolean, indicators], dim=1)
        return cls(inputs, numeric, categorical, boolean, missing, context, bool(missing.any()))

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: torch.Tensor | slice) -> TensorData:
        return TensorData(
            self.inputs[index],
            self.numeric[index],
            self.categorical[index],
            self.boolean[index],
            self.missing[index],
            None if self.context is None else self.context[index],
            self.any_missing,
        )


def feature_nll(out: DecoderOutput, data: TensorData, config: VAEConfig) -> torch.Tensor:
    """Negative log-likelihood per record and feature in nats, shape (..., n, n_features).

    ``out`` holds parameters of shape (..., n, ·) for the n records of ``data`` (leading dimensions for
    ensemble members and importance samples broadcast against the data).
    """
    numeric = gaussian_nll(data.numeric, out.numeric_mean, out.numeric_sigma)
    leading = numeric.shape[:-1]
    categorical = [
        -torch.log_softmax(logits, dim=-1).gather(-1, data.categorical[:, j].expand(leading)[..., None])
        for j, logits in enumerate(out.category_logits)
    ]
    parts = [numeric, *categorical]
    if config.n_boolean:
        parts.append(
            F.binary_cross_entropy_with_logits(
                out.boolean_logits, data.boolean.expand_as(out.boolean_logits), reduction="none"
            )
        )
    nll = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
    if data.any_missing:
        nll = nll.masked_fill(data.missing, 0.0)
    if config.missing_features:
        index = list(config.missing_features)
        is_missing = data.missing[:, index].float().expand_as(out.missing_logits)
        missing_nll = F.binary_cross_entropy_with_logits(out.missing_logits, is_missing, reduction="none")
        nll = nll.index_add(-1, torch.tensor(index, device=nll.device), missing_nll)
    return nll


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """-log N(x; mean, sigma^2) elementwise. Without autograd (scoring) it works in place on one new tensor:
    on a CPU, fresh large tensors cost more than the arithmetic (3x here)."""
    if torch.is_grad_enabled():
        z = (x - mean) / sigma
        return torch.addcmul(torch.log(sigma) + _HALF_LOG_2PI, z, z, value=0.5)
    z = torch.sub(x, mean).div_(sigma)
    return z.square_().mul_(0.5).add_(torch.log(sigma) + _HALF_LOG_2PI)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per record: the last dimension is summed."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(dim=-1)
