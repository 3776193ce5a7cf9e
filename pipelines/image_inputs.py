"""The images of a batch input for an image model (`anomaly-vae score` and `drift`), chunk by chunk, each
one read or set aside with the reason.

Inputs (:class:`ImageSource`):

- a folder: every file in it and in its sub-folders (hidden ones left out, and the masks of an MVTec-AD
  tree, ``ground_truth/``), sorted, named by its path relative to the folder (``test/crack/000.png``); a
  file that is not a readable image is rejected, not skipped;
- a text file (``.txt``, ``.lst``): one image path a line (relative to the list's folder, or absolute;
  blank lines and ``#`` comments left out), named as written;
- a CSV or Parquet table with ``--image-column``: image files' bytes (Parquet), paths (relative to the
  table's folder) or base64 text of image files; named by the first ``--id-column`` (copied to the output
  too), else by the path, else by the row number;
- a ``.npy`` / ``.npz`` stack (array ``X``): named by position.

Files ending in ``.npy`` inside a folder or list are read as one (H, W) or (H, W, C) array each. An image
is rejected (never raising for the job) when it cannot be read (missing file, corrupt or truncated bytes,
not an image, too many pixels) or does not fit the model (channels, an array of the wrong shape or
values); the reasons come from the library, which is the one validator of images.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_vae.image.data import IMAGE_SUFFIXES, decode_image, decode_image_field
from pipelines.data import CSV_SUFFIXES, PARQUET_SUFFIXES, count_rows, is_parquet, read_chunks

IMAGE_CHUNK = 256  # images read and scored at a time by default
LIST_SUFFIXES = {".txt", ".lst"}
STACK_SUFFIXES = {".npy", ".npz"}
MAX_FILE_BYTES = 256 * 2**20  # larger files are rejected unread (decode_image limits the pixels of the rest)


@dataclass
class Item:
    """One image of an input: its position, name, id values, and what holds it (None: nothing)."""

    row: int
    name: str
    payload: bytes | Path | np.ndarray | str | None  # str: base64 text of an image file
    ids: dict[str, Any] = field(default_factory=dict)


class ImageSource:
    """The images of one input (see the module docstring), as lists of :class:`Item` in input order."""

    def __init__(self, path: Path, *, image_column: str | None = None, id_columns: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self.image_column = image_column
        self.id_columns = list(id_columns)
        if not self.path.exists():
            raise FileNotFoundError(f"input not found: {self.path}")
        suffix = self.path.suffix.lower()
        if self.path.is_dir():  # a folder of Parquet parts when an image column is named, else of images
            self.table = image_column is not None
            if self.table and not is_parquet(self.path):
                raise ValueError(
                    f"--image-column names a table's column; {self.path} is a folder without Parquet parts"
                )
        else:
            self.table = suffix in PARQUET_SUFFIXES | (CSV_SUFFIXES - LIST_SUFFIXES)
        if self.table and image_column is None:
            raise ValueError(f"{self.path} is a table: name the column of image bytes or paths with --image-column")
        if not self.table and image_column is not None:
            raise ValueError("--image-column is for CSV or Parquet inputs (a folder, list or stack has no columns)")
        if not self.table and self.id_columns:
            raise ValueError(
                "--id-column is for CSV or Parquet inputs: other inputs' images are named by path or position"
            )
        if not (self.table or self.path.is_dir() or suffix in LIST_SUFFIXES | STACK_SUFFIXES):
            raise ValueError(
                f"{self.path}: an image model scores a folder of images, a list of paths (.txt), a CSV or "
                "Parquet table with --image-column, or a .npy / .npz stack"
            )
        self._items: list[Item] | None = None if self.table else self._listed()

    @property
    def total(self) -> int:
        """The number of images (of a table: its rows, from Parquet metadata or a pass over a CSV's lines)."""
        if self._items is not None:
            return len(self._items)
        return count_rows(self.path)

    def chunks(self, size: int) -> Iterator[list[Item]]:
        if self._items is None:
            yield from self._table_chunks(size)
            return
        for start in range(0, len(self._items), size):
            yield self._items[start : start + size]

    def _listed(self) -> list[Item]:
        if self.path.is_dir():
            mvtec = (self.path / "train" / "good").is_dir()  # an MVTec-AD tree: its masks are no inputs
            files = sorted(
                p
                for p in self.path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(self.path).parts)
                and not (mvtec and p.relative_to(self.path).parts[0] == "ground_truth")
            )
            if not files:
                raise ValueError(f"{self.path} holds no files")
            return [Item(i, p.relative_to(self.path).as_posix(), p) for i, p in enumerate(files)]
        if self.path.suffix.lower() in LIST_SUFFIXES:
            lines = [line.strip() for line in self.path.read_text().splitlines()]
            paths = [line for line in lines if line and not line.startswith("#")]
            if not paths:
                raise ValueError(f"{self.path} lists no image paths (one a line)")
            return [Item(i, line, self.path.parent / line) for i, line in enumerate(paths)]
        stack = _stack(self.path)
        return [Item(i, str(i), stack[i]) for i in range(len(stack))]

    def _table_chunks(self, size: int) -> Iterator[list[Item]]:
        column, ids, row = self.image_column, self.id_columns, 0
        for chunk in read_chunks(self.path, size):
            absent = [c for c in [column, *ids] if c not in chunk.columns]
            if absent:
                raise ValueError(f"{self.path}: column(s) not in the input: {absent}")
            items = []
            for i, value in enumerate(chunk[column].tolist()):
                payload = _table_payload(value, self.path if self.path.is_dir() else self.path.parent)
                values = {c: chunk[c].iat[i] for c in ids}
                name = str(values[ids[0]]) if ids else value if isinstance(payload, Path) else str(row + i)
                items.append(Item(row + i, name, payload, values))
            row += len(chunk)
            yield items


