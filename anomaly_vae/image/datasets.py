"""Image data sets in the layouts users have, read into one :class:`ImageDataset`:

- a folder of image files (PNG, JPEG, ...; names = file names);
- a ``.npz`` file (array ``X``, optional ``y``) or a ``.npy`` file (names = positions "0", "1", ...);
- a Parquet or CSV file with an image column: the files' bytes, base64 text of them, or paths relative to
  the table's folder (``column=``, or the one column that holds such values), optional ``label_column=``
  and ``name_column=`` (default names: the paths, or the row positions);
- an MVTec-AD tree (the layout anomalib reads): ``train/good/`` is the data set, ``test/good/`` and
  ``test/<defect>/`` its :attr:`ImageDataset.test` part, labelled (good = 0, any defect = 1), with the masks
  ``ground_truth/<defect>/<name>_mask.png`` where present (None for good images and missing masks).

Labels (``y`` of a ``.npz``, a label column) are kept as ``labels`` when they are 0/1 (1 = anomaly) and
as ``classes`` otherwise (e.g. digit classes, from which a one-class task picks the normal one). Decoding
goes through :func:`~anomaly_vae.image.data.decode_image` (pixel limit, corrupt files); an unreadable
image raises :class:`~anomaly_vae.errors.RecordError` naming it, or with ``skip_unreadable=True`` is
left out and listed in ``rejects`` with the reason.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from anomaly_vae.errors import RecordError
from anomaly_vae.image.data import IMAGE_SUFFIXES, decode_all, image_files, read_array_file

ARRAY_SUFFIXES = {".npz", ".npy"}
TABLE_SUFFIXES = {".parquet", ".pq", ".csv"}
MVTEC_NORMAL = "good"


@dataclass
class ImageDataset:
    """Images (a stack, or a list of channels-last arrays of any sizes), one name per image, and what the
    layout tells about them. For an MVTec-AD tree this is the ``train/good`` part and :attr:`test` the
    labelled test part; every other layout has no ``test``."""

    images: list[np.ndarray] | np.ndarray
    names: list[str]
    labels: np.ndarray | None = None  # int64 0/1 per image, 1 = anomaly
    masks: list[np.ndarray | None] | None = None  # bool (H, W) per image, None where there is no mask
    classes: np.ndarray | None = None  # labels that are not 0/1, as given
    defects: list[str] | None = None  # MVTec-AD: each image's folder ("good", "crack", ...)
    test: ImageDataset | None = None
    rejects: list[tuple[str, str]] = field(default_factory=list)  # (name, reason), with skip_unreadable

    def __len__(self) -> int:
        return len(self.names)


def is_image_dataset(path: str | Path) -> bool:
    """Whether ``path`` is an image data set by its layout alone: a folder holding image files, an MVTec-AD
    tree, or a ``.npz`` / ``.npy`` file. A Parquet or CSV file counts as a table (pass it to
    :func:`read_image_dataset` to read its image column)."""
    path = Path(path)
    if path.is_dir():
        return is_mvtec(path) or bool(image_files(path))
    return path.is_file() and path.suffix.lower() in ARRAY_SUFFIXES


def is_mvtec(path: Path) -> bool:
    return (path / "train" / MVTEC_NORMAL).is_dir()


def read_image_dataset(
    path: str | Path,
    *,
    column: str | None = None,
    label_column: str | None = None,
    name_column: str | None = None,
    skip_unreadable: bool = False,
) -> ImageDataset:
    """The image data set at ``path`` (see the module docstring for the layouts). ``column``,
    ``label_column`` and ``name_column`` apply to tables; ``skip_unreadable`` leaves unreadable images out
    (listed in ``rejects``) instead of raising."""
    path = Path(path)
    if path.is_dir():
        if is_mvtec(path):
            return _read_mvtec(path, skip_unreadable)
        files = image_files(path)
        if not files:
            raise ValueError(f"{path} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) and no MVTec-AD tree")
        images, kept, rejects = _decode(files, [f.name for f in files], skip_unreadable)
        return ImageDataset(images, [files[i].name for i in kept], rejects=rejects)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is neither a folder nor a file")
    suffix = path.suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        X, y = read_array_file(path)
        labels, classes = _labels_or_classes(y)
        return ImageDataset(X, [str(i) for i in range(len(X))], labels=labels, classes=classes)
    if suffix in TABLE_SUFFIXES:
        return _read_table(path, column, label_column, name_column, skip_unreadable)
    raise ValueError(
        f"{path}: expected a folder of images, an MVTec-AD tree, a .npz / .npy file or a Parquet / CSV table"
    )


def _decode(
    sources: Sequence[Path | bytes], names: list[str], skip_unreadable: bool, rows: list[int] | None = None
) -> tuple[list[np.ndarray], list[int], list[tuple[str, str]]]:
    """The readable images, their positions in ``sources``, and ``(name, reason)`` of the others; without
    ``skip_unreadable`` the first unreadable one raises (its ``row``: its position, or ``rows[position]``)."""
    images, kept, failures = decode_all(sources)
    if failures and not skip_unreadable:
        position, reason = failures[0]
        more = f" (and {len(failures) - 1} more unreadable)" if len(failures) > 1 else ""
        row = position if rows is None else rows[position]
        raise RecordError(f"image {names[position]!r}: {reason}{more}", row=row)
    return images, kept, [(names[i], reason) for i, reason in failures]


def _labels_or_classes(y: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(labels, None) when ``y`` is 0/1 or boolean, else (None, y)."""
    if y is None:
        return None, None
    y = np.asarray(y)
    if y.dtype == np.bool_ or (
        y.dtype.kind in "iuf" and len(y) and bool(np.isin(y, [0, 1]).all())  # NaN is not 0/1
    ):
        return y.astype(np.int64), None
    return None, y


