"""Micro-batching: the records of requests that arrive together are scored in one pass.

Scoring a record costs mostly fixed per-call overhead (encoding, a few small matrix products), so one
pass over the records of eight concurrent requests costs little more than one request alone. A request
adds its records to the pending batch and waits; the batch is scored on the next turn of the event
loop, after every request that is already readable has joined it. No timer and no added latency: a
lone request is scored on the next turn, as before.

A request's records are scored exactly as if alone (scores never depend on the rest of the batch). If a
batch fails on bad input, its requests are rescored one by one, so each error names its own request's
rows and one bad request never fails another.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from serving.drift import DriftMonitor
from serving.metrics import Metrics
from serving.model_store import LoadedModel

Columns = dict[str, np.ndarray]


@dataclass
class _Job:
    model: LoadedModel
    columns: Columns
    fpr: float | None
    contributions: bool
    future: asyncio.Future[list[dict[str, Any]]] = field(repr=False)

    @property
    def key(self) -> tuple[int, float | None, bool]:
        return id(self.model), self.fpr, self.contributions


class ScoreBatcher:
    def __init__(self, metrics: Metrics, monitor: DriftMonitor | None = None) -> None:
        self.metrics, self.monitor = metrics, monitor
        self._pending: list[_Job] = []

    async def score(
        self, model: LoadedModel, columns: Columns, fpr: float | None, contributions: bool
    ) -> list[dict[str, Any]]:
        """One result dict per record; raises ``ValueError``/``TypeError`` for records the model rejects."""
        loop = asyncio.get_running_loop()
        job = _Job(model, columns, fpr, contributions, loop.create_future())
        self._pending.append(job)
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await job.future

    def _flush(self) -> None:
        jobs, self._pending = self._pending, []
        groups: dict[tuple[int, float | None, bool], list[_Job]] = {}
        for job in jobs:
            groups.setdefault(job.key, []).append(job)
        for group in groups.values():
            self._score_group(group)

    def _score_group(self, jobs: list[_Job]) -> None:
        first = jobs[0]
        names = first.columns.keys()
        columns = first.columns if len(jobs) == 1 else {n: np.concatenate([j.columns[n] for j in jobs]) for n in names}
        try:
            scores = first.model.detector.score_columns(columns, fpr=first.fpr, contributions=first.contributions)
        except Exception as error:
            for job in jobs:
                if len(jobs) > 1 and isinstance(error, (ValueError, TypeError)):
                    self._score_group([job])
                elif not job.future.done():
                    job.future.set_exception(error)
            return
        self._observe(scores, first.model.detector.default_score)
        if self.monitor is not None:
            self.monitor.observe(first.model, columns, scores[first.model.detector.default_score])
        lists = {name: values.tolist() for name, values in scores.items()}
        results = [dict(zip(lists, values, strict=True)) for values in zip(*lists.values(), strict=True)]
        start = 0
        for job in jobs:
            n = len(next(iter(job.columns.values())))
            if not job.future.done():  # a cancelled request (client gone) has nobody to answer
                job.future.set_result(results[start : start + n])
            start += n

    def _observe(self, scores: dict[str, np.ndarray], default_score: str) -> None:
        self.metrics.records.inc(len(scores["p_value"]))
        self.metrics.outliers.inc(int(scores["is_outlier"].sum()))
        for value, p_value in zip(scores[default_score], scores["p_value"], strict=True):
            self.metrics.score.observe(value)
            self.metrics.p_value.observe(p_value)
