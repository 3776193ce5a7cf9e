"""`anomaly-vae sample`: synthetic records from a model, optionally compared with real data; for an image
model, generated images as a grid PNG (and the array as ``.npz``): what the model thinks normal looks like.

For a conditional model the context of each record comes from ``--context`` (one value per context
column, shared by all records) or from the context columns of rows drawn at random from a data file
(``--context-from``, else the ``--compare`` data), so the samples follow the data's mix of contexts.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_vae import ImageVAEDetector, VAEDetector
from anomaly_vae.image.pictures import encode_png, grid, to_rgb, upscale
from anomaly_vae.persistence import atomic_path
from pipelines.data import AtomicTable, read_table
from pipelines.registry import load_detector

logger = logging.getLogger(__name__)
MAX_COMPARE_ROWS = 200_000


def sample_to_file(
    model: str,
    n: int,
    output: Path,
    *,
    seed: int | None = 0,
    context: dict[str, Any] | None = None,
    context_from: Path | None = None,
    compare: Path | None = None,
    report: Path | None = None,
) -> dict[str, Any]:
    """Write ``n`` samples to ``output`` (CSV or Parquet, atomically); with ``compare``, also the fidelity
    numbers (returned, and as JSON beside ``report``) and the plot ``report``. For an image model see
    :func:`sample_images`."""
    detector, identity = load_detector(model)
    if detector.kind == "image":
        options = {"--context": context, "--context-from": context_from, "--compare": compare, "--report": report}
        given = [flag for flag, value in options.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: for tabular models; this model is an image model")
        return sample_images(detector, identity, n, Path(output), seed=seed)
    assert isinstance(detector, VAEDetector)
    if report is not None and compare is None:
        raise ValueError("--report needs --compare DATA: the plot compares samples with data")
    context_names = [c.name for c in detector.schema_.columns if c.context]
    data = read_table(compare, max_rows=MAX_COMPARE_ROWS) if compare is not None else None
    if context_names and context is None:
        source = read_table(context_from, max_rows=MAX_COMPARE_ROWS) if context_from is not None else data
        if source is None:
            raise ValueError(
                f"the model is conditioned on {context_names}: give --context JSON, --context-from DATA or --compare"
            )
        absent = [c for c in context_names if c not in source.columns]
        if absent:
            raise ValueError(f"context column(s) {absent} not in the data to draw contexts from")
        rows = np.random.default_rng(seed).integers(len(source), size=n)
        context = source[context_names].iloc[rows].reset_index(drop=True)
    samples = detector.sample(n, random_state=seed, context=context)
    with AtomicTable(Path(output)) as table:
        table.write(samples)
    summary: dict[str, Any] = {"model": identity, "rows": n, "output": str(output)}
    if data is not None:
        from pipelines import fidelity  # imports matplotlib (about a second): only when comparing

        absent = [c for c in detector.feature_names_in_ if c not in data.columns]
        if absent:
            raise ValueError(f"the --compare data lacks the model's column(s): {absent}")
        result = fidelity.compare(samples, data[list(detector.feature_names_in_)])
        summary["fidelity"] = result.summary()
        if report is not None:
            summary["report"] = str(report)
            fidelity.plot(result, samples, data, Path(report))
            Path(report).with_suffix(".json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    logger.info("wrote %d samples to %s", n, output)
    return summary


def sample_images(
    detector: ImageVAEDetector, identity: dict[str, str], n: int, output: Path, *, seed: int | None = 0
) -> dict[str, Any]:
    """Write ``n`` images drawn from an image model as a grid PNG: at ``output`` when it ends in ``.png``;
    beside it (same name, ``.png``) when it ends in ``.npz``, which gets the images as ``X`` (float32
    (n, H, W, C) in [0, 1], readable by ``score`` and ``images grid``). Both written atomically."""
    suffix = output.suffix.lower()
    if suffix not in (".png", ".npz"):
        raise ValueError(f"{output}: an image model's samples go to a .png grid or a .npz array file")
    samples = np.asarray(detector.sample(n, random_state=seed), dtype=np.float32)
    picture = output.with_suffix(".png")
    if suffix == ".npz":
        with atomic_path(output) as staging, open(staging, "wb") as handle:
            np.savez(handle, X=samples)
    with atomic_path(picture) as staging:
        staging.write_bytes(encode_png(sample_grid(samples)))
    logger.info("wrote %d samples to %s", n, output)
    summary = {"model": identity, "kind": "image", "images": n, "output": str(output), "grid": str(picture)}
    return summary | {"image_shape": list(samples.shape[1:])}


def sample_grid(samples: np.ndarray) -> np.ndarray:
    """(n, H, W, C) images in [0, 1] as one uint8 RGB picture: about square, row by row, blank tiles at the end
    of the last row, each tile enlarged to at least ``MIN_TILE_PIXELS`` per side."""
    from pipelines.images import MIN_TILE_PIXELS

    n = len(samples)
    columns = math.ceil(math.sqrt(n))
    tiles = upscale(to_rgb(samples), MIN_TILE_PIXELS)
    blank = np.ones((columns * math.ceil(n / columns) - n, *tiles.shape[1:]), dtype=tiles.dtype)
    tiles = np.concatenate([tiles, blank])
    return grid([tiles[start : start + columns] for start in range(0, len(tiles), columns)])


def parse_context(text: str | None) -> dict[str, Any] | None:
    """``--context '{"merchant": "grocery"}'``: a JSON object of context column to value."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"--context is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValueError('--context must be a JSON object, e.g. {"merchant": "grocery"}')
    return value
