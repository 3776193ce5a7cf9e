import numpy as np
import pandas as pd
import pytest

from anomaly_vae.tabular.scaling import SOFT_CLIP, robust_center_scale, soft_clip
from anomaly_vae.tabular.schema import ColumnWarning, TabularSchema
from anomaly_vae.tabular.validation import frame_from_input


def test_kinds_are_inferred_from_dtypes():
    frame = pd.DataFrame(
        {
            "n": [1.0, 2.0, np.nan],
            "i": [1, 2, 3],
            "s": ["a", "b", None],
            "c": pd.Categorical(["x", "y", "x"]),
            "b": [True, False, True],
            "ob": pd.Series([True, None, False], dtype=object),
        }
    )
    schema = TabularSchema.fit(frame, categorical_columns=["i"])
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {
        "n": "numeric",
        "i": "categorical",
        "s": "categorical",
        "c": "categorical",
        "b": "boolean",
        "ob": "boolean",
    }
    assert schema.feature_order == ["n", "i", "s", "c", "b", "ob"]


def test_encoding_marks_missing_and_unknown():
    train = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0, 4.0], "color": ["red", "red", "blue", None], "ok": [True, False, True, False]}
    )
    schema = TabularSchema.fit(train)
    batch = schema.encode(pd.DataFrame({"x": [np.nan, 2.5], "color": ["green", None], "ok": [None, True]}))
    assert np.isnan(batch.numeric[0, 0]) and np.isfinite(batch.numeric[1, 0])
    assert batch.categorical[:, 0].tolist() == [0, -1]  # unseen -> unknown bucket 0, missing -> -1
    assert np.isnan(batch.boolean[0, 0]) and batch.boolean[1, 0] == 1.0
    assert schema.of_kind("categorical")[0].categories == ["red", "blue"]  # most frequent first


def test_robust_scale_survives_constant_and_heavy_tailed_columns():
    assert robust_center_scale(np.full(100, 7.0)) == (7.0, 1.0)
    mostly_zero = np.r_[np.zeros(95), np.arange(1, 6)]
    center, scale = robust_center_scale(mostly_zero)
    assert center == 0.0 and scale > 0  # IQR and MAD are 0: falls back to the standard deviation
    tail = np.r_[np.random.default_rng(0).normal(size=1000), 1e9]
    assert robust_center_scale(tail)[1] < 2.0  # one huge value does not blow the scale up


def test_soft_clip_is_monotone_identity_in_the_core():
    x = np.linspace(-1e6, 1e6, 10001)
    y = soft_clip(x)
    assert np.all(np.diff(y) > 0)
    core = np.linspace(-SOFT_CLIP, SOFT_CLIP, 11)
    np.testing.assert_array_equal(soft_clip(core), core)
    assert np.isnan(soft_clip(np.array([np.nan]))[0])


@pytest.fixture()
def schema():
    return TabularSchema.fit(pd.DataFrame({"x": [1.0, 2.0, 3.0], "flag": [True, False, True], "k": ["a", "b", "a"]}))


def test_missing_and_unknown_columns_are_named(schema):
    with pytest.raises(ValueError, match=r"missing column\(s\): \['flag'\]"):
        schema.encode(pd.DataFrame({"x": [1.0], "k": ["a"]}))
    with pytest.raises(ValueError, match=r"unknown column\(s\).*\['extra'\]"):
        schema.encode(pd.DataFrame({"x": [1.0], "flag": [True], "k": ["a"], "extra": [1]}))


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("x", [1.0, np.inf], r"row 1: column 'x': infinite value"),
        ("x", [1.0, 10**400], r"row 1: column 'x': infinite value"),  # an integer beyond float range
        ("x", ["a", 10**400], r"row 0: column 'x': expected a number, got str \(1 more bad rows\)"),
        ("x", ["1.5", "abc"], r"row 1: column 'x': expected a number, got str"),
        ("x", [1.0, True], r"row 1: column 'x': expected a number, got bool"),
        ("flag", [True, "maybe"], r"row 1: column 'flag': expected a boolean"),
    ],
)
def test_bad_values_name_column_and_row(schema, column, values, message):
    frame = pd.DataFrame({"x": [1.0, 2.0], "flag": [True, False], "k": ["a", "b"]})
    frame[column] = pd.Series(values, dtype=object)
    with pytest.raises(ValueError, match=message):
        schema.encode(frame)


