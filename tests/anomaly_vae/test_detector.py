import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from anomaly_vae import VAEDetector
from tests.conftest import TINY, mixed_frame
from tests.quality import QUALITY, isolation_forest_scores, mahalanobis_scores, manifold_frame

SCORE_COLUMNS = ["neg_elbo", "reconstruction_nll", "kl", "neg_log_likelihood", "p_value", "is_outlier"]


def test_init_only_stores_and_clone_round_trips():
    detector = VAEDetector(latent_dim=3, hidden=(8,), random_state=7, categorical_columns=["a"])
    params = detector.get_params()
    assert params["latent_dim"] == 3 and params["hidden"] == (8,)
    assert clone(detector).get_params() == params
    assert not hasattr(VAEDetector(default_score="nonsense"), "model_")  # validation happens in fit
    with pytest.raises(TypeError):
        VAEDetector(3)  # keyword-only


def test_unfitted_detector_refuses_to_score():
    with pytest.raises(NotFittedError):
        VAEDetector().decision_function(np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"default_score": "kl"}, "default_score must be one of"),
        ({"fpr": 1.5}, r"fpr must be in \(0, 1\), got: 1.5"),
        ({"contamination": 0.7}, r"contamination must be in \[0, 0.5\), got: 0.7"),
        ({"max_steps": 0}, "max_steps must be a positive integer"),
        ({"latent_dim": -1}, "latent_dim must be a positive integer"),
    ],
)
def test_bad_parameters_are_reported_by_fit(params, message):
    with pytest.raises(ValueError, match=message):
        VAEDetector(**params).fit(np.zeros((50, 2)))


def test_score_frame_has_the_design_columns(fitted, train_frame):
    scores = fitted.score_frame(train_frame.head(50), contributions=True)
    assert scores.columns[: len(SCORE_COLUMNS)].tolist() == [*SCORE_COLUMNS[:4], "p_value", "p_value_neg_elbo"]
    assert set(SCORE_COLUMNS) <= set(scores.columns)
    assert scores["is_outlier"].dtype == bool
    np.testing.assert_allclose(scores["neg_elbo"], scores["reconstruction_nll"] + scores["kl"], rtol=1e-6)
    contributions = scores[[f"contribution_{c}" for c in train_frame.columns]]
    np.testing.assert_allclose(contributions.sum(axis=1), scores["reconstruction_nll"], rtol=1e-5)
    assert (scores["p_value"].between(0, 1)).all() and (scores["kl"] >= 0).all()


def test_score_valid_sets_bad_rows_aside_and_scores_the_rest_as_score_columns(fitted, train_frame):
    frame = train_frame.head(40).astype({"amount": object})
    frame.loc[3, "amount"] = "lots"
    frame.loc[17, "duration"] = np.inf
    scores, reasons = fitted.score_valid(frame, fpr=0.2, contributions=True)
    assert reasons.index.tolist() == [3, 17]
    assert "column 'amount': expected a number" in reasons[3] and "column 'duration': infinite" in reasons[17]
    expected = fitted.score_columns(frame.drop(index=[3, 17]), fpr=0.2, contributions=True)
    assert scores.keys() == expected.keys()
    for name in expected:
        np.testing.assert_allclose(scores[name], expected[name], rtol=1e-6, err_msg=name)
    nothing, every = fitted.score_valid(frame.assign(duration=np.inf))
    assert len(every) == 40 and all(len(values) == 0 for values in nothing.values())


