"""Micro-batching: requests that arrive together are scored in one pass, each answered as if alone."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from serving.batching import ScoreBatcher
from serving.metrics import Metrics
from serving.model_store import LoadedModel
from tests.conftest import assert_scores_close


def columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {name: frame[name].to_numpy(dtype=object) for name in frame.columns}


def test_concurrent_requests_share_a_pass_and_get_their_own_answers(fitted, train_frame):
    model = LoadedModel(fitted, "m", "1")
    metrics = Metrics()
    batcher = ScoreBatcher(metrics)
    parts = [train_frame.iloc[0:3], train_frame.iloc[3:4], train_frame.iloc[4:9], train_frame.iloc[9:11]]
    bad = train_frame.iloc[11:13].astype(object)
    bad.iloc[1, bad.columns.get_loc("amount")] = "lots"
    requests = [
        (parts[0], None, False),
        (parts[1], 0.2, False),  # another fpr: scored in its own group of the same batch
        (bad, None, False),
        (parts[2], None, True),
        (parts[3], None, False),
    ]

    async def send_all() -> list[object]:
        calls = [batcher.score(model, columns(frame), fpr, contrib) for frame, fpr, contrib in requests]
        return await asyncio.gather(*calls, return_exceptions=True)

    answers = asyncio.run(send_all())
    with pytest.raises(ValueError, match="row 1: column 'amount'") as alone:
        fitted.score_columns(columns(bad))
    assert isinstance(answers[2], ValueError) and str(answers[2]) == str(alone.value)  # its own rows, not the batch's
    for (frame, fpr, contrib), answer in zip(requests, answers, strict=True):
        if frame is bad:
            continue
        expected = fitted.score_frame(frame, fpr=fpr, contributions=contrib)
        got = pd.DataFrame(answer, index=frame.index)
        assert list(got.columns) == list(expected.columns)
        assert_scores_close(got, expected, fitted)
    scored = sum(len(frame) for frame, _, _ in requests if frame is not bad)
    assert metrics.registry.get_sample_value("anomaly_vae_records_scored_total") == scored
