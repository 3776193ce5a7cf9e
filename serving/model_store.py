"""Loading the model named by configuration, and swapping in new registry versions.

``models:/NAME@ALIAS`` is followed: when the alias moves, the new version is loaded in the background,
checked on a probe record and swapped in atomically. A version that fails that check (its files do not
load, or it cannot score a probe record) leaves the old one serving, is counted and is not tried again
until the alias moves on. Fetching a version is another matter: a download that fails (a network blip,
the registry or artifact store down) is retried at once with backoff (``DOWNLOAD_BACKOFF_SECONDS``),
and if every try fails it is counted as a registry error and tried again at the next check, never held
against the version. An unreachable registry changes nothing. URIs are resolved by ``anomaly_vae.registry``
(mlflow is imported only for models:/ and runs:/ URIs: it takes seconds to import, and a model folder
does not need it). ``keep_current`` runs for the app's lifetime: it loads the first model, retrying until
that works, then checks the alias every reload interval.

In a worker process (serving/server.py), the objects the process holds once its first model is loaded
(the imported modules and the model, a few hundred thousand objects that live as long as the process)
are frozen out of the garbage collector's full passes, before the model is served: such a pass would
otherwise walk all of them, a pause of 200-300 ms every few seconds under load, enough to set the p99
latency (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import anomaly_vae
from anomaly_vae import ImageVAEDetector, VAEDetector
from anomaly_vae.registry import NotAModelError, ResolvedModel, alias_version, resolve
from serving.metrics import Metrics, retire

logger = logging.getLogger(__name__)
RETRY_SECONDS = 5.0  # between attempts at the first load
DOWNLOAD_BACKOFF_SECONDS = (0.5, 1.0, 2.0)  # waits between tries of one download: 4 tries in 3.5 s


@dataclass(frozen=True)
class LoadedModel:
    detector: VAEDetector | ImageVAEDetector
    name: str
    version: str

    def fpr_used(self, fpr: float | None) -> tuple[float, bool]:
        """The fpr records are flagged at (``fpr``, or the model's own when None) and whether the model's
        calibration resolves it: below ``calibration_.smallest_fpr`` no threshold exists and no record can
        be flagged, whatever its score."""
        fpr = self.detector.fpr if fpr is None else fpr
        return fpr, math.isfinite(self.detector.calibration_.threshold(self.detector.default_score_, fpr))


class DownloadError(Exception):
    """The model could not be fetched (registry, artifact store or network): not the version's fault."""


def load(uri: str, device: str = "cpu") -> LoadedModel:
    """Load and check the model at ``uri`` (a model folder or an MLflow models:/ or runs:/ URI).

    A model from MLflow is downloaded into a temporary folder that is removed once the model is in
    memory: a service that reloads for months leaves no copy per version behind.
    """
    with tempfile.TemporaryDirectory(prefix="anomaly-vae-model-") as folder:
        return checked(download(uri, Path(folder)), device)


def download(uri: str, into: Path) -> ResolvedModel:
    """The model ``uri`` names, in a local folder (``into`` for a model in MLflow); a failure is retried
    with backoff, then a ``DownloadError``.

    An artifact that is not an anomaly-vae model is the version's fault: ``NotAModelError``, at once.
    """
    for wait in (*DOWNLOAD_BACKOFF_SECONDS, None):
        try:
            return resolve(uri, into)
        except NotAModelError:
            raise
        except Exception as error:
            if wait is None:
                raise DownloadError(f"{uri} could not be downloaded: {error}") from error
            logger.warning("downloading %s failed, retrying in %.1f s: %s", uri, wait, error)
            time.sleep(wait)
    raise AssertionError("unreachable")


def checked(resolved: ResolvedModel, device: str = "cpu") -> LoadedModel:
    """The downloaded model, loaded and able to score a probe record; raises otherwise."""
    detector = anomaly_vae.load(resolved.folder, device=device)
    assert isinstance(detector, (VAEDetector, ImageVAEDetector))
    model = LoadedModel(detector, resolved.name, resolved.version)
    _probe(model.detector)
    return model


def _probe(detector: VAEDetector | ImageVAEDetector) -> None:
    """Score one typical record (a mid-gray image); a model that cannot is not served."""
    if isinstance(detector, ImageVAEDetector):
        shape = detector.image_shape_
        scores = detector.score_frame(np.full((1, shape.height, shape.width, shape.channels), 0.5, np.float32))
    else:
        scores = detector.score_frame(pd.DataFrame([detector.schema_.typical_record()]))
    if not np.isfinite(scores[["neg_elbo", "neg_log_likelihood"]].to_numpy()).all():
        raise ValueError("the model gives non-finite scores on a typical record")


class ModelStore:
    """Holds the served model; ``current`` is replaced in one assignment, so readers never see a mix."""

    def __init__(
        self, uri: str, metrics: Metrics, device: str = "cpu", on_swap: Callable[[LoadedModel], None] | None = None
    ) -> None:
        self.uri, self.metrics, self.device, self.on_swap = uri, metrics, device, on_swap
        self.current: LoadedModel | None = None
        self.refused: str | None = None  # a version that failed is not tried again until the alias moves on
        self.freeze_on_first_load = False  # see the module's docstring

    def load_initial(self) -> None:
        model = load(self.uri, self.device)
        if self.freeze_on_first_load and self.current is None:
            gc.collect()  # the start-up's garbage first, so that none of it is frozen
            gc.freeze()
        self._swap(model)

    def reload_if_moved(self) -> bool:
        """Load the alias's new version if it moved; True when a new model was swapped in."""
        if self.current is None:
            self.load_initial()
            return True
        try:
            version = alias_version(self.uri)
        except Exception as error:  # registry unreachable: keep serving what we have
            self.metrics.registry_errors.inc()
            logger.warning("registry check failed, keeping version %s: %s", self.current.version, error)
            return False
        if version is None or version in (self.current.version, self.refused):
            return False
        self.metrics.reloads.inc()
        try:
            model = load(self.uri, self.device)
        except DownloadError as error:  # the registry's fault, not the version's: tried again next time
            self.metrics.registry_errors.inc()
            logger.warning("version %s: %s; keeping version %s", version, error, self.current.version)
            return False
        except Exception as error:  # the version's own fault (not a model, does not load or score)
            self.metrics.reload_failures.inc()
            self.refused = version
            logger.error("version %s failed to load, keeping version %s: %s", version, self.current.version, error)
            return False
        self._swap(model)
        return True

    def _swap(self, model: LoadedModel) -> None:
        if self.current is not None:
            retire(self.metrics.model_info, (self.current.name, self.current.version), 0)
        self.current = model
        self.metrics.model_info.labels(model.name, model.version).set(1)
        if self.on_swap is not None:
            self.on_swap(model)
        logger.info("serving %s version %s", model.name, model.version)


async def keep_current(store: ModelStore, reload_interval_seconds: float) -> None:
    """Load the first model (retried until it works), then follow the alias; 0 seconds: never reload.
    Loading runs in a thread, so that requests (answered 503 meanwhile) and probes keep being answered."""
    while store.current is None:
        try:
            await asyncio.to_thread(store.load_initial)
        except Exception as error:
            logger.error("model %s failed to load, retrying: %s", store.uri, error)
            await asyncio.sleep(RETRY_SECONDS)
    while reload_interval_seconds > 0:
        await asyncio.sleep(reload_interval_seconds)
        await asyncio.to_thread(store.reload_if_moved)
