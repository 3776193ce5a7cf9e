"""A seeded synthetic mixed-type data set: the tests' data and the drift benchmark's."""

from __future__ import annotations

import numpy as np
import pandas as pd


def mixed_frame(n: int, seed: int, n_anomalies: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Mixed numeric / categorical / boolean rows from a 2-D latent factor, with NaN in two columns.

    Anomalies break the dependence between columns ("load" is off its relation with "duration" and the
    channel contradicts the amount) while every marginal value stays plausible.
    """
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n + n_anomalies, 2))
    frame = pd.DataFrame(
        {
            "amount": np.exp(1.0 + 0.5 * z[:, 0] + 0.1 * rng.normal(size=len(z))),  # heavy right tail
            "duration": 3.0 * z[:, 0] + z[:, 1] + 0.2 * rng.normal(size=len(z)),
            "load": z[:, 0] - 2.0 * z[:, 1] + 0.2 * rng.normal(size=len(z)),
            "count": rng.poisson(np.exp(1.0 + 0.3 * z[:, 0])).astype(np.int64),
            "channel": np.where(z[:, 0] + 0.3 * rng.normal(size=len(z)) > 0, "web", "store"),
            "tier": np.select([z[:, 1] < -0.5, z[:, 1] < 0.5], ["low", "mid"], "high"),
            "flagged": (z[:, 1] + 0.3 * rng.normal(size=len(z))) > 0,
        }
    )
    if n_anomalies:
        frame.loc[n:, "load"] += rng.choice([-4.0, 4.0], size=n_anomalies)
        frame.loc[n:, "channel"] = np.where(frame.loc[n:, "channel"] == "web", "store", "web")
    labels = np.r_[np.zeros(n, int), np.ones(n_anomalies, int)]
    order = rng.permutation(len(frame))
    frame, labels = frame.iloc[order].reset_index(drop=True), labels[order]
    frame.loc[rng.random(len(frame)) < 0.05, "load"] = np.nan
    frame["channel"] = frame["channel"].astype(object)
    frame.loc[rng.random(len(frame)) < 0.05, "channel"] = None
    return frame, labels
