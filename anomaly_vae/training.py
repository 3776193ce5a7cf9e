"""The training loop of every network of the family: minibatch Adam on the network's loss (its negative
ELBO), KL warm-up, trimming, bagging, early stopping on a validation split. Experiment tracking lives in
callbacks (see :class:`Callback`), never in this loop."""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import torch
from tqdm.auto import tqdm

from anomaly_vae.network import ModelInput, VAENetwork

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 512
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    max_steps: int = 800
    eval_every: int = 50  # steps between validation checks
    patience: int = 3  # validation checks without improvement before stopping
    kl_warmup_steps: int = 100
    trim_fraction: float = 0.05  # share of each batch's highest losses left out after warm-up
    bagging_fraction: float = 0.7  # share of the training rows each ensemble member learns from


@dataclass
class History:
    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    best_step: int = 0
    stopped_early: bool = False

    def record(self, step: int, train_loss: float, validation_loss: float) -> None:
        self.steps.append(step)
        self.train_loss.append(train_loss)
        self.validation_loss.append(validation_loss)


class Callback(Protocol):
    def on_epoch_end(self, step: int, logs: dict[str, float]) -> None:
        """Called after each validation check ("epoch" = ``eval_every`` steps)."""


Network = TypeVar("Network", bound=VAENetwork)
Data = TypeVar("Data", bound=ModelInput)
# (model, data, beta, generator) -> negative ELBO per member and record, shape (E, n)
LossFn = Callable[[Network, Data, float, "torch.Generator | None"], torch.Tensor]


def train(
    model: Network,
    train_data: Data,
    validation_data: Data,
    config: TrainConfig,
    *,
    loss_fn: LossFn[Network, Data],
    member_rows: torch.Tensor | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
) -> History:
    """Train ``model`` in place and restore the weights with the best validation loss.

    ``loss_fn`` is the network's loss (the tabular or the image negative ELBO). ``member_rows`` (E,
    n_train) bool says which training rows each member learns from (default: :func:`bagging_rows`).
    Randomness comes from torch's global generator: seed it (or fork it) around this call.
    """
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, fused=True
    )
    history = History()
    best = _Best(model)
    device = train_data.inputs.device
    if member_rows is None:
        member_rows = bagging_rows(model.config.n_members, len(train_data), config.bagging_fraction, device)
    batches = _minibatches(train_data, member_rows, min(config.batch_size, len(train_data)))
    running, since_check = torch.zeros((), device=device), 0
    bar = tqdm(total=config.max_steps, desc="training", unit="step", leave=False, disable=not progress)
    model.train()
    for step in range(1, config.max_steps + 1):
        batch, mask = next(batches)
        beta = min(1.0, step / config.kl_warmup_steps) if config.kl_warmup_steps else 1.0
        trim = config.trim_fraction if step > config.kl_warmup_steps else 0.0
        loss = trimmed_mean(loss_fn(model, batch, beta, None), mask, trim)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += loss.detach()
        since_check += 1
        bar.update(1)
        if step % config.eval_every and step != config.max_steps:
            continue
        train_loss = running.item() / since_check
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"training loss is {train_loss} before step {step}: lower learning_rate or check the data"
            )
        validation_loss = evaluate(model, validation_data, loss_fn)
        model.train()
        running.zero_()
        since_check = 0
        history.record(step, train_loss, validation_loss)
        for callback in callbacks:
            callback.on_epoch_end(step, {"train_loss": train_loss, "validation_loss": validation_loss})
        bar.set_postfix(loss=f"{train_loss:.3f}", val=f"{validation_loss:.3f}")
        if validation_loss < best.loss or step <= config.kl_warmup_steps:
            best.keep(model, validation_loss)
            history.best_step = step
        elif best.worse_checks(config.patience):
            history.stopped_early = True
            break
    bar.close()
    model.load_state_dict(best.state)
    model.eval()
    logger.info("trained %d steps, best validation loss %.4f at step %d", step, best.loss, history.best_step)
    return history


class _Best:
    """The weights with the best validation loss so far, and the checks since they were found."""

    def __init__(self, model: VAENetwork) -> None:
        self.loss, self.state, self.bad_checks = math.inf, copy.deepcopy(model.state_dict()), 0

    def keep(self, model: VAENetwork, loss: float) -> None:
        self.loss, self.state, self.bad_checks = loss, copy.deepcopy(model.state_dict()), 0

    def worse_checks(self, patience: int) -> bool:
        """Count a check without improvement; True when there have been ``patience`` in a row."""
        self.bad_checks += 1
        return self.bad_checks >= patience


def bagging_rows(members: int, n: int, fraction: float, device: torch.device) -> torch.Tensor:
    """(members, n) bool: each member of an ensemble learns from its own random ``fraction`` of the n rows
    (a single network from all of them)."""
    return torch.rand(members, n, device=device) < (fraction if members > 1 else 1.0)


def _minibatches(data: Data, rows: torch.Tensor, batch_size: int) -> Iterator[tuple[Data, torch.Tensor]]:
    """Endless minibatches of ``data`` with each member's (E, batch) bagging mask: the rows are reshuffled
    at the start of every epoch, and the batches are views of the shuffled copy."""
    n = len(data)
    while True:
        order = torch.randperm(n, device=rows.device)
        shuffled, shuffled_rows = data[order], rows[:, order]
        for start in range(0, n - batch_size + 1, batch_size):
            yield shuffled[start : start + batch_size], shuffled_rows[:, start : start + batch_size]


def trimmed_mean(losses: torch.Tensor, mask: torch.Tensor, trim: float) -> torch.Tensor:
    """Mean of the (E, b) ``losses`` where ``mask`` is set, leaving out each member's highest ``trim``
    share: records that fit worst (most likely the outliers in contaminated data) do not pull the model."""
    if trim:
        keep = (mask.sum(dim=1, keepdim=True) * (1.0 - trim)).round().clamp(min=1)
        ranks = losses.detach().masked_fill(~mask, math.inf).argsort(dim=1).argsort(dim=1)
        mask = mask & (ranks < keep)
    return (losses * mask).sum() / mask.sum().clamp(min=1)


@torch.inference_mode()
def evaluate(model: Network, data: Data, loss_fn: LossFn[Network, Data], chunk: int = 8192) -> float:
    """Mean negative ELBO on ``data`` (over records and members), with the same seeded noise at every call
    so that checks compare."""
    model.eval()
    generator = torch.Generator(device=data.inputs.device).manual_seed(0)
    total = sum(
        loss_fn(model, data[i : i + chunk], 1.0, generator).mean(0).sum().item() for i in range(0, len(data), chunk)
    )
    return total / len(data)
