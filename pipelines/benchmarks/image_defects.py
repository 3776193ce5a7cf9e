"""Do the anomaly maps point at the defect? (issue #21): :meth:`ImageVAEDetector.anomaly_maps
<anomaly_vae.ImageVAEDetector.anomaly_maps>` on MNIST digits with planted local defects, against the
per-pixel squared residual of PCA reconstruction.

Protocol, for each digit k and seed s:

- Data: the MNIST-5k file of ../shared/data/mnist (arrays X: uint8 (N, 28, 28), y: digits), split as the
  one-class MNIST benchmark does (:mod:`pipelines.benchmarks.mnist`:
  ``train_test_split(X, y, test_size=0.3, stratify=y, random_state=s)``).
- Methods: ``ImageVAEDetector(random_state=s, device="cpu")`` at its defaults (``params`` over them), fed
  uint8 (N, 28, 28) images; its map is :meth:`anomaly_maps`, its image score ``decision_function``. And
  ``PCA reconstruction`` (:class:`~pipelines.benchmarks.baselines.PCAReconstruction`, the components that
  explain 90% of the variance) on flattened pixels in [0, 1]; its map is the squared residual per pixel,
  its image score the map's sum. Both are fitted on the training images of digit k only.
- Defects: every TEST image of digit k (held-out normal images, about 150) gets one defect of each type,
  drawn by a numpy Generator seeded with (s, k, index of the type), one draw after another:

  1. ``bright patch``: a square of side 4-6 px set to 255, centred on a background pixel (<= 128) inside
     the digit's bounding box dilated by 3 px (near the digit, not in an empty corner);
  2. ``dark patch``: a square of side 4-6 px set to 0, centred on a stroke pixel (> 128);
  3. ``scratch``: a straight line 1-2 px thick and 8-14 px long at a uniform random angle, intensity 255,
     centred on a pixel inside the digit's bounding box (so it crosses or touches the digit);
  4. ``missing stroke``: a disc of radius 3-4 px centred on a stroke pixel, set to 0.

  Squares, lines and discs are clipped at the image border. The defect's mask is the set of pixels whose
  value changed by more than 0.1 (in [0, 1] units); a placement that changes fewer than 4 pixels is
  drawn again (up to 10 times; an image where none succeeds is left out of that type, the CSV counts
  the images kept).
- Metrics per (digit, seed, defect type, method):

  - pixel AUROC: the map values of all pixels of all defective images against their masks (one AUROC
    over the flattened arrays);
  - hit rate: the share of defective images whose map's largest pixel (the first, on ties) lies inside
    the mask dilated by 1 px (its 8 neighbours added);
  - image AUROC: the image score of the defective images against the same clean test images of digit k
    (how detectable the defect is at all).

Writes ``<stem>.csv`` (one row per digit, seed, defect type and method, with fit seconds),
``<stem>.md`` (means over digits and seeds per defect type and method, and over all defect types) and
``<stem>_maps.png`` (first digit and seed: two images of each defect type; rows: the defective image,
its mask in red, the VAE's map, the PCA map, each map overlaid with its own colour scale, white = its maximum).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import binary_dilation
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from anomaly_vae import ImageVAEDetector
from anomaly_vae.image.pictures import grid, overlay, to_rgb, upscale, write_png
from pipelines.benchmarks.baselines import PCAReconstruction
from pipelines.benchmarks.mnist import load_labelled, run_digit_tasks
from pipelines.images import MIN_TILE_PIXELS

logger = logging.getLogger(__name__)
DEFECTS = ("bright patch", "dark patch", "scratch", "missing stroke")
METHODS = ("ImageVAEDetector", "PCA reconstruction")
STROKE = 128  # pixels above it (0-255) are the digit's strokes
MIN_CHANGED, TRIES = 4, 10  # a placement must change this many pixels; draws per image before giving up
CHANGED = 0.1  # a pixel belongs to the mask when its value moved by more than this (in [0, 1])
PICTURED = 2  # images of each defect type in the picture


@dataclass(frozen=True)
class DefectResult:
    digit: int
    seed: int
    defect: str
    method: str
    pixel_auroc: float
    hit_rate: float
    image_auroc: float
    fit_seconds: float
    images: int  # defective images measured


def _pick(rng: np.random.Generator, allowed: np.ndarray) -> tuple[int, int]:
    """A random (row, column) where ``allowed`` is True (anywhere when it is nowhere True)."""
    candidates = np.flatnonzero(allowed) if allowed.any() else np.arange(allowed.size)
    row, col = np.unravel_index(rng.choice(candidates), allowed.shape)
    return int(row), int(col)


def _box(image: np.ndarray, margin: int) -> np.ndarray:
    """True inside the bounding box of the stroke pixels, widened by ``margin`` px (the whole image when
    there is no stroke pixel)."""
    inside = np.zeros(image.shape, dtype=bool)
    rows, cols = np.nonzero(image > STROKE)
    if len(rows) == 0:
        return ~inside
    inside[
        max(rows.min() - margin, 0) : rows.max() + margin + 1, max(cols.min() - margin, 0) : cols.max() + margin + 1
    ] = True
    return inside


def _square(image: np.ndarray, centre: tuple[int, int], side: int, value: int) -> np.ndarray:
    out = image.copy()
    top, left = max(centre[0] - side // 2, 0), max(centre[1] - side // 2, 0)
    out[top : centre[0] - side // 2 + side, left : centre[1] - side // 2 + side] = value
    return out


def _scratch(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    row, col = _pick(rng, _box(image, 0))
    length, thickness, angle = rng.integers(8, 15), rng.integers(1, 3), rng.uniform(0.0, np.pi)
    steps = np.linspace(-length / 2, length / 2, 4 * int(length) + 1)
    out = image.copy()
    for offset in range(thickness):  # the second pixel of thickness: the line moved 1 px across itself
        rows = np.rint(row + steps * np.sin(angle) + offset * np.cos(angle)).astype(int)
        cols = np.rint(col + steps * np.cos(angle) - offset * np.sin(angle)).astype(int)
        keep = (rows >= 0) & (rows < image.shape[0]) & (cols >= 0) & (cols < image.shape[1])
        out[rows[keep], cols[keep]] = 255
    return out


def _disc(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    row, col = _pick(rng, image > STROKE)
    radius = rng.integers(3, 5)
    rows, cols = np.ogrid[: image.shape[0], : image.shape[1]]
    out = image.copy()
    out[(rows - row) ** 2 + (cols - col) ** 2 <= radius**2] = 0
    return out


def draw_defect(image: np.ndarray, defect: str, rng: np.random.Generator) -> np.ndarray:
    """``image`` (uint8 (H, W)) with one defect of type ``defect`` (one of ``DEFECTS``) drawn by ``rng``."""
    if defect == "bright patch":
        return _square(image, _pick(rng, _box(image, 3) & (image <= STROKE)), int(rng.integers(4, 7)), 255)
    if defect == "dark patch":
        return _square(image, _pick(rng, image > STROKE), int(rng.integers(4, 7)), 0)
    if defect == "scratch":
        return _scratch(image, rng)
    if defect == "missing stroke":
        return _disc(image, rng)
    raise ValueError(f"defect must be one of {', '.join(DEFECTS)}, got: {defect!r}")


def plant(images: np.ndarray, defect: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One defect of type ``defect`` in each uint8 image (N, H, W): the defective images, their masks (N, H, W)
    of the pixels that changed by more than ``CHANGED``, and the positions of the images kept (a placement
    changing fewer than ``MIN_CHANGED`` pixels is drawn again, ``TRIES`` times at most)."""
    defective, masks, kept = [], [], []
    for index, image in enumerate(images):
        for _ in range(TRIES):
            new = draw_defect(image, defect, rng)
            mask = np.abs(new.astype(np.float32) - image.astype(np.float32)) / 255.0 > CHANGED
            if mask.sum() >= MIN_CHANGED:
                defective.append(new)
                masks.append(mask)
                kept.append(index)
                break
    shape = (0, *images.shape[1:])
    if not kept:
        return np.empty(shape, dtype=np.uint8), np.empty(shape, dtype=bool), np.empty(0, dtype=int)
    return np.stack(defective), np.stack(masks), np.asarray(kept)