def _table_payload(value: Any, folder: Path) -> bytes | Path | str | None:
    """What to decode for a value of a table's image column: bytes, a file (a string ending in an image or
    ``.npy`` suffix: a path relative to the table's folder), base64 text (any other string), or None."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str) and value:
        is_path = Path(value).suffix.lower() in IMAGE_SUFFIXES | {".npy"}
        return folder / value if is_path else value
    return None


def _stack(path: Path) -> np.ndarray:
    """The images of a ``.npy`` (memory-mapped: read image by image) or ``.npz`` file (array ``X``)."""
    if path.suffix.lower() == ".npy":
        stack = np.load(path, mmap_mode="r", allow_pickle=False)
    else:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            if "X" not in keys and len(keys) != 1:
                raise ValueError(f"{path}: expected an array named 'X' (or a single array), found {keys}")
            stack = archive["X" if "X" in keys else keys[0]]
    if stack.ndim not in (3, 4):
        raise ValueError(f"{path}: expected a stack of images (N, H, W) or (N, H, W, C), got shape {stack.shape}")
    return stack


def decode(item: Item) -> np.ndarray:
    """The image of ``item`` as an (H, W[, C]) array, unscaled; a ``ValueError`` saying why it cannot be read."""
    payload = item.payload
    if isinstance(payload, Path):
        if payload.suffix.lower() == ".npy":
            return _npy(_file_bytes(payload))
        payload = _file_bytes(payload)
    if isinstance(payload, bytes):
        return np.asarray(decode_image(payload, item=item.name))
    if isinstance(payload, str):
        return np.asarray(decode_image_field(payload, item=item.name))
    if isinstance(payload, np.ndarray):
        return _array(payload)
    raise ValueError("no image (missing value)")


def _file_bytes(path: Path) -> bytes:
    """The bytes of the file ``path``; a ``ValueError`` when it is missing, unreadable or too large."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ValueError(f"not a file: {path}")
        if size > MAX_FILE_BYTES:
            raise ValueError(f"file of {size:,} bytes, more than the limit of {MAX_FILE_BYTES:,} (MAX_FILE_BYTES)")
        return path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"file not found: {path}") from None
    except OSError as error:
        raise ValueError(f"cannot read the file ({error.strerror or error})") from None


def _npy(data: bytes) -> np.ndarray:
    try:
        return _array(np.load(io.BytesIO(data), allow_pickle=False))
    except (OSError, EOFError) as error:  # numpy's reader on a truncated or foreign file
        raise ValueError(f"not a readable .npy array ({error})") from None


def _array(array: np.ndarray) -> np.ndarray:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (1, 3)) or not array.size:
        raise ValueError(f"expected an image array of shape (H, W) or (H, W, C) with C = 1 or 3, got {array.shape}")
    return np.asarray(array)


def decoded(items: list[Item]) -> tuple[list[Item], list[np.ndarray], list[tuple[Item, str]]]:
    """The items that could be read with their images, and the others with the reason."""
    good, images, rejected = [], [], []
    for item in items:
        try:
            image = decode(item)
        except ValueError as error:  # RecordError too: a ValueError naming the item
            rejected.append((item, str(error)))
            continue
        good.append(item)
        images.append(image)
    return good, images, rejected


def model_inputs(detector: Any, images: list[np.ndarray]) -> tuple[np.ndarray, list[str | None]]:
    """The images the model accepts as it sees them ((n, H, W, C) in [0, 1], resized: what it scores), and
    for each image None or why the model cannot take it (channels, values, shape)."""
    if not images:
        return np.zeros((0, *_model_shape(detector)), dtype=np.float32), []
    try:
        return detector.preprocess(images), [None] * len(images)
    except (ValueError, RuntimeError):  # one image at a time, to name the ones the model cannot take
        pass
    inputs: list[np.ndarray] = []
    reasons: list[str | None] = []
    for image in images:
        try:
            inputs.append(detector.preprocess([image]))
            reasons.append(None)
        except (ValueError, RuntimeError) as error:  # RuntimeError: torch's resizing of a degenerate array
            reasons.append(str(error))
    stack = np.concatenate(inputs) if inputs else np.zeros((0, *_model_shape(detector)), dtype=np.float32)
    return stack, reasons


def _model_shape(detector: Any) -> tuple[int, int, int]:
    shape = detector.image_shape_
    return shape.height, shape.width, shape.channels


def read_valid_images(
    detector: Any, source: ImageSource, *, max_images: int | None = None, seed: int = 0
) -> tuple[list[np.ndarray], list[str], list[tuple[str, str]]]:
    """The images of ``source`` the model can score, as read (original sizes), with their names, and the
    (name, reason) of the others. Above ``max_images`` images a seeded random subset of that size is read."""
    total = source.total
    keep: np.ndarray | None = None
    if max_images is not None and total > max_images:
        keep = np.zeros(total, dtype=bool)
        keep[np.random.default_rng(seed).choice(total, size=max_images, replace=False)] = True
    images: list[np.ndarray] = []
    names: list[str] = []
    rejects: list[tuple[str, str]] = []
    for chunk in source.chunks(IMAGE_CHUNK):
        items = [item for item in chunk if keep is None or (item.row < len(keep) and keep[item.row])]
        good, pictures, rejected = decoded(items)
        _, reasons = model_inputs(detector, pictures)
        rejects += [(item.name, reason) for item, reason in rejected]
        for item, picture, reason in zip(good, pictures, reasons, strict=True):
            if reason is None:
                images.append(picture)
                names.append(item.name)
            else:
                rejects.append((item.name, reason))
    return images, names, rejects
