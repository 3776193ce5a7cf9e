import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.data import read_table, split_labels


def test_large_parquet_folder_is_sampled_batch_by_batch(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    for part in range(4):
        values = np.arange(part * 5000, (part + 1) * 5000, dtype=np.float64)
        pq.write_table(pa.table({"a": values, "b": values * 2}), folder / f"part-{part}.parquet", row_group_size=1000)
    full = read_table(folder)
    assert len(full) == 20000
    sample = read_table(folder, max_rows=2000, seed=1)
    assert 1700 < len(sample) < 2300 and list(sample.columns) == ["a", "b"]
    assert sample["a"].is_unique and (sample["b"] == 2 * sample["a"]).all()
    assert sample["a"].min() < 2000 and sample["a"].max() > 18000  # drawn from every part
    pd.testing.assert_frame_equal(sample, read_table(folder, max_rows=2000, seed=1))


def test_large_csv_is_sampled(tmp_path):
    path = tmp_path / "big.csv"
    pd.DataFrame({"a": np.arange(30000)}).to_csv(path, index=False)
    assert len(read_table(path, max_rows=30000)) == 30000
    assert 2600 < len(read_table(path, max_rows=3000)) < 3400


def test_npz_gets_x_names_and_label(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((4, 2)), y=np.array([0, 1, 0, 0]))
    frame = read_table(tmp_path / "d.npz")
    assert list(frame.columns) == ["x0", "x1", "label"]
    features, labels = split_labels(frame, "label")
    assert list(features.columns) == ["x0", "x1"] and labels.tolist() == [0, 1, 0, 0]
    np.savez(tmp_path / "bad.npz", data=np.zeros(3))
    with pytest.raises(ValueError, match="needs an array named 'X'"):
        read_table(tmp_path / "bad.npz")


def test_labels_with_gaps_are_refused():
    with pytest.raises(ValueError, match="has missing values"):
        split_labels(pd.DataFrame({"a": [1, 2], "y": [1, None]}), "y")
