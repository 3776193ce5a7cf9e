"""The model folder format: JSON for configuration, schema and calibration, safetensors for weights.

Nothing is pickled, so loading a folder cannot run code. A folder is written under a temporary name and
renamed into place, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

FORMAT_VERSION = 1
META_FILE, WEIGHTS_FILE = "model.json", "weights.safetensors"


def save_folder(path: Path, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Write ``meta`` (JSON-able) and ``tensors`` to the folder ``path`` atomically."""
    path = Path(path)
    if path.exists() and not ((path.is_dir() and (path / META_FILE).exists()) or not any(path.iterdir())):
        raise FileExistsError(f"{path} exists and is not a model folder; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(staging / WEIGHTS_FILE))
        text = json.dumps({"format_version": FORMAT_VERSION, **meta}, indent=1, allow_nan=True)
        (staging / META_FILE).write_text(text)
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def load_folder(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a folder written by :func:`save_folder`."""
    path = Path(path)
    if not (path / META_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise ValueError(f"{path} is not a model folder: expected {META_FILE} and {WEIGHTS_FILE}")
    meta = json.loads((path / META_FILE).read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported model format version {meta.get('format_version')!r}")
    return meta, load_file(str(path / WEIGHTS_FILE))