def test_score_directions_agree(fitted, train_frame):
    rows = train_frame.head(20)
    decision = fitted.decision_function(rows)
    np.testing.assert_array_equal(fitted.score_samples(rows), -decision)
    np.testing.assert_array_equal(decision, fitted.score_frame(rows)["neg_log_likelihood"].to_numpy())
    proba = fitted.predict_proba(rows)
    assert proba.shape == (20, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert fitted.score(rows) == pytest.approx(-decision.mean())


def test_fpr_is_chosen_at_scoring_time(fitted, train_frame):
    strict, loose = fitted.predict(train_frame, fpr=0.001), fitted.predict(train_frame, fpr=0.2)
    assert strict.sum() < loose.sum()
    assert fitted.thresholds(0.2)["neg_elbo"] < fitted.thresholds(0.01)["neg_elbo"]
    frame = fitted.score_frame(train_frame, fpr=0.2)
    assert (frame["is_outlier"] == (frame["p_value"] <= 0.2)).all()


def test_scores_are_deterministic_and_independent_of_the_batch(fitted, train_frame):
    rows = train_frame.head(64)
    first, second = fitted.score_frame(rows, contributions=True), fitted.score_frame(rows, contributions=True)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    alone = fitted.score_frame(rows.iloc[[5]])
    np.testing.assert_allclose(alone.iloc[0, :4].astype(float), first.iloc[5, :4].astype(float), rtol=1e-5)


def test_same_seed_trains_the_same_model(train_frame):
    params = {**TINY, "max_steps": 60, "random_state": 3}
    a = VAEDetector(**params).fit(train_frame).decision_function(train_frame.head(30))
    b = VAEDetector(**params).fit(train_frame).decision_function(train_frame.head(30))
    np.testing.assert_array_equal(a, b)
    other = VAEDetector(**{**params, "random_state": 4}).fit(train_frame).decision_function(train_frame.head(30))
    assert not np.array_equal(a, other)  # the seed reaches the model


def test_fit_leaves_the_global_generators_alone(train_frame):
    torch.manual_seed(123)
    np.random.seed(123)
    expected_torch, expected_numpy = torch.rand(5), np.random.rand(5)
    torch.manual_seed(123)
    np.random.seed(123)
    VAEDetector(**{**TINY, "max_steps": 60, "random_state": 3}).fit(train_frame)
    torch.testing.assert_close(torch.rand(5), expected_torch, rtol=0, atol=0)  # the draws a user's code expects
    np.testing.assert_array_equal(np.random.rand(5), expected_numpy)


def test_save_load_gives_bit_identical_scores(fitted, train_frame, tmp_path):
    fitted.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["model.json", "weights.safetensors"]
    loaded = VAEDetector.load(tmp_path / "model")
    rows = train_frame.head(100)
    pd.testing.assert_frame_equal(
        fitted.score_frame(rows, contributions=True), loaded.score_frame(rows, contributions=True), check_exact=True
    )
    assert loaded.get_params() == fitted.get_params()
    assert loaded.threshold_ == fitted.threshold_


def test_save_refuses_to_overwrite_a_foreign_folder(fitted, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        fitted.save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_load_rejects_a_folder_without_model_files(tmp_path):
    with pytest.raises(ValueError, match="not a model folder"):
        VAEDetector.load(tmp_path)


def test_scoring_errors_name_the_column(fitted, train_frame):
    rows = train_frame.head(3).copy()
    with pytest.raises(ValueError, match=r"missing column\(s\): \['tier'\]"):
        fitted.score_frame(rows.drop(columns="tier"))
    bad = rows.astype({"amount": object})
    bad.loc[bad.index[1], "amount"] = "lots"
    with pytest.raises(ValueError, match="column 'amount': expected a number"):
        fitted.decision_function(bad)
    with pytest.raises(ValueError, match="X has no rows"):
        fitted.decision_function(rows.iloc[:0])


def test_unseen_category_and_missing_values_are_scored(fitted, train_frame):
    rows = train_frame.head(5).copy()
    rows = rows.astype({"tier": object, "flagged": object})
    rows.loc[rows.index[0], "tier"] = "platinum"  # never seen in training
    rows.loc[rows.index[1], ["amount", "flagged", "tier"]] = [np.nan, None, None]
    scores = fitted.score_frame(rows, contributions=True)
    assert np.isfinite(scores[["neg_elbo", "neg_log_likelihood"]].to_numpy()).all()
    assert scores.loc[rows.index[0], "contribution_tier"] > scores.loc[rows.index[2:], "contribution_tier"].max()


def test_numpy_input_uses_x_names():
    X = np.random.default_rng(0).normal(size=(300, 3))
    detector = VAEDetector(random_state=0, **{**TINY, "max_steps": 50}).fit(X)
    assert detector.feature_names_in_.tolist() == ["x0", "x1", "x2"] and detector.n_features_in_ == 3
    with pytest.raises(ValueError, match="X has 2 features"):
        detector.predict(X[:, :2])


def test_a_fit_on_20_rows_works_and_fewer_are_refused_naming_the_minimum():
    X = np.random.default_rng(0).normal(size=(20, 3))
    for seed in range(8):  # for random_state 4 and 5 the plain draw gives no validation row
        detector = VAEDetector(random_state=seed, **{**TINY, "max_steps": 20}).fit(X)
        assert np.isfinite(detector.decision_function(X)).all() and detector.calibration_.size >= 1
    with pytest.raises(ValueError, match=r"fit needs at least 20 rows .*, got n_samples=19"):
        VAEDetector(random_state=0).fit(X[:19])
    with pytest.raises(ValueError, match=r"X has 2 distinct rows; at least 3 are needed .*calibration\)"):
        VAEDetector(random_state=0, calibration="split").fit(np.tile(X[:2], (10, 1)))
    with pytest.raises(ValueError, match=r"X has 1 distinct rows; at least 2 are needed .*validation\)"):
        VAEDetector(random_state=0).fit(np.tile(X[:1], (20, 1)))  # out-of-bag: no calibration part


def test_nan_loss_raises_a_clear_error():
    X = np.random.default_rng(0).normal(size=(300, 3))
    with pytest.raises(FloatingPointError, match="training loss is nan"):
        VAEDetector(random_state=0, learning_rate=1e30, **{**TINY, "max_steps": 100}).fit(X)


def test_false_positive_rate_matches_the_target_on_fresh_normal_data(fitted):
    fresh, _ = mixed_frame(20000, seed=1)
    rate = fitted.predict(fresh, fpr=0.01).mean()
    assert 0.005 <= rate <= 0.02
    p_values = fitted.score_frame(fresh)["p_value"]
    assert 0.07 <= (p_values <= 0.1).mean() <= 0.13  # uniform in the middle too


@pytest.mark.usefixtures("one_torch_thread")
def test_anomalies_that_break_a_dependence_are_found_better_than_by_the_baselines():
    # mixed_frame's relations are linear: there a Mahalanobis distance on one-hot columns (log amount)
    # reaches 0.961 AUROC, the default detector 0.958. Here they are curved, which a density model learns
    train, test, labels = manifold_frame(2000, seed=0)[0], *manifold_frame(2000, seed=100, n_anomalies=100)
    detector = VAEDetector(random_state=0, **QUALITY).fit(train)
    auroc = roc_auc_score(labels, detector.decision_function(test))
    mahalanobis = roc_auc_score(labels, mahalanobis_scores(train, test))
    forest = roc_auc_score(labels, isolation_forest_scores(train, test))
    # measured 0.829 against 0.775 and 0.687; over data and model seeds 0-7 the margin over the better
    # baseline was 0.029 to 0.094
    assert auroc >= max(mahalanobis, forest) + 0.02, (auroc, mahalanobis, forest)


def test_an_ensemble_averages_its_members(train_frame, tmp_path):
    rows = train_frame.head(50)
    params = {**TINY, "max_steps": 100, "random_state": 1}
    ensemble = VAEDetector(n_members=3, **params).fit(train_frame)
    scores = ensemble.score_frame(rows, contributions=True)
    np.testing.assert_allclose(scores["neg_elbo"], scores["reconstruction_nll"] + scores["kl"], rtol=1e-6)
    assert ensemble.model_.raw_sigma.shape == (3, 4)  # one scale per member and numeric column
    ensemble.save(tmp_path / "ensemble")
    again = VAEDetector.load(tmp_path / "ensemble").score_frame(rows, contributions=True)
    pd.testing.assert_frame_equal(scores, again, check_exact=True)


def test_a_mapping_of_columns_scores_like_the_frame(fitted, train_frame):
    rows = train_frame.head(20)
    columns = {name: rows[name].to_numpy(dtype=object) for name in rows.columns}  # e.g. built from JSON
    by_mapping = fitted.score_columns(columns, contributions=True)
    by_frame = fitted.score_frame(rows, contributions=True)
    for name, values in by_mapping.items():
        np.testing.assert_allclose(values.astype(float), by_frame[name].to_numpy(dtype=float), rtol=1e-6)
    with pytest.raises(ValueError, match="columns have different lengths"):
        fitted.score_columns({**columns, "amount": columns["amount"][:3]})


def test_input_the_model_never_saw_is_scored_and_counted(fitted, train_frame):
    never_missing = [c.name for c in fitted.schema_.columns if c.missing_rate == 0 and c.kind != "categorical"]
    categorical = next(c.name for c in fitted.schema_.columns if c.kind == "categorical")
    rows = train_frame.head(4).copy()
    rows.loc[rows.index[1], never_missing[0]] = np.nan
    rows.loc[rows.index[2], categorical] = "never seen"
    rows.loc[rows.index[3], categorical] = (
        fitted.schema_.columns[[c.name for c in fitted.schema_.columns].index(categorical)].categories[0].upper()
    )
    scores = fitted.score_frame(rows)
    assert scores["missing_unseen"].tolist() == [0, 1, 0, 0]
    assert scores["unknown_categories"].tolist() == [0, 0, 1, 1]  # "MALE" is not "male"
    assert np.isfinite(scores["neg_log_likelihood"]).all()


def test_a_count_column_is_scored_by_the_probability_of_its_value(fitted, train_frame):
    steps = {c.name: c.step for c in fitted.schema_.columns}
    assert steps == {
        "amount": 0.0,
        "duration": 0.0,
        "load": 0.0,
        "count": 1.0,
        "channel": 0.0,
        "tier": 0.0,
        "flagged": 0.0,
    }
    frame = fitted.score_frame(train_frame.head(500), contributions=True)
    assert (frame["contribution_count"] >= 0).all()  # -log of a probability (a density's can be negative)
