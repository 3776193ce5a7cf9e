import numpy as np
import pandas as pd
import pytest

from anomaly_vae.splitting import split_rows


def test_identical_rows_land_in_the_same_part():
    rng = np.random.default_rng(0)
    base = pd.DataFrame({"a": rng.normal(size=300), "b": rng.choice(["x", "y"], size=300)})
    frame = base.iloc[rng.integers(0, 300, size=1000)].reset_index(drop=True)  # bootstrap: many duplicates
    parts = split_rows(frame, (0.1, 0.2), seed=1)
    assert sorted(np.concatenate(parts).tolist()) == list(range(1000))
    keys = [set(map(tuple, frame.iloc[p].to_numpy().tolist())) for p in parts]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert 0.55 < len(parts[0]) / 1000 < 0.85


def test_split_is_seeded():
    frame = pd.DataFrame({"a": np.arange(500.0)})
    first, again, other = split_rows(frame, (0.2,), 3), split_rows(frame, (0.2,), 3), split_rows(frame, (0.2,), 4)
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_every_part_gets_rows_on_small_data():
    frame = pd.DataFrame({"a": np.arange(20.0)})
    for seed in range(50):  # the plain draw leaves a part empty for 6 of these seeds
        parts = split_rows(frame, (0.1, 0.2), seed)
        assert all(len(p) > 0 for p in parts), seed
        assert sorted(np.concatenate(parts).tolist()) == list(range(20))


def test_a_draw_without_empty_parts_is_kept_as_it_is():
    frame = pd.DataFrame({"a": np.arange(2000.0)})  # distinct rows: one group each
    rest, validation, calibration = split_rows(frame, (0.1, 0.2), seed=5)
    drawn = np.searchsorted([0.1, 0.3], np.random.default_rng(5).random(2000), side="right")
    assert [len(validation), len(calibration), len(rest)] == np.bincount(drawn).tolist()


def test_too_few_distinct_rows_are_named():
    frame = pd.DataFrame({"a": [1.0, 2.0] * 20})
    with pytest.raises(ValueError, match="X has 2 distinct rows; at least 3 are needed"):
        split_rows(frame, (0.1, 0.2), seed=0)
