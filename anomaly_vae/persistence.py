"""The model folder format: JSON for configuration, schema and calibration, safetensors for weights; and
:func:`atomic_path`, the one way outputs (model folders, tables, manifests, reports) reach their place.

Nothing is pickled, so loading a folder cannot run code. A folder is written under a temporary name and
renamed into place, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

FORMAT_VERSION = 1
META_FILE, WEIGHTS_FILE = "model.json", "weights.safetensors"


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Stage a file or a folder beside ``target`` and move it into place when the ``with`` block succeeds.

    Yields a path that does not exist yet: hidden, unique (``.NAME.<12 hex>.partial``) and in ``target``'s
    folder (created if missing), so that the final rename is atomic. The block creates a file or a folder
    there like any other (permissions from the umask). On success it is renamed onto ``target``, replacing
    a file there, or a folder (removed first: check before that it may go). On an error (an interrupt
    too) the staged file or folder is removed and the error propagates, leaving ``target`` as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        yield staging
        if staging.is_dir() and target.is_dir():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.unlink(missing_ok=True)
        raise


def save_folder(path: Path, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Write ``meta`` (JSON-able) and ``tensors`` to the folder ``path`` atomically."""
    path = Path(path)
    if path.exists() and not ((path.is_dir() and (path / META_FILE).exists()) or not any(path.iterdir())):
        raise FileExistsError(f"{path} exists and is not a model folder; refusing to overwrite it")
    with atomic_path(path) as staging:
        staging.mkdir(mode=0o700)  # the folder is its owner's alone; the files in it follow the umask
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(staging / WEIGHTS_FILE))
        text = json.dumps({"format_version": FORMAT_VERSION, **meta}, indent=1, allow_nan=True)
        (staging / META_FILE).write_text(text)


def load_folder(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a folder written by :func:`save_folder`."""
    path = Path(path)
    if not (path / META_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise ValueError(f"{path} is not a model folder: expected {META_FILE} and {WEIGHTS_FILE}")
    meta = json.loads((path / META_FILE).read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported model format version {meta.get('format_version')!r}")
    return meta, load_file(str(path / WEIGHTS_FILE))
