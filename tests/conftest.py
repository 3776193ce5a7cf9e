"""Shared fixtures: seeded synthetic mixed-type data and one tiny trained detector per session."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from anomaly_vae import VAEDetector
from pipelines.synthetic import mixed_frame

__all__ = ["TINY", "assert_scores_close", "mixed_frame", "system_tool"]

TINY = {"hidden": (32, 16), "max_steps": 400, "kl_warmup_steps": 50}  # for tests that need any fitted model


def system_tool(name: str, package: str) -> str:
    """The path of a command-line tool from a system package. Missing: the test skips, naming the package
    to install; with ``ANOMALY_VAE_REQUIRE_SYSTEM_TOOLS=1`` (set by .ci/run) it fails instead."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found: install Debian's {package} package (apt-get install -y {package})"
    if os.environ.get("ANOMALY_VAE_REQUIRE_SYSTEM_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny convolutions run several times faster on one thread than on two busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def train_frame() -> pd.DataFrame:
    return mixed_frame(3000, seed=0)[0]


@pytest.fixture(scope="session")
def fitted(train_frame: pd.DataFrame) -> VAEDetector:
    return VAEDetector(random_state=0).fit(train_frame)  # the defaults


# small and fast, with a higher rate to learn in the default 800 steps
CONDITIONAL = {"learning_rate": 3e-3, "n_members": 1, "hidden": (32, 16), "random_state": 0}
# typical for a jewelry purchase (the rare context), far off for a grocery one
JEWELRY_LIKE = {"amount": 80.0, "items": 1, "hour": 15.0, "online": False}


def merchant_frame(n: int, seed: int, jewelry_share: float = 0.03) -> pd.DataFrame:
    """Purchases whose amount, item count, hour and channel depend on the merchant type."""
    rng = np.random.default_rng(seed)
    jewelry = rng.random(n) < jewelry_share
    return pd.DataFrame(
        {
            "merchant": np.where(jewelry, "jewelry", "grocery").astype(object),
            "amount": rng.normal(np.where(jewelry, 80.0, 50.0), 4.0),
            "items": rng.normal(np.where(jewelry, 1.0, 6.0), np.where(jewelry, 0.5, 2.0)).round().clip(0).astype(int),
            "hour": rng.normal(np.where(jewelry, 15.0, 18.0), 2.0),
            "online": rng.random(n) < np.where(jewelry, 0.2, 0.5),
        }
    )


@pytest.fixture(scope="session")
def purchases() -> pd.DataFrame:
    return merchant_frame(4000, seed=0)


@pytest.fixture(scope="session")
def conditional(purchases: pd.DataFrame) -> VAEDetector:
    """A conditional VAE of the purchases given their merchant type."""
    return VAEDetector(**CONDITIONAL, condition_on=["merchant"]).fit(purchases)


def assert_scores_close(got: pd.DataFrame, expected: pd.DataFrame, detector: VAEDetector) -> None:
    """Scores of the same records computed in batches of other sizes: float32 rounding may differ in the
    last bits, which can move a p-value (a step function of the score) by one calibration step and flip
    ``is_outlier`` only right at the threshold."""
    for name in ("neg_elbo", "reconstruction_nll", "kl", "neg_log_likelihood"):
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-5)
    step = 1.0 / (detector.calibration_.size + 1)
    for name in ("p_value", "p_value_neg_elbo", "p_value_reconstruction_nll"):
        assert np.abs(got[name].to_numpy() - expected[name].to_numpy()).max() <= step + 1e-12
    far = np.abs(expected[detector.default_score].to_numpy() - detector.threshold_) > 1e-3
    assert (got["is_outlier"].to_numpy()[far] == expected["is_outlier"].to_numpy()[far]).all()


@contextmanager
def mlflow_server_process(root: Path, port: int | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real `mlflow server` on 127.0.0.1 (on ``port``, else a free one) with its own SQLite store and
    artifact folder under ``root``: its URL and process, the leader of its own process group (the server
    runs its workers as children: ``os.killpg(process.pid, ...)`` stops them all). Stopped on exit unless
    the caller already did."""
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    command = [
        *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)),
        *("--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "artifacts")),
        *("--workers", "1"),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("mlflow server did not start")
            time.sleep(0.5)
        yield url, process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):  # its job-runner children outlive SIGTERM
            os.killpg(process.pid, signal.SIGKILL)