def _read_mvtec(path: Path, skip_unreadable: bool) -> ImageDataset:
    train_dir = path / "train" / MVTEC_NORMAL
    train = _read_folders([train_dir], path, skip_unreadable)
    test_dir = path / "test"
    if not test_dir.is_dir():
        return train
    folders = sorted((d for d in test_dir.iterdir() if d.is_dir()), key=lambda d: (d.name != MVTEC_NORMAL, d.name))
    test = _read_folders(folders, path, skip_unreadable)
    assert test.defects is not None
    test.labels = np.array([defect != MVTEC_NORMAL for defect in test.defects], dtype=np.int64)
    test.masks = [
        None if defect == MVTEC_NORMAL else _mask(path / "ground_truth" / defect, Path(name).stem, skip_unreadable)
        for name, defect in zip(test.names, test.defects, strict=True)
    ]
    train.test = test
    return train


def _read_folders(folders: list[Path], root: Path, skip_unreadable: bool) -> ImageDataset:
    """The images of ``folders`` named by their path under ``root`` ("test/crack/000.png")."""
    files = [file for folder in folders for file in image_files(folder)]
    if not files:
        raise ValueError(f"{root}: no image files in {', '.join(str(f.relative_to(root)) for f in folders)}")
    names = [file.relative_to(root).as_posix() for file in files]
    images, kept, rejects = _decode(files, names, skip_unreadable)
    labels = np.zeros(len(kept), dtype=np.int64)
    defects = [files[i].parent.name for i in kept]
    return ImageDataset(images, [names[i] for i in kept], labels=labels, defects=defects, rejects=rejects)


def _mask(folder: Path, stem: str, skip_unreadable: bool) -> np.ndarray | None:
    """The (H, W) bool mask of image ``stem`` of a defect folder (``<stem>_mask.png``), None if absent."""
    for candidate in (folder / f"{stem}_mask.png", folder / f"{stem}.png"):
        if candidate.is_file():
            name = candidate.relative_to(folder.parent.parent).as_posix()
            images, _, _ = _decode([candidate], [name], skip_unreadable)
            if not images:
                return None
            mask = np.asarray(images[0]) > 0
            return mask if mask.ndim == 2 else np.asarray(mask.any(axis=-1))
    return None


def _read_table(
    path: Path, column: str | None, label_column: str | None, name_column: str | None, skip_unreadable: bool
) -> ImageDataset:
    frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    for name, what in ((column, "column"), (label_column, "label_column"), (name_column, "name_column")):
        if name is not None and name not in frame.columns:
            raise ValueError(f"{path}: no column {name!r} ({what}); columns: {list(frame.columns)}")
    column = column or _image_column(frame, path)
    values = frame[column].tolist()
    names = (
        [str(v) for v in frame[name_column]]
        if name_column is not None
        else [str(v) if _is_path(v) else str(i) for i, v in enumerate(values)]
    )
    sources: list[Path | bytes] = []
    positions: list[int] = []
    rejects: list[tuple[str, str]] = []
    for i, value in enumerate(values):
        try:
            sources.append(_source(value, path.parent))
            positions.append(i)
        except ValueError as error:
            if not skip_unreadable:
                message = f"image {names[i]!r} (row {i} of {column!r}): {error}"
                raise RecordError(message, row=i, column=column) from None
            rejects.append((names[i], str(error)))
    images, kept, decode_rejects = _decode(sources, [names[i] for i in positions], skip_unreadable, positions)
    rows = [positions[k] for k in kept]
    labels, classes = _labels_or_classes(None if label_column is None else frame[label_column].to_numpy()[rows])
    return ImageDataset(
        images, [names[i] for i in rows], labels=labels, classes=classes, rejects=rejects + decode_rejects
    )


def _is_path(value: object) -> bool:
    return isinstance(value, str) and Path(value).suffix.lower() in IMAGE_SUFFIXES


def _source(value: object, folder: Path) -> Path | bytes:
    """What to decode for one value of an image column: a file (a path relative to ``folder``) or bytes."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise ValueError("no image (missing value)")
    if _is_path(value):
        return folder / str(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value.split(",", 1)[-1] if value.startswith("data:") else value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("neither an image path nor base64 text of an image file") from None
    raise ValueError(f"expected image bytes, base64 text or a path, got {type(value).__name__}")


def _image_column(frame: pd.DataFrame, path: Path) -> str:
    """The one column whose first value is image bytes, an image path or base64 text of a PNG / JPEG."""
    candidates = []
    for name in frame.columns:
        first = frame[name].dropna().head(1).tolist()
        if first and (
            isinstance(first[0], (bytes, bytearray))
            or _is_path(first[0])
            or (isinstance(first[0], str) and first[0].startswith(("iVBORw0KGgo", "/9j/", "data:image/")))
        ):
            candidates.append(str(name))
    if len(candidates) != 1:
        found = f"several ({candidates})" if candidates else "none"
        raise ValueError(f"{path}: pass column= to say which column holds the images; found {found}")
    return candidates[0]
