"""Image inputs: numpy stacks, ``.npz`` / ``.npy`` files, folders of PNG/JPEG files and image files' bytes,
decoded safely (:func:`decode_image`), checked, scaled to [0, 1] and resized to the size a model was fitted
on. :mod:`anomaly_vae.image.datasets` reads whole data sets (tables of images, MVTec-AD trees) on top.

Layout is channels-last, as numpy and Pillow give it: (N, H, W) grayscale or (N, H, W, C) with C = 1
(grayscale) or 3 (RGB). uint8 images are divided by 255, uint16 by 65535; float images must already lie
in [0, 1]. A list of (H, W[, C]) arrays may mix sizes (e.g. a folder of photos): each is resized.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from anomaly_vae.errors import RecordError

MAX_SIDE = 256  # images are resized so that neither side exceeds this
MIN_SIDE = 8
CHANNEL_NAMES = {1: "grayscale", 3: "RGB"}


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP")  # the Pillow decoders tried; no other one runs
MAX_PIXELS = 4096 * 4096  # larger images are refused from their header, before any pixel is decoded
_GRAY_MODES = {"1", "L", "LA", "I", "F"}  # and "I;16" with its byte orders


class _Unreadable(ValueError):
    """Why some bytes are not an image we decode (without saying which item: the caller knows)."""


def decode_image(data: bytes, *, item: int | str) -> np.ndarray:
    """The image in the PNG / JPEG (or BMP, TIFF, WebP) file ``data`` as a channels-last array: grayscale
    files give (H, W) arrays (uint8, or uint16 for 16-bit files), everything else (H, W, 3) uint8 RGB;
    alpha channels are dropped, a multi-frame file gives its first frame.

    Safe for bytes from anywhere: the size is read from the header and an image of more than
    ``MAX_PIXELS`` pixels is refused before decoding (a 20000 x 20000 PNG "bomb" costs nothing), and a
    truncated or corrupt file, bytes that are no image, or a mode with no RGB/grayscale conversion raise
    :class:`~anomaly_vae.errors.RecordError` naming ``item`` (its position, or a name such as a file
    name; ``row`` is set for a position), never another exception."""
    try:
        return _decode(data)
    except _Unreadable as error:
        raise RecordError(f"image {item!r}: {error}", row=item if isinstance(item, int) else None) from None


def decode_image_field(value: str | bytes, *, item: int | str) -> np.ndarray:
    """:func:`decode_image` of an image file given as its bytes or as base64 text (a ``data:image/...;base64,``
    prefix is allowed), as JSON bodies and table columns carry them."""
    if isinstance(value, str):
        text = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
        try:
            value = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise RecordError(f"image {item!r}: not base64 text", row=item if isinstance(item, int) else None) from None
    return decode_image(value, item=item)


def image_from_array(value: Any, *, item: int | str) -> np.ndarray:
    """One image given as pixel rows (nested lists, as JSON carries them) or as an array: (H, W) or (H, W, C)
    with C = 1 or 3. Integers are 8-bit intensities 0-255 (returned as uint8), floats intensities in
    [0, 1] (returned as float32), booleans 0/1. Anything else (ragged rows, strings, another shape,
    values out of range, more than ``MAX_PIXELS`` pixels) raises :class:`~anomaly_vae.errors.RecordError`
    naming ``item``."""
    try:
        array = _checked_array(value)
    except _Unreadable as error:
        raise RecordError(f"image {item!r}: {error}", row=item if isinstance(item, int) else None) from None
    return array


def _checked_array(value: Any) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # ragged nested lists
        raise _Unreadable("pixel rows of different lengths") from None
    if array.dtype.kind not in "biuf":
        raise _Unreadable(f"expected numbers, got an array of {array.dtype}")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in CHANNEL_NAMES):
        raise _Unreadable(f"expected shape (H, W) or (H, W, C) with C = 1 or 3, got {array.shape}")
    if array.shape[0] * array.shape[1] > MAX_PIXELS or min(array.shape[:2]) == 0:
        raise _Unreadable(f"{array.shape[1]} x {array.shape[0]} pixels: 1 to {MAX_PIXELS:,} (MAX_PIXELS) allowed")
    if array.dtype.kind == "b":
        return array
    if array.dtype.kind in "iu":
        if array.min() < 0 or array.max() > 255:
            raise _Unreadable("integer intensities must lie in 0-255 (or send floats in [0, 1])")
        return array.astype(np.uint8)
    if not (np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0):
        raise _Unreadable("float intensities must lie in [0, 1] (or send integers 0-255)")
    return array.astype(np.float32)


def _decode(data: bytes) -> np.ndarray:
    """:func:`decode_image` without the item: every failure is an :class:`_Unreadable`."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _Unreadable(f"expected the bytes of an image file, got {type(data).__name__}")
    try:
        with warnings.catch_warnings():  # Pillow's own bomb limit (above MAX_PIXELS) warns first: refuse
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise _Unreadable(
                        f"{width} x {height} pixels is more than the limit of {MAX_PIXELS:,} (MAX_PIXELS)"
                    )
                image.load()
                return pixels(image)
    except _Unreadable:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise _Unreadable(f"more than {MAX_PIXELS:,} pixels (MAX_PIXELS): refused as a decompression bomb") from None
    except UnidentifiedImageError:
        raise _Unreadable(f"not an image file of a supported format ({', '.join(IMAGE_FORMATS)})") from None
    except Exception as error:  # a decoder's failure on corrupt bytes, whatever its type
        raise _Unreadable(f"truncated or corrupt image file ({type(error).__name__}: {error})") from None