def test_invalid_rows_lists_every_bad_row(schema):
    frame = pd.DataFrame(
        {"x": pd.Series([1.0, "x", np.inf, 4.0], dtype=object), "flag": [True, 2, True, None], "k": "a"}
    )
    reasons = schema.invalid_rows(frame)
    assert reasons.index.tolist() == [1, 2]
    assert "column 'x'" in reasons[1] and "infinite" in reasons[2]


def test_numeric_strings_are_accepted(schema):
    frame = pd.DataFrame({"x": ["1.5", None], "flag": [1, 0], "k": ["a", "zzz"]})
    batch = schema.encode(frame)
    assert np.isfinite(batch.numeric[0, 0]) and np.isnan(batch.numeric[1, 0])


def test_arrays_get_x_names_and_shape_is_checked():
    assert list(frame_from_input(np.zeros((2, 3))).columns) == ["x0", "x1", "x2"]
    with pytest.raises(ValueError, match="X has 2 features, but the model was fitted with 3"):
        frame_from_input(np.zeros((1, 2)), feature_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="expected a 2-D array"):
        frame_from_input(np.zeros(3))


def test_schema_round_trips_through_dict(schema):
    again = TabularSchema.from_dict(schema.to_dict())
    frame = pd.DataFrame({"x": [0.5], "flag": [False], "k": ["b"]})
    a, b = schema.encode(frame), again.encode(frame)
    np.testing.assert_array_equal(a.numeric, b.numeric)
    np.testing.assert_array_equal(a.categorical, b.categorical)


def test_integer_categories_survive_a_float_column():
    schema = TabularSchema.fit(pd.DataFrame({"zip": [10115, 10117, 10115]}), categorical_columns=["zip"])
    batch = schema.encode(pd.DataFrame({"zip": [10117.0, np.nan, 99999.0]}))  # as read from a CSV with gaps
    assert batch.categorical[:, 0].tolist() == [2, -1, 0]


def test_identifier_and_constant_columns_warn_naming_the_column_and_how_to_drop_it():
    n = 60
    frame = pd.DataFrame(
        {
            "user_id": [f"u{i:04d}" for i in range(n)],
            "row_number": np.arange(n),
            "site": ["berlin"] * n,
            "amount": np.random.default_rng(0).normal(size=n),  # distinct floats are ordinary
            "kind": ["a", "b", "c"] * (n // 3),
        }
    )
    with pytest.warns(ColumnWarning) as caught:
        TabularSchema.fit(frame)
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 3
    assert "'row_number' looks like an identifier (60 distinct values in 60 rows)" in messages[0]
    assert "'site' is constant" in messages[1] and "--drop-columns site" in messages[1]
    assert "'user_id' looks like an identifier" in messages[2] and "--drop-columns user_id" in messages[2]


@pytest.mark.parametrize(
    ("values", "step"),
    [
        ([0, 1, 1, 0, 1], 1.0),  # a flag
        ([3, 0, 7, 12, 3, 1], 1.0),  # counts
        ([0.25, 1.5, 0.75, 2.0, 1.0], 0.25),  # a grid that does not start at 0 or 1
        ([10.01, 10.05, 9.99, 12.49], 0.02),  # amounts rounded to 2 decimals (smallest gap 0.02)
        ([0.12, 0.37, 0.91, 1.44], 0.0),  # measurements: no grid
        ([5, 5, 5], 0.0),  # one value
    ],
)
def test_numeric_columns_on_a_grid_get_its_step(values, step):
    column = TabularSchema.fit(pd.DataFrame({"x": values})).columns[0]
    assert column.step == pytest.approx(step)
    if step:  # the centre is a grid point, so decoding can put values back on the grid
        offsets = (np.array(values, dtype=float) - column.center) / step
        assert np.allclose(offsets, np.round(offsets))


def test_decode_puts_values_of_a_discrete_column_back_on_its_grid():
    schema = TabularSchema.fit(pd.DataFrame({"count": [0, 2, 3, 5, 8, 13], "length": [0.3, 1.7, 2.2, 0.9, 4.1, 3.3]}))
    encoded = schema.encode(pd.DataFrame({"count": [4, 6], "length": [1.0, 2.0]}))
    noisy = type(encoded)(encoded.numeric + np.float32(0.1), encoded.categorical, encoded.boolean)
    decoded = schema.decode(noisy)
    assert decoded["count"].tolist() == [4, 6]  # moved off the grid by the noise, snapped back
    assert not np.allclose(decoded["length"], [1.0, 2.0])  # a continuous column keeps what it is given
