"""Image inputs: numpy stacks, ``.npz`` / ``.npy`` files and folders of PNG/JPEG files, checked, scaled to
[0, 1] and resized to the size a model was fitted on.

Layout is channels-last, as numpy and Pillow give it: (N, H, W) grayscale or (N, H, W, C) with C = 1
(grayscale) or 3 (RGB). uint8 images are divided by 255, uint16 by 65535; float images must already lie
in [0, 1]. A list of (H, W[, C]) arrays may mix sizes (e.g. a folder of photos): each is resized.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

MAX_SIDE = 256  # images are resized so that neither side exceeds this
MIN_SIDE = 8
CHANNEL_NAMES = {1: "grayscale", 3: "RGB"}


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def read_image_folder(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """The images in ``path`` (sorted by file name) as channels-last arrays, and their file names.

    Grayscale files give (H, W) arrays, everything else (H, W, 3) RGB; alpha channels are dropped.
    """
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in Path(path).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{path} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    images = []
    for file in files:
        try:
            with Image.open(file) as image:
                if image.mode in _GRAY_MODES:
                    array = np.asarray(image.convert("I;16" if image.mode.startswith("I") else "L"))
                else:
                    array = np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"{file}: not a readable image ({error})") from error
        images.append(array)
    return images, [f.name for f in files]


def read_images(X: Any) -> tuple[list[np.ndarray] | np.ndarray, list[str] | None]:
    """The images of X (an array, a list of arrays, or a path to a ``.npz`` / ``.npy`` file or a folder of
    image files) and their names (file names for a folder, else None), unscaled and unchecked."""
    if isinstance(X, (str, Path)):
        path = Path(X)
        if path.is_dir():
            return read_image_folder(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is neither an image folder nor a .npz / .npy file")
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                keys = list(archive.keys())
                if "X" in keys:
                    return archive["X"], None
                if len(keys) == 1:
                    return archive[keys[0]], None
            raise ValueError(f"{path}: expected an array named 'X' (or a single array), found {keys}")
        raise ValueError(f"{path}: expected a folder of images, a .npz or a .npy file")
    if isinstance(X, (list, tuple)):
        return [np.asarray(x) for x in X], None
    return np.asarray(X), None


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """float32 copy of a channels-last stack scaled to [0, 1] (see the module docstring for the rules)."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    if images.dtype == np.uint16:
        return images.astype(np.float32) / 65535.0
    if images.dtype == np.bool_:
        return images.astype(np.float32)
    if not np.issubdtype(images.dtype, np.number):
        raise ValueError(f"images must be numbers (uint8, uint16 or float in [0, 1]), got dtype {images.dtype}")
    values = images.astype(np.float32)
    if values.size and not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0):
        raise ValueError(
            f"{images.dtype} images must lie in [0, 1] (pass uint8 for 0-255 intensities), "
            f"got values in [{np.nanmin(values):g}, {np.nanmax(values):g}]"
        )
    return values


def _as_chw_list(images: list[np.ndarray] | np.ndarray) -> list[torch.Tensor] | torch.Tensor:
    """Check the layout and return (N, C, H, W) (one stack) or a list of (C, H, W) (mixed sizes)."""
    if isinstance(images, list):
        if not images:
            raise ValueError("expected at least one image, got an empty list")
        singles = []
        for i, image in enumerate(images):
            if image.ndim not in (2, 3):
                raise ValueError(f"image {i}: expected shape (H, W) or (H, W, C), got {image.shape}")
            singles.append(_as_chw_list(image[None])[0])
        return singles
    if images.ndim == 2:
        raise ValueError(
            f"expected a stack of images of shape (N, H, W) or (N, H, W, C), got a 2-D array {images.shape}; "
            "for one image pass X[None]"
        )
    if images.ndim not in (3, 4):
        raise ValueError(f"expected images of shape (N, H, W) or (N, H, W, C), got {images.ndim}-D {images.shape}")
    if images.ndim == 4 and images.shape[-1] not in CHANNEL_NAMES:
        raise ValueError(
            f"expected channels-last images (N, H, W, C) with C = 1 (grayscale) or 3 (RGB), got shape {images.shape}"
        )
    if len(images) == 0:
        raise ValueError("expected at least one image, got 0")
    tensor = torch.from_numpy(to_unit_range(images))
    return tensor[:, None] if tensor.dim() == 3 else tensor.permute(0, 3, 1, 2)


@dataclass(frozen=True)
class ImageShape:
    """The channel count and size a model was fitted on; :meth:`transform` brings any input to it."""

    channels: int
    height: int
    width: int

    @classmethod
    def fit(cls, images: list[torch.Tensor] | torch.Tensor, size: tuple[int, int] | None = None) -> ImageShape:
        """The shape of the first image (or ``size``), scaled down so no side exceeds ``MAX_SIDE``."""
        channels, height, width = images[0].shape
        if size is not None:
            height, width = size
        scale = min(1.0, MAX_SIDE / max(height, width))
        height, width = max(1, round(height * scale)), max(1, round(width * scale))
        if min(height, width) < MIN_SIDE:
            raise ValueError(f"images must be at least {MIN_SIDE} x {MIN_SIDE} pixels, got {height} x {width}")
        return cls(int(channels), int(height), int(width))

    def transform(self, images: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) float32 in [0, 1] at this shape."""
        if isinstance(images, list):
            return torch.cat([self.transform(image[None]) for image in images])
        if images.shape[1] != self.channels:
            got = images.shape[1]
            raise ValueError(
                f"the model expects {self.channels}-channel ({CHANNEL_NAMES[self.channels]}) images, "
                f"got {got}-channel ({CHANNEL_NAMES[got]}) ones"
            )
        height, width = images.shape[-2:]
        if (height, width) != (self.height, self.width):  # box filter to shrink, bilinear to enlarge
            shrink = height >= self.height and width >= self.width
            mode = "area" if shrink else "bilinear"
            images = F.interpolate(
                images, size=(self.height, self.width), mode=mode, **({} if shrink else {"align_corners": False})
            )
        return images.clamp(0.0, 1.0)


def load_images(X: Any) -> tuple[list[torch.Tensor] | torch.Tensor, list[str] | None]:
    """:func:`read_images`, checked and scaled: (N, C, H, W) in [0, 1], or a list of (C, H, W) of mixed sizes."""
    images, names = read_images(X)
    return _as_chw_list(images), names


def complexity_nats(images: torch.Tensor) -> np.ndarray:
    """Code length in nats of each (C, H, W) image in [0, 1] as 8-bit pixels under zlib (level 9): the
    -log-probability a generic lossless compressor gives it, high for busy images, low for simple ones."""
    pixels = (images.permute(0, 2, 3, 1) * 255.0).round().to(torch.uint8).cpu().numpy()
    return np.array([len(zlib.compress(image.tobytes(), 9)) * 8 * math.log(2) for image in pixels])


@dataclass
class ImageData:
    """Images on a device: (n, C, H, W) float in [0, 1]."""

    inputs: torch.Tensor
    context: None = None  # images have no context

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: torch.Tensor | slice) -> ImageData:
        return ImageData(self.inputs[index])