def pixels(image: Any) -> np.ndarray:
    """A Pillow image as a channels-last array (see :func:`decode_image`); one conversion for every reader."""
    mode = image.mode
    if mode in _GRAY_MODES or mode.startswith("I;16"):
        return np.asarray(image.convert("I;16" if mode.startswith("I") else "L"))
    try:
        return np.asarray(image.convert("RGB"))
    except ValueError:
        raise _Unreadable(f"image mode {mode!r} has no RGB or grayscale conversion") from None


def image_files(path: str | Path) -> list[Path]:
    """The image files in the folder ``path`` (by suffix, sorted by name; subfolders are not read)."""
    return sorted(p for p in Path(path).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image_folder(path: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """The images in ``path`` (sorted by file name) as :func:`decode_image` gives them, and their file
    names; an unreadable file raises :class:`~anomaly_vae.errors.RecordError` naming it (see
    :func:`read_images_lenient` to set such files aside instead)."""
    files = image_files(path)
    if not files:
        raise ValueError(f"{path} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return [decode_image(file.read_bytes(), item=file.name) for file in files], [f.name for f in files]


def read_images_lenient(
    sources: Sequence[str | Path | bytes], names: Sequence[str] | None = None, *, channels: int | None = None
) -> tuple[list[np.ndarray], list[str], list[tuple[str, str]]]:
    """Decode each image file (a path, or the file's bytes) and set aside the ones that cannot be read.

    Returns the images, their names, and ``(name, reason)`` for each file left out (missing or unreadable
    file, not an image, truncated, too many pixels, no RGB/grayscale conversion, or, with ``channels``
    given, another channel count than the model's). ``names`` default to the file names of paths and to
    the positions ("0", "1", ...) of bytes. The batch scorer's reader: one bad file never fails the rest.
    """
    all_names = source_names(sources, names)
    images, kept, failures = decode_all(sources, channels=channels)
    return images, [all_names[i] for i in kept], [(all_names[i], reason) for i, reason in failures]


def source_names(sources: Sequence[str | Path | bytes], names: Sequence[str] | None) -> list[str]:
    """``names`` as strings, or by default the file name of each path and the position of each bytes."""
    if names is not None:
        if len(names) != len(sources):
            raise ValueError(f"{len(names)} names for {len(sources)} images")
        return [str(name) for name in names]
    return [str(i) if isinstance(s, (bytes, bytearray, memoryview)) else Path(s).name for i, s in enumerate(sources)]


def decode_all(
    sources: Sequence[str | Path | bytes], *, channels: int | None = None
) -> tuple[list[np.ndarray], list[int], list[tuple[int, str]]]:
    """:func:`read_images_lenient` by position: the images, the positions of the sources they come from,
    and ``(position, reason)`` for each source left out."""
    images, kept, failures = [], [], []
    for i, source in enumerate(sources):
        try:
            if isinstance(source, (bytes, bytearray, memoryview)):
                image = _decode(source)
            else:
                image = _decode(Path(source).read_bytes())
            if channels is not None and (got := 1 if image.ndim == 2 else image.shape[-1]) != channels:
                raise _Unreadable(f"{CHANNEL_NAMES[got]} image, the model takes {CHANNEL_NAMES[channels]} images")
        except OSError as error:
            failures.append((i, f"cannot read the file ({error.strerror or error})"))
            continue
        except _Unreadable as error:
            failures.append((i, str(error)))
            continue
        images.append(image)
        kept.append(i)
    return images, kept, failures


def read_array_file(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The images of a ``.npy`` file, or of a ``.npz`` file (array ``X``, or its only array) with its
    array ``y`` when there is one."""
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False), None
    if path.suffix != ".npz":
        raise ValueError(f"{path}: expected a folder of images, a .npz or a .npy file")
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.keys())
        if "X" in keys:
            return archive["X"], archive["y"] if "y" in keys else None
        if len(keys) == 1:
            return archive[keys[0]], None
    raise ValueError(f"{path}: expected an array named 'X' (or a single array), found {keys}")


def read_images(X: Any) -> tuple[list[np.ndarray] | np.ndarray, list[str] | None]:
    """The images of X (an array, a list of arrays, or a path to a ``.npz`` / ``.npy`` file or a folder of
    image files) and their names (file names for a folder, else None), unscaled and unchecked."""
    if isinstance(X, (str, Path)):
        path = Path(X)
        if path.is_dir():
            return read_image_folder(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is neither an image folder nor a .npz / .npy file")
        return read_array_file(path)[0], None
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
            try:
                if image.ndim not in (2, 3):
                    raise ValueError(f"expected shape (H, W) or (H, W, C), got {image.shape}")
                singles.append(_as_chw_list(image[None])[0])
            except ValueError as error:
                raise RecordError(f"image {i}: {error}", row=i) from None
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
            resized = []
            for i, image in enumerate(images):
                try:
                    resized.append(self.transform(image[None]))
                except ValueError as error:
                    raise RecordError(f"image {i}: {error}", row=i) from None
            return torch.cat(resized)
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


def complexity_nats(images: torch.Tensor, compressor: str = "png") -> np.ndarray:
    """Code length in nats of each (C, H, W) image in [0, 1] as 8-bit pixels under a generic lossless
    compressor: the -log-probability it gives the image, high for busy images, low for simple ones.
    ``"png"``: the PNG file (Pillow, ``optimize=True``: a prediction filter per row, then deflate; the
    container's bytes are the same for every image of a size). ``"zlib"``: the raw pixels under zlib
    (level 9), the compressor of models saved before PNG."""
    pixels = (images.permute(0, 2, 3, 1) * 255.0).round().to(torch.uint8).cpu().numpy()
    if compressor == "zlib":
        return np.array([len(zlib.compress(image.tobytes(), 9)) * 8 * math.log(2) for image in pixels])
    from PIL import Image

    lengths = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG", optimize=True)
        lengths.append(buffer.tell() * 8 * math.log(2))
    return np.array(lengths)


@dataclass
class ImageData:
    """Images on a device: (n, C, H, W) float in [0, 1]."""

    inputs: torch.Tensor
    context: None = None  # images have no context

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: torch.Tensor | slice) -> ImageData:
        return ImageData(self.inputs[index])