def defect_rng(seed: int, digit: int, defect: str) -> np.random.Generator:
    """The Generator that plants ``defect`` into digit ``digit``'s test images at ``seed``."""
    return np.random.default_rng([seed, digit, DEFECTS.index(defect)])


def hit_rate(maps: np.ndarray, masks: np.ndarray) -> float:
    """Share of images whose map's largest pixel (the first on ties) lies in the mask dilated by 1 px."""
    dilated = binary_dilation(masks, structure=np.ones((1, 3, 3), dtype=bool))
    peaks = maps.reshape(len(maps), -1).argmax(axis=1)
    return float(dilated.reshape(len(masks), -1)[np.arange(len(masks)), peaks].mean())


def pixel_auroc(maps: np.ndarray, masks: np.ndarray) -> float:
    """AUROC of all the maps' pixel values with the masks as labels (NaN when every pixel or none is in them)."""
    if masks.all() or not masks.any():
        return float("nan")
    return float(roc_auc_score(masks.ravel(), maps.ravel()))


def image_auroc(clean_scores: np.ndarray, defective_scores: np.ndarray) -> float:
    """AUROC of the defective images' scores against the clean ones'."""
    labels = np.r_[np.zeros(len(clean_scores)), np.ones(len(defective_scores))]
    return float(roc_auc_score(labels, np.r_[clean_scores, defective_scores]))


