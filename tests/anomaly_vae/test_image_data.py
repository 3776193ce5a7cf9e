"""Reading images: safe decoding of files' bytes (the hostile corpus: truncated, bombs, non-images, wrong
shapes), lenient reading that sets bad files aside, and the data set layouts (folder, .npz/.npy, tables
of bytes / base64 / paths, MVTec-AD trees)."""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from anomaly_vae.errors import RecordError
from anomaly_vae.image.data import (
    MAX_PIXELS,
    decode_image,
    decode_image_field,
    image_from_array,
    read_image_folder,
    read_images_lenient,
)
from anomaly_vae.image.datasets import is_image_dataset, read_image_dataset


def png(array: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    (Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)).save(buffer, fmt)
    return buffer.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit grayscale PNG of width x height black pixels: a few dozen kB for 20000 x 20000."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


GRAY = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).astype(np.uint8)
RGB = np.stack([GRAY, GRAY[::-1], GRAY.T], axis=-1)


def test_decoding_gives_channels_last_arrays_by_mode():
    np.testing.assert_array_equal(decode_image(png(GRAY), item=0), GRAY)
    np.testing.assert_array_equal(decode_image(png(RGB), item=0), RGB)
    assert decode_image(png(RGB, "RGBA"), item=0).shape == (8, 8, 3)  # alpha dropped
    assert decode_image(png(RGB, "P"), item=0).shape == (8, 8, 3)  # palette -> RGB
    assert decode_image(png(GRAY, "LA"), item=0).shape == (8, 8)
    assert decode_image(png(RGB, "CMYK", "JPEG"), item=0).shape == (8, 8, 3)
    sixteen = decode_image(png(GRAY.astype(np.uint16) * 257), item=0)
    assert sixteen.dtype == np.uint16 and sixteen.max() == 252 * 257
    jpeg = decode_image(png(RGB, fmt="JPEG"), item=0)
    assert jpeg.shape == (8, 8, 3) and np.abs(jpeg.astype(int) - RGB).mean() < 20


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (png(GRAY)[:50], "truncated or corrupt"),
        (png(GRAY)[:40], "not an image file"),  # the header itself is cut
        (b"GIF89a not really", "not an image file of a supported format"),
        (b"", "not an image file"),
        (b"%PDF-1.4 ...", "not an image file"),
        ("text", "expected the bytes of an image file, got str"),
    ],
)
def test_bad_bytes_raise_a_record_error_naming_the_item(data, message):
    with pytest.raises(RecordError, match=message) as caught:
        decode_image(data, item=3)
    assert caught.value.row == 3 and str(caught.value).startswith("image 3: ")
    with pytest.raises(RecordError, match=r"^image 'a\.png': ") as named:
        decode_image(data, item="a.png")
    assert named.value.row is None


def test_a_decompression_bomb_is_refused_from_its_header_at_once():
    bomb = png_bomb(20000, 20000)  # 400 million pixels, beyond Pillow's own limit too
    assert len(bomb) < 200_000
    start = time.perf_counter()
    with pytest.raises(RecordError, match="more than 16,777,216 pixels"):
        decode_image(bomb, item=0)
    below_pillow = png_bomb(5000, 5000)  # 25 million: under Pillow's limit, over ours
    with pytest.raises(RecordError, match=r"5000 x 5000 pixels is more than the limit"):
        decode_image(below_pillow, item=0)
    assert time.perf_counter() - start < 1.0  # nothing was decoded
    assert MAX_PIXELS == 4096 * 4096


def test_base64_fields_and_pixel_arrays():
    text = base64.b64encode(png(GRAY)).decode()
    np.testing.assert_array_equal(decode_image_field(text, item=0), GRAY)
    np.testing.assert_array_equal(decode_image_field("data:image/png;base64," + text, item=0), GRAY)
    np.testing.assert_array_equal(decode_image_field(png(GRAY), item=0), GRAY)
    with pytest.raises(RecordError, match="image 2: not base64"):
        decode_image_field("not base64 at all!", item=2)
    assert image_from_array(GRAY.tolist(), item=0).dtype == np.uint8
    assert image_from_array([[0.0, 0.5], [1.0, 0.25]], item=0).dtype == np.float32
    for value, message in [
        ([[1, 2], [3]], "pixel rows of different lengths"),
        ([["a", "b"]], "expected numbers"),
        ([[[1, 2, 3, 4]]], r"C = 1 or 3, got \(1, 1, 4\)"),
        ([[300]], "0-255"),
        ([[1.5]], r"\[0, 1\]"),
        ([1, 2, 3], r"got \(3,\)"),
    ]:
        with pytest.raises(RecordError, match=message):
            image_from_array(value, item=0)


def test_lenient_reading_sets_bad_files_aside_with_the_reason(tmp_path):
    (tmp_path / "a.png").write_bytes(png(GRAY))
    (tmp_path / "b.png").write_bytes(png(GRAY)[:50])
    (tmp_path / "c.png").write_bytes(png(RGB))
    sources = [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "missing.png", tmp_path / "c.png", png(GRAY)]
    images, names, rejects = read_images_lenient(sources)
    assert names == ["a.png", "c.png", "4"] and len(images) == 3
    assert [r[0] for r in rejects] == ["b.png", "missing.png"]
    assert "truncated" in rejects[0][1] and "cannot read the file" in rejects[1][1]
    _, names, rejects = read_images_lenient(sources, [f"id{i}" for i in range(5)], channels=1)
    assert names == ["id0", "id4"] and rejects[-1] == ("id3", "RGB image, the model takes grayscale images")
    with pytest.raises(RecordError, match=r"image 'b\.png': truncated"):
        read_image_folder(tmp_path)


