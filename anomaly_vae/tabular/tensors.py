"""Encoded records on a device: the tabular network's input, with its masks computed once."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from anomaly_vae.tabular.model import VAEConfig
from anomaly_vae.tabular.schema import EncodedBatch


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
