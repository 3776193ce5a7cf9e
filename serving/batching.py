"""Micro-batching: the records of requests that arrive together are scored in one pass.

Scoring a record costs mostly fixed per-call overhead (encoding, a few small matrix products), so one
pass over the records of eight concurrent requests costs little more than one request alone. A request
adds its records to the pending batch and waits; the batch is scored on the next turn of the event
loop, after every request that is already readable has joined it. No timer and no added latency: a
lone request is scored on the next turn, as before.

A request's records are scored exactly as if alone (scores never depend on the rest of the batch). If a
batch fails on bad input, its requests are rescored one by one, so each error names its own request's
rows and one bad request never fails another.

A batch of more than ``INLINE_RECORDS`` records is scored in the app's worker thread
(``serving/offload.py``), so that the event loop keeps answering meanwhile; requests that arrive then
form the next batch. The drift monitor is fed on the loop, in the order batches complete.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from serving.drift import DriftMonitor
from serving.metrics import Metrics
from serving.model_store import LoadedModel
from serving.offload import INLINE_RECORDS, Offload

Columns = dict[str, np.ndarray]
Outcome = list[dict[str, Any]] | Exception  # a request's results, or why its records were refused


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

    @property
    def size(self) -> int:
        return len(next(iter(self.columns.values())))


@dataclass
class _Scored:
    outcomes: list[tuple[_Job, Outcome]]
    drift: list[tuple[LoadedModel, Columns, np.ndarray]]  # what the drift monitor is to see


class ScoreBatcher:
    def __init__(self, metrics: Metrics, monitor: DriftMonitor | None = None, offload: Offload | None = None) -> None:
        self.metrics, self.monitor, self.offload = metrics, monitor, offload or Offload()
        self._pending: list[_Job] = []
        self._threaded: set[asyncio.Task[None]] = set()  # batches being scored in the thread

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
            if sum(job.size for job in group) <= INLINE_RECORDS:
                self._settle(self._score_group(group))
            else:
                task = asyncio.ensure_future(self._score_in_thread(group))
                self._threaded.add(task)
                task.add_done_callback(self._threaded.discard)

    async def _score_in_thread(self, jobs: list[_Job]) -> None:
        try:
            scored = await self.offload.run(True, self._score_group, jobs)
        except asyncio.CancelledError:  # the app is stopping
            for job in jobs:
                job.future.cancel()
            raise
        self._settle(scored)

    def _settle(self, scored: _Scored) -> None:
        """On the event loop: feed the drift monitor, answer each request that is still waiting."""
        for observed in scored.drift:
            if self.monitor is not None:
                self.monitor.observe(*observed)
        for job, outcome in scored.outcomes:
            if job.future.done():  # a cancelled request (client gone) has nobody to answer
                continue
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)

    def _score_group(self, jobs: list[_Job]) -> _Scored:
        """Score one group's records in one pass (on the loop or in the thread: touches no request state)."""
        first = jobs[0]
        names = first.columns.keys()
        columns = first.columns if len(jobs) == 1 else {n: np.concatenate([j.columns[n] for j in jobs]) for n in names}
        try:
            scores = first.model.detector.score_columns(columns, fpr=first.fpr, contributions=first.contributions)
        except Exception as error:
            if len(jobs) > 1 and isinstance(error, (ValueError, TypeError)):  # each request alone, for its own error
                alone = [self._score_group([job]) for job in jobs]
                return _Scored([o for one in alone for o in one.outcomes], [d for one in alone for d in one.drift])
            return _Scored([(job, error) for job in jobs], [])
        default = first.model.detector.default_score_
        self.metrics.observe_scores(scores, default)
        lists = {name: values.tolist() for name, values in scores.items()}
        results = [dict(zip(lists, values, strict=True)) for values in zip(*lists.values(), strict=True)]
        outcomes: list[tuple[_Job, Outcome]] = []
        start = 0
        for job in jobs:
            outcomes.append((job, results[start : start + job.size]))
            start += job.size
        return _Scored(outcomes, [(first.model, columns, scores[default])])