class PCAMaps:
    """:class:`PCAReconstruction` on flattened pixels in [0, 1], with its squared residual per pixel as map."""

    def __init__(self, seed: int) -> None:
        self.reconstruction = PCAReconstruction(seed)

    def fit(self, images: np.ndarray) -> PCAMaps:
        self.reconstruction.fit(images.reshape(len(images), -1) / 255.0)
        return self

    def anomaly_maps(self, images: np.ndarray) -> np.ndarray:
        flat = images.reshape(len(images), -1) / 255.0
        pca = self.reconstruction.pca
        return np.square(flat - pca.inverse_transform(pca.transform(flat))).reshape(images.shape)

    def decision_function(self, images: np.ndarray) -> np.ndarray:
        return self.anomaly_maps(images).sum(axis=(1, 2))


def maps_picture(images: np.ndarray, masks: np.ndarray, maps: dict[str, np.ndarray], path: Path) -> None:
    """Write a PNG: a column per image; rows: the image, its mask (red over the image), then each method's map,
    every map overlaid on its image with its own colour scale (white = that map's maximum)."""
    inputs = images[..., None] / 255.0

    def overlays(values: np.ndarray) -> np.ndarray:
        return np.concatenate([overlay(inputs[i : i + 1], values[i : i + 1]) for i in range(len(inputs))])

    red = 3.0  # a mask pixel (1) at a third of the heat scale: red
    rows = [to_rgb(inputs), overlay(inputs, masks.astype(np.float64), vmax=red), *(overlays(m) for m in maps.values())]
    write_png(grid([upscale(row, MIN_TILE_PIXELS) for row in rows]), path)


def _measure(
    detector: Any, clean_scores: np.ndarray, images: np.ndarray, masks: np.ndarray
) -> tuple[np.ndarray, list[float]]:
    """A method's maps of the defective images, and their pixel AUROC, hit rate and image AUROC (NaN when
    no image was kept)."""
    if len(images) == 0:
        return np.empty(images.shape), [float("nan")] * 3
    maps = detector.anomaly_maps(images)
    scores = detector.decision_function(images)
    return maps, [pixel_auroc(maps, masks), hit_rate(maps, masks), image_auroc(clean_scores, scores)]


def run_digit(task: tuple[Path | str, int, int, dict[str, Any], Path | None, int]) -> list[DefectResult]:
    """Both methods on one (digit, seed): fit on that digit's training images, plant every defect type into
    its test images, measure the maps (and, with a path, draw the picture there)."""
    import torch

    data, digit, seed, params, maps_path, threads = task
    torch.set_num_threads(threads)  # tasks run in parallel, ``threads`` each
    X, y = load_labelled(data)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    normal, clean = X_train[y_train == digit], X_test[y_test == digit]
    planted = {defect: plant(clean, defect, defect_rng(seed, digit, defect)) for defect in DEFECTS}
    detectors = {
        "ImageVAEDetector": ImageVAEDetector(**{"random_state": seed, "device": "cpu", **params}),
        "PCA reconstruction": PCAMaps(seed),
    }
    results, pictured = [], {}
    for method, detector in detectors.items():
        start = time.perf_counter()
        detector.fit(normal)
        fit_seconds = time.perf_counter() - start
        clean_scores = detector.decision_function(clean)
        drawn = []
        for defect, (images, masks, _) in planted.items():
            maps, metrics = _measure(detector, clean_scores, images, masks)
            results.append(DefectResult(digit, seed, defect, method, *metrics, fit_seconds, len(images)))
            drawn.append(maps[:PICTURED])
        pictured[method] = np.concatenate(drawn)
    if maps_path is not None:
        images = np.concatenate([images[:PICTURED] for images, _, _ in planted.values()])
        masks = np.concatenate([masks[:PICTURED] for _, masks, _ in planted.values()])
        maps_picture(images, masks, pictured, maps_path)
    logger.info(
        "digit %d seed %d: %s", digit, seed, ", ".join(f"{r.method} {r.defect} {r.hit_rate:.2f}" for r in results)
    )
    return results