def write_folder(folder: Path, images: list[np.ndarray], prefix: str = "") -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{prefix}{i:03d}.png" for i in range(len(images))]
    for name, image in zip(names, images, strict=True):
        Image.fromarray(image).save(folder / name)
    return names


def test_folders_arrays_and_what_counts_as_an_image_data_set(tmp_path):
    write_folder(tmp_path / "folder", [GRAY, GRAY[::-1]])
    dataset = read_image_dataset(tmp_path / "folder")
    assert dataset.names == ["000.png", "001.png"] and dataset.labels is None and dataset.test is None
    np.savez(tmp_path / "binary.npz", X=np.stack([GRAY] * 4), y=np.array([0, 1, 0, 0]))
    np.savez(tmp_path / "digits.npz", X=np.stack([GRAY] * 3), y=np.array([3, 8, 8]))
    np.save(tmp_path / "plain.npy", np.stack([GRAY] * 2))
    binary = read_image_dataset(tmp_path / "binary.npz")
    assert binary.labels.tolist() == [0, 1, 0, 0] and binary.names == ["0", "1", "2", "3"]
    digits = read_image_dataset(tmp_path / "digits.npz")
    assert digits.labels is None and digits.classes.tolist() == [3, 8, 8]
    assert read_image_dataset(tmp_path / "plain.npy").images.shape == (2, 8, 8)
    pd.DataFrame({"x": [1.0]}).to_csv(tmp_path / "table.csv", index=False)
    (tmp_path / "empty").mkdir()
    checks = {"folder": True, "binary.npz": True, "plain.npy": True, "table.csv": False, "empty": False}
    assert {name: is_image_dataset(tmp_path / name) for name in checks} == checks


def test_tables_of_paths_bytes_and_base64(tmp_path):
    names = write_folder(tmp_path / "pictures", [GRAY, RGB, GRAY.T])
    paths = pd.DataFrame({"id": ["a", "b", "c"], "file": [f"pictures/{n}" for n in names], "bad": [1, 0, 0]})
    paths.to_csv(tmp_path / "paths.csv", index=False)
    from_paths = read_image_dataset(tmp_path / "paths.csv", label_column="bad")
    assert from_paths.names == paths["file"].tolist() and from_paths.labels.tolist() == [1, 0, 0]
    assert from_paths.images[1].shape == (8, 8, 3)
    raw = pd.DataFrame({"id": ["a", "b", "c"], "png": [png(GRAY), png(GRAY)[:50], png(GRAY.T)]})
    raw.to_parquet(tmp_path / "bytes.parquet")
    with pytest.raises(RecordError, match="image 'b': truncated") as caught:
        read_image_dataset(tmp_path / "bytes.parquet", name_column="id")
    assert caught.value.row == 1
    lenient = read_image_dataset(tmp_path / "bytes.parquet", name_column="id", skip_unreadable=True)
    assert lenient.names == ["a", "c"] and [r[0] for r in lenient.rejects] == ["b"]
    text = pd.DataFrame({"image": [base64.b64encode(png(GRAY)).decode()] * 2, "note": ["x", "y"]})
    text.to_csv(tmp_path / "base64.csv", index=False)
    np.testing.assert_array_equal(read_image_dataset(tmp_path / "base64.csv").images[1], GRAY)
    both = pd.DataFrame({"one": [png(GRAY)], "two": [png(GRAY)]})
    both.to_parquet(tmp_path / "two.parquet")
    with pytest.raises(ValueError, match=r"pass column= .* found several \(\['one', 'two'\]\)"):
        read_image_dataset(tmp_path / "two.parquet")
    assert len(read_image_dataset(tmp_path / "two.parquet", column="two")) == 1


def test_an_mvtec_tree_gives_train_and_a_labelled_test_part_with_masks(tmp_path):
    root = tmp_path / "bottle"
    write_folder(root / "train" / "good", [GRAY] * 3)
    write_folder(root / "test" / "good", [GRAY] * 2)
    write_folder(root / "test" / "crack", [GRAY.T] * 2)
    write_folder(root / "test" / "scratch", [GRAY[::-1]])
    mask = np.zeros((8, 8), np.uint8)
    mask[2:4, 2:4] = 255
    write_folder(root / "ground_truth" / "crack", [mask])  # 000.png: a mask without the _mask suffix
    (root / "ground_truth" / "scratch").mkdir()
    Image.fromarray(mask).save(root / "ground_truth" / "scratch" / "000_mask.png")
    assert is_image_dataset(root)
    dataset = read_image_dataset(root)
    assert dataset.names == ["train/good/000.png", "train/good/001.png", "train/good/002.png"]
    assert dataset.labels.tolist() == [0, 0, 0] and dataset.masks is None
    test = dataset.test
    assert test.names[:3] == ["test/good/000.png", "test/good/001.png", "test/crack/000.png"]
    assert test.defects == ["good", "good", "crack", "crack", "scratch"]
    assert test.labels.tolist() == [0, 0, 1, 1, 1]
    assert test.masks[0] is None and test.masks[3] is None  # good image; defect without a mask
    assert test.masks[2].dtype == bool and test.masks[2].sum() == 4 and test.masks[4].sum() == 4
    (root / "test" / "crack" / "002.png").write_bytes(b"broken")
    with pytest.raises(RecordError, match=r"test/crack/002\.png"):
        read_image_dataset(root)
    assert read_image_dataset(root, skip_unreadable=True).test.rejects[0][0] == "test/crack/002.png"
