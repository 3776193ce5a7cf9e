"""Per-record scores from a trained VAE.

With K importance samples z_k = mu + sigma * eps_k drawn from q(z|x), the scores of a record are

- ``reconstruction_nll`` = mean_k -log p(x|z_k), and per feature the same mean per column,
- ``kl`` = KL(q(z|x) || p(z)) in closed form,
- ``neg_elbo`` = reconstruction_nll + kl,
- ``neg_log_likelihood`` = -log mean_k p(x|z_k) p(z_k) / q(z_k|x), the importance-weighted estimate of
  -log p(x), tighter as K grows. It is at most the ELBO computed from the same K samples; ``neg_elbo``
  takes the KL in closed form instead, so a record's estimate can exceed its ``neg_elbo`` by that
  Monte Carlo error (measured: up to 0.23 nats on 1% of 8 x 8 digit images at K = 8).

The K noise vectors eps_k are fixed per model (drawn once from its seed) and shared by all records, so a
record's scores do not depend on the rest of its batch in exact arithmetic. In float32 they would: the
CPU kernels round a row differently by the number of rows in the call (MKL's GEMM picks other kernels
for 1-8 rows and for odd row counts; torch's vectorised reductions over members and samples treat the
last columns of a row count that is not a multiple of 64 apart) and, for some layer widths, by the row's
position in the call (see ``model.GEMM_COLUMNS``). So every chunk is scored as a multiple of ROW_BLOCK
rows (the last row repeated), and layer outputs are computed a multiple of 8 columns wide: measured, a
record then gets the same bits alone, in any batch and with any thread count (tests/anomaly_vae/
test_determinism.py; docs/reliability.md).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from anomaly_vae.network import ModelInput, VAENetwork, kl_divergence

SCORE_NAMES = ("neg_elbo", "reconstruction_nll", "kl", "neg_log_likelihood")
ROW_BLOCK = 64  # rows are scored in multiples of this many (see the module docstring)


@functools.lru_cache(maxsize=64)
def importance_noise(seed: int, n_samples: int, latent_dim: int) -> torch.Tensor:
    """The fixed (K, latent_dim) standard-normal noise of a model (generated on the CPU for every device;
    cached, so callers must not modify it)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n_samples, latent_dim, generator=generator)


@torch.inference_mode()
def score_data(
    model: VAENetwork,
    data: ModelInput,
    noise: torch.Tensor,
    rows_per_chunk: int | None = None,
    *,
    nll_fn: Callable[[Any, Any], torch.Tensor],
    per_feature: bool = True,
    by_member: bool = False,
    row_block: int = ROW_BLOCK,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Scores (name -> (n,) float64) and per-feature reconstruction NLL (n, n_features) of ``data`` (None
    with ``per_feature=False``).

    With an ensemble, every score is the mean over members (``neg_log_likelihood`` is then the mean of
    the members' estimates of -log p(x), i.e. -log of their geometric mean density); ``by_member=True``
    gives each member's scores instead, (E, n) per name (out-of-bag calibration needs them). ``nll_fn(decoded,
    batch)`` gives the network's per-feature NLL of shape (E, K, n, F) of the decoded samples;
    ``rows_per_chunk`` bounds the records x samples x members held at once (default: a size that stays
    in a CPU's caches, 64 times more on a GPU, where each chunk costs kernel launches).
    Chunks are whole multiples of ``row_block`` rows, padded by repeating their last row, unless the
    bound leaves room for fewer rows (very large images): those are scored unpadded.
    """
    if model.training:  # eval() walks every submodule: skipped when already in eval mode
        model.eval()
    noise = noise.to(data.inputs.device)
    if rows_per_chunk is None:
        rows_per_chunk = 65536 if data.inputs.device.type == "cpu" else 2**22
    k, members = len(noise), model.config.n_members
    chunk = max(1, rows_per_chunk // (k * members))
    if chunk >= row_block:
        chunk -= chunk % row_block
    else:
        row_block = 1
    scores: list[torch.Tensor] = []  # (4, chunk) per chunk, (4, E, chunk) by member
    contributions: list[torch.Tensor] = []
    for start in range(0, max(len(data), 1), chunk):  # no rows: one empty chunk gives empty scores
        n = min(chunk, len(data) - start)
        batch = _padded(data, start, n, row_block)
        mu, logvar = (t[:, None] for t in model.encode(batch.inputs, batch.context))  # (E, 1, n, L)
        z = model.reparameterize(mu, logvar, noise[None, :, None, :])  # (E, K, n, L)
        nll = nll_fn(model.decode(z, batch.context), batch)  # (E, K, n, F)
        reconstruction = nll.sum(dim=-1)
        # log p(z) - log q(z|x) with z = mu + sigma * eps: the 2 pi terms cancel and (z - mu) / sigma = eps
        log_prior_ratio = 0.5 * (
            noise.square().sum(dim=-1)[None, :, None] + logvar.sum(dim=-1) - z.square().sum(dim=-1)
        )
        log_weights = log_prior_ratio - reconstruction
        if by_member:
            kl = kl_divergence(mu[:, 0], logvar[:, 0])
            mean_reconstruction = reconstruction.mean(dim=1)
            iw_nll = math.log(k) - torch.logsumexp(log_weights, dim=1)
        else:
            kl = kl_divergence(mu[:, 0], logvar[:, 0]).mean(dim=0)
            mean_reconstruction = reconstruction.mean(dim=(0, 1))
            iw_nll = (math.log(k) - torch.logsumexp(log_weights, dim=1)).mean(dim=0)
        scores.append(torch.stack([mean_reconstruction + kl, mean_reconstruction, kl, iw_nll])[..., :n])  # SCORE_NAMES
        if per_feature:
            contributions.append(nll.mean(dim=(0, 1))[:n])
    joined = dict(zip(SCORE_NAMES, torch.cat(scores, dim=-1).double().cpu().numpy(), strict=True))
    return joined, torch.cat(contributions).double().cpu().numpy() if per_feature else None


def _padded(data: ModelInput, start: int, n: int, row_block: int) -> ModelInput:
    """Rows ``start`` to ``start + n`` of ``data``, the last one repeated up to a multiple of ``row_block`` rows."""
    size = -(-n // row_block) * row_block
    if size == n:
        return data[start : start + n]
    index = torch.arange(start, start + size, device=data.inputs.device).clamp_(max=start + n - 1)
    return data[index]
