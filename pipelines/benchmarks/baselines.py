"""The baselines the ADBench and MNIST benchmarks run beside the project's detectors: scikit-learn and PyOD
outlier detectors behind one interface, ``fit(X)`` and ``decision_function(X)`` (higher = more anomalous).
PyOD's are included when pyod is installed (``pip install '.[bench]'``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors

Detector = Callable[[int], Any]  # seed -> an unfitted detector with fit / decision_function


class SklearnOutlier:
    """scikit-learn outlier estimators score inliers high; flip to higher = more anomalous."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: np.ndarray) -> SklearnOutlier:
        self.estimator.fit(X)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return -self.estimator.score_samples(X)


class KNN:
    """Distance to the k-th nearest training row (k = 5): PyOD's KNN at its defaults (``method="largest"``)
    for rows it did not train on, without PyOD."""

    def __init__(self, n_neighbors: int = 5) -> None:
        self.n_neighbors = n_neighbors

    def fit(self, X: np.ndarray) -> KNN:
        self.neighbors = NearestNeighbors(n_neighbors=self.n_neighbors).fit(X)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.neighbors.kneighbors(X)[0][:, -1]


class PCAReconstruction:
    """Squared reconstruction error from the principal components that explain 90% of the variance."""

    def __init__(self, seed: int) -> None:
        self.pca = PCA(n_components=0.9, random_state=seed)

    def fit(self, X: np.ndarray) -> PCAReconstruction:
        self.pca.fit(X)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.square(X - self.pca.inverse_transform(self.pca.transform(X))).sum(axis=1)


class FlatPixels:
    """Pixels in [0, 1], flattened to one row per image, for detectors of tabular data."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector

    def fit(self, images: np.ndarray) -> FlatPixels:
        self.detector.fit(images.reshape(len(images), -1) / 255.0)
        return self

    def decision_function(self, images: np.ndarray) -> np.ndarray:
        return self.detector.decision_function(images.reshape(len(images), -1) / 255.0)


def tabular_baselines() -> dict[str, Detector]:
    """scikit-learn's IsolationForest, :class:`KNN`, and PyOD's VAE, AutoEncoder, IForest and ECOD when pyod
    is installed."""
    methods: dict[str, Detector] = {
        "IsolationForest": lambda seed: SklearnOutlier(IsolationForest(random_state=seed)),
        "KNN": lambda seed: KNN(),
    }
    try:
        from pyod.models.auto_encoder import AutoEncoder
        from pyod.models.ecod import ECOD
        from pyod.models.iforest import IForest
        from pyod.models.vae import VAE
    except ImportError:
        return methods
    methods["PyOD VAE"] = lambda seed: VAE(random_state=seed, verbose=0)
    methods["PyOD AutoEncoder"] = lambda seed: AutoEncoder(random_state=seed, verbose=0)
    methods["PyOD IForest"] = lambda seed: IForest(random_state=seed)
    methods["PyOD ECOD"] = lambda seed: ECOD()
    return methods


def pixel_baselines() -> dict[str, Detector]:
    """On raw pixels (:class:`FlatPixels`): IsolationForest and PCA reconstruction error (scikit-learn), and
    PyOD's PCA, IForest and VAE when pyod is installed."""
    methods: dict[str, Detector] = {
        "IsolationForest": lambda seed: FlatPixels(SklearnOutlier(IsolationForest(random_state=seed))),
        "PCA reconstruction": lambda seed: FlatPixels(PCAReconstruction(seed)),
    }
    try:
        from pyod.models.iforest import IForest
        from pyod.models.pca import PCA as PyodPCA
        from pyod.models.vae import VAE
    except ImportError:
        return methods
    methods["PyOD PCA"] = lambda seed: FlatPixels(PyodPCA(random_state=seed))
    methods["PyOD IForest"] = lambda seed: FlatPixels(IForest(random_state=seed))
    methods["PyOD VAE"] = lambda seed: FlatPixels(VAE(random_state=seed, verbose=0))
    return methods