def run_image_defects(
    data: Path | str,
    output: Path,
    *,
    digits: list[int] | None = None,
    seeds: list[int] | None = None,
    jobs: int = 2,
    threads: int = 1,
    params: dict[str, Any] | None = None,
    stem: str = "image_defects",
) -> str:
    """The protocol of this module on every digit and seed; writes ``<stem>.csv``, ``<stem>.md`` and
    ``<stem>_maps.png`` (first digit and seed) to ``output`` and returns the markdown. ``data``: the
    mnist_5k.npz of ../shared/data/mnist (any .npz with X uint8 (N, H, W) and y); ``params``:
    ImageVAEDetector arguments over its defaults."""
    if not Path(data).is_file():
        raise FileNotFoundError(f"{data} not found (expected the mnist_5k.npz of ../shared/data/mnist)")
    digits = list(range(10)) if digits is None else digits
    seeds = [0, 1, 2] if seeds is None else seeds
    output.mkdir(parents=True, exist_ok=True)
    results = run_digit_tasks(
        run_digit,
        lambda d, s, maps: (data, d, s, params or {}, maps, threads),
        digits,
        seeds,
        jobs,
        output / f"{stem}_maps.png",
    )
    settings = f" with {params}" if params else " at its defaults"
    header = (
        f"Planted defects in held-out MNIST images ({Path(data).name}), digits {digits}, seeds {seeds}: "
        f"ImageVAEDetector{settings} and PCA reconstruction fitted on one digit's training images; each of that "
        "digit's test images gets one defect of each type (pipelines/benchmarks/image_defects.py). Pixel AUROC: "
        "map values against the defect masks over all pixels; hit rate: share of images whose map's maximum lies "
        "in the mask dilated by 1 px; image AUROC: image score, defective against the same clean test images. "
        f"Means over digits and seeds; {jobs} run(s) at a time, {threads} torch thread(s) each."
    )
    return write_defect_tables(results, output, stem, header)


def write_defect_tables(results: list[DefectResult], output: Path, stem: str, header: str) -> str:
    """Write ``stem.csv`` (one row per digit, seed, defect type and method) and ``stem.md``: ``header``, then
    one row per defect type and method and one per method over all defect types (means), then mean fit
    seconds. Returns the markdown."""
    import pandas as pd

    frame = pd.DataFrame([r.__dict__ for r in results])
    frame.to_csv(output / f"{stem}.csv", index=False)
    metrics = ["pixel_auroc", "hit_rate", "image_auroc"]
    per_defect = frame.groupby(["defect", "method"])[metrics].mean()
    overall = frame.groupby("method")[metrics].mean()
    rows = [(d, m, per_defect.loc[(d, m)]) for d in DEFECTS for m in METHODS if (d, m) in per_defect.index]
    rows += [("all defects", m, overall.loc[m]) for m in METHODS if m in overall.index]
    fit = frame.groupby("method")["fit_seconds"].mean()
    lines = [
        header,
        "",
        "| defect | method | mean pixel AUROC | mean hit rate | mean image AUROC |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {d} | {m} | " + " | ".join(f"{v:.3f}" for v in row[metrics]) + " |" for d, m, row in rows),
        "",
        "Mean fit seconds: " + ", ".join(f"{m} {fit[m]:.1f}" for m in METHODS if m in fit.index) + ".",
    ]
    table = "\n".join(lines)
    (output / f"{stem}.md").write_text(table + "\n")
    return table
