"""Micro-batching: requests that arrive together are scored in one pass, each answered as if alone."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from serving.batching import ScoreBatcher
from serving.metrics import Metrics
from serving.model_store import LoadedModel
from serving.offload import INLINE_RECORDS
from tests.conftest import assert_scores_close


def columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {name: frame[name].to_numpy(dtype=object) for name in frame.columns}


@pytest.mark.parametrize("size", [1, 100])  # 100: groups past INLINE_RECORDS, scored in the offload thread
def test_concurrent_requests_share_a_pass_and_get_their_own_answers(fitted, train_frame, size):
    model = LoadedModel(fitted, "m", "1")
    metrics = Metrics()
    batcher = ScoreBatcher(metrics)
    bounds = [(0, 3), (3, 4), (4, 9), (9, 11)]
    parts = [train_frame.iloc[size * start : size * end] for start, end in bounds]
    bad = train_frame.iloc[size * 11 : size * 11 + 2].astype(object)
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


def test_a_large_batch_is_scored_while_the_event_loop_keeps_turning(fitted, train_frame):
    """Past INLINE_RECORDS a batch is scored in a thread: a coroutine ticking every 10 ms meanwhile is
    never held up for long (on the loop, the whole batch would be one stall)."""
    frame = pd.concat([train_frame] * 10, ignore_index=True)
    assert len(frame) > INLINE_RECORDS
    batcher, model = ScoreBatcher(Metrics()), LoadedModel(fitted, "m", "1")

    async def score_and_tick() -> tuple[float, list[float], int]:
        loop = asyncio.get_running_loop()
        gaps: list[float] = []
        scoring = asyncio.ensure_future(batcher.score(model, columns(frame), None, False))
        start = last = loop.time()
        while not scoring.done():
            await asyncio.sleep(0.01)
            gaps.append(loop.time() - last)
            last = loop.time()
        return loop.time() - start, gaps, len(await scoring)

    took, gaps, n = asyncio.run(score_and_tick())
    assert n == len(frame)
    assert len(gaps) >= 3, f"{took:.2f} s: too fast to tell"
    assert max(gaps) < max(0.25, took / 4), (took, max(gaps))
