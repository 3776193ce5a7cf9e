"""Commands import the heavy optional libraries only when they use them: with a model folder, `score` and
`sample` load neither mlflow nor matplotlib (each takes about a second to import, most of a small job)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from anomaly_vae import VAEDetector
from tests.conftest import TINY, mixed_frame

HEAVY = ("mlflow", "matplotlib")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("startup")
    frame, _ = mixed_frame(300, seed=1)
    VAEDetector(**TINY, random_state=0).fit(frame).save(root / "model")
    frame.head(10).to_csv(root / "in.csv", index=False)
    return root


def heavy_modules_after(code: str, cwd) -> list[str]:
    """The HEAVY modules imported once ``code`` has run in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_the_jobs_loads_no_heavy_module(folder):
    assert (
        heavy_modules_after("import pipelines.batch, pipelines.cli, pipelines.registry, pipelines.sample", folder) == []
    )


@pytest.mark.parametrize(
    "command",
    [
        ["score", "--model", "model", "--input", "in.csv", "--output", "scores.csv"],
        ["sample", "--model", "model", "-n", "5", "--output", "samples.csv"],
    ],
)
def test_a_command_with_a_model_folder_loads_no_heavy_module(folder, command):
    code = f"from pipelines.cli import main\nassert main({command!r}) == 0"
    assert heavy_modules_after(code, folder) == []
