"""Synthetic records from a trained VAE, in the model's encoded form.

Each record draws z ~ N(0, I), is decoded by one ensemble member picked at random, and then draws every
feature from its likelihood (Gaussian, categorical, Bernoulli) and, where missingness is modelled, its
"is missing" Bernoulli. :meth:`anomaly_vae.tabular.schema.TabularSchema.decode` turns the result into a frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from anomaly_vae.tabular.model import TabularVAE
from anomaly_vae.tabular.schema import EncodedBatch, TabularSchema, restore_dtype


@torch.inference_mode()
def draw(model: TabularVAE, n: int, generator: torch.Generator, context: torch.Tensor | None = None) -> EncodedBatch:
    """``n`` encoded records; ``context`` (n, context_dim) for a conditional VAE. ``generator`` is a CPU
    generator, so the same seed gives the same records on every device."""
    model.eval()
    config = model.config
    device = model.raw_sigma.device

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device)

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(device)

    z = normal(config.n_members, n, config.latent_dim)
    member = torch.randint(config.n_members, (n,), generator=generator).to(device)
    rows = torch.arange(n, device=device)
    out = model.decode(z, context)  # every member decodes every z; each record keeps its own member's
    numeric = out.numeric_mean[member, rows] + out.numeric_sigma[member, 0] * normal(n, config.n_numeric)
    categorical = [
        (logits[member, rows] - torch.log(-torch.log(uniform(n, logits.shape[-1]).clamp(min=1e-12)))).argmax(-1)
        for logits in out.category_logits  # Gumbel-max: a draw from softmax(logits)
    ]
    boolean = (uniform(n, config.n_boolean) < torch.sigmoid(out.boolean_logits[member, rows])).float()
    missing = uniform(n, len(config.missing_features)) < torch.sigmoid(out.missing_logits[member, rows])

    batch = EncodedBatch(
        numeric.cpu().numpy().astype(np.float32),
        torch.stack(categorical, dim=1).cpu().numpy() if categorical else np.empty((n, 0), dtype=np.int64),
        boolean.cpu().numpy(),
    )
    n_categorical = len(config.category_sizes)
    for j, feature in enumerate(config.missing_features):
        gone = missing[:, j].cpu().numpy()
        if feature < config.n_numeric:
            batch.numeric[gone, feature] = np.nan
        elif feature < config.n_numeric + n_categorical:
            batch.categorical[gone, feature - config.n_numeric] = -1
        else:
            batch.boolean[gone, feature - config.n_numeric - n_categorical] = np.nan
    return batch


def context_frame(context: Any, schema: TabularSchema, n: int) -> pd.DataFrame:
    """The ``n`` rows of context values for sampling, checked against the context columns of ``schema`` and
    cast to their training dtypes (a dict gives one value per column, shared by all records)."""
    names = schema.names
    if not names:
        if context is not None:
            raise ValueError("context was given but the model is not conditional (fit it with condition_on)")
        return pd.DataFrame(index=range(n))
    if context is None:
        raise ValueError(f"the model is conditioned on {names}: pass context values for them")
    if isinstance(context, pd.DataFrame):
        frame = context.reset_index(drop=True)
    elif isinstance(context, dict):
        frame = pd.DataFrame({k: np.atleast_1d(np.asarray(v)) for k, v in context.items()})
    else:
        raise TypeError(f"context must be a dict or a DataFrame, got {type(context).__name__}")
    missing, unknown = [c for c in names if c not in frame.columns], [c for c in frame.columns if c not in names]
    if missing or unknown:
        raise ValueError(f"context must give exactly the context columns {names}: missing {missing}, unknown {unknown}")
    if len(frame) not in (1, n):
        raise ValueError(f"context has {len(frame)} rows: give 1 (shared by all records) or n={n}")
    if len(frame) == 1:
        frame = frame.iloc[np.zeros(n, dtype=int)].reset_index(drop=True)
    return pd.DataFrame({c.name: restore_dtype(frame[c.name].to_numpy(), c) for c in schema.columns})
