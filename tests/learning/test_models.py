"""Models: the NotEnoughLabels message, calibration, plain-array storage, cross-validation, committees."""

from __future__ import annotations

import io

import numpy as np
import pytest

from aldesk.errors import LearningError, NotEnoughLabelsError
from aldesk.learning.calibration import TemperatureScaler, expected_calibration_error, softmax
from aldesk.learning.committee import fit_committee
from aldesk.learning.models import (
    MODEL_NAMES,
    LinearModel,
    cross_validate_model,
    fit_model,
    from_arrays,
    make_estimator,
)

from .conftest import make_pool

CLASSES = ["normal", "pneumonia", "tumour"]


def test_missing_class_message_names_it_and_says_what_to_do():
    X, y = make_pool(n=30, n_classes=3)
    keep = y != 1
    with pytest.raises(NotEnoughLabelsError, match=(
            r"^class 'pneumonia' has no label yet; label at least one scan of every class — until then "
            r"aldesk ranks with the cold-start strategy$")):
        fit_model(X[keep], y[keep], n_classes=3, class_names=CLASSES)


def test_missing_classes_plural_and_without_names():
    X, y = make_pool(n=30, n_classes=3)
    keep = y == 0
    with pytest.raises(NotEnoughLabelsError, match=r"^classes '1', '2' have no label yet"):
        fit_model(X[keep], y[keep], n_classes=3)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_classes": 1}, r"n_classes == 1, must be an int >= 2"),
    ({"n_classes": 3, "name": "svm"}, r"unknown model 'svm'; choose one of logistic, random_forest"),
    ({"n_classes": 2}, r"y contains 2; only labelled rows with classes 0..1 can be fitted"),
])
def test_fit_model_bad_arguments(kwargs, message):
    X, y = make_pool(n=30, n_classes=3)
    with pytest.raises(LearningError, match=message):
        fit_model(X, y, **kwargs)


def test_fit_model_rejects_nan():
    X, y = make_pool(n=30, n_classes=3)
    X[3, 0] = np.inf
    with pytest.raises(LearningError, match=r"X contains NaN or infinity \(row 3\)"):
        fit_model(X, y, n_classes=3)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_predicts_every_class_column(name):
    X, y = make_pool(n=45, d=4, n_classes=3)
    model = fit_model(X, y, n_classes=3, name=name, random_state=0)
    p = model.predict_proba(X)
    assert p.shape == (45, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert model.n_labels_ == 45 and model.n_classes_ == 3
    assert model.calibration_ == "temperature" and 0 <= model.ece_ <= 1
    assert (model.predict(X) == y).mean() > 0.6
    make_estimator(name, 0)  # and an unfitted one can be had on its own


def test_few_labels_leave_the_model_uncalibrated():
    X, y = make_pool(n=12, n_classes=3)
    model = fit_model(X[:4], y[:4] % 2, n_classes=2)  # one label of some class: no out-of-fold estimate
    assert model.calibration_ == "none" and np.isnan(model.ece_)


def test_logistic_chooses_C_out_of_fold():
    X, y = make_pool(n=60, n_classes=3)
    model = fit_model(X, y, n_classes=3, random_state=0)
    assert set(model.cv_log_loss_) == {0.01, 0.1, 1.0}  # separable classes: the loss falls all the way
    assert model.C_ == min(model.cv_log_loss_, key=model.cv_log_loss_.get)


def _noisy_pool(n=240, d=40, seed=4):
    """Few informative directions among many noise ones, a third of the labels flipped: strong
    regularisation wins, so the loss rises from the smallest C on."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(0, 1, (n, d))
    X[:, 0] += 0.6 * (2 * y - 1)
    y = np.where(rng.random(n) < 0.33, 1 - y, y)
    return X.astype(np.float32), y.astype(np.int64)


@pytest.mark.parametrize("pool, weighted", [("separable", False), ("noisy", False), ("noisy", True)])
def test_select_C_matches_fitting_every_C_afresh(pool, weighted):
    """Warm starts and the stop at the first rise of the loss choose the C (and give the out-of-fold logits)
    that fitting every C of the grid from scratch gives."""
    from aldesk.learning.models import LOGISTIC_C_GRID, _balanced_log_loss, _oof_logits, select_C, single_threaded

    X, y = make_pool(n=90, n_classes=3) if pool == "separable" else _noisy_pool()
    k = int(y.max()) + 1
    w = np.random.default_rng(0).uniform(0.5, 1.0, len(y)) if weighted else None
    with single_threaded():
        best, logits, losses = select_C(X, y, n_classes=k, folds=3, sample_weight=w, random_state=7)
        ref_oof = {c: _oof_logits("logistic", X, y, k, w, 7, 3, c)[0] for c in LOGISTIC_C_GRID}
    ref = {c: _balanced_log_loss(ref_oof[c], y, k, w) for c in LOGISTIC_C_GRID}
    assert best == min(ref, key=ref.get)
    for c, loss in losses.items():
        assert loss == pytest.approx(ref[c], rel=0.01)  # the same optimum, to the solver's tolerance
    np.testing.assert_allclose(logits, ref_oof[best], rtol=0.02, atol=0.02)
    if pool == "noisy":  # the smallest C won: the largest (the slowest to fit) was never fitted
        assert best == 0.01 and set(losses) == {0.01, 0.1}


def test_ece_by_hand():
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    # bin 0.9: confidence 0.9, accuracy 0.5 -> gap 0.4 on half the scans; bin 0.6: 0.6 vs 1.0 -> 0.4
    assert expected_calibration_error(proba, y, n_bins=10) == pytest.approx(0.4)
    with pytest.raises(LearningError, match=r"proba has 4 rows but y has 3"):
        expected_calibration_error(proba, y[:3])


def test_temperature_scaling_fixes_overconfident_logits():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 1.5, size=(2000, 3))
    y = np.array([rng.choice(3, p=p) for p in softmax(true_logits)])
    over = 4.0 * true_logits  # the same ranking, four times too sure
    before = expected_calibration_error(softmax(over), y)
    scaler = TemperatureScaler().fit(over, y)
    after = expected_calibration_error(scaler.transform(over), y)
    assert scaler.temperature_ == pytest.approx(4.0, rel=0.15)
    assert after < before / 3


def test_calibration_lowers_ece_of_an_overconfident_model():
    rng = np.random.default_rng(1)
    X, y = make_pool(n=400, d=8, n_classes=2, seed=1)
    flip = rng.random(len(y)) < 0.25  # label noise: an unregularised model is far too sure
    y = np.where(flip, 1 - y, y)
    model = fit_model(X, y, n_classes=2, C=100.0, random_state=0)
    assert model.calibration_ == "temperature" and model.temperature_ > 1.0
    assert model.ece_ < model.ece_uncalibrated_


def test_large_label_sets_use_isotonic():
    X, y = make_pool(n=1200, d=4, n_classes=3, seed=2)
    model = fit_model(X, y, n_classes=3, random_state=0)
    assert model.calibration_ == "isotonic"
    assert model.ece_ < 0.1


@pytest.mark.parametrize("n, n_classes", [(60, 3), (60, 2), (1100, 2)])
def test_plain_array_round_trip_gives_identical_probabilities(n, n_classes):
    X, y = make_pool(n=n, d=5, n_classes=n_classes, seed=3)
    model = fit_model(X, y, n_classes=n_classes, random_state=0)
    arrays = model.to_arrays()
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with np.load(io.BytesIO(buf.getvalue()), allow_pickle=False) as npz:
        loaded = from_arrays({k: npz[k] for k in npz.files})
    assert isinstance(loaded, LinearModel)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.calibration_ == model.calibration_ and loaded.n_labels_ == n


def test_logistic_model_matches_scikit_learn():
    X, y = make_pool(n=80, d=5, n_classes=3, seed=4)
    model = fit_model(X, y, n_classes=3, calibrate=False, C=1.0)
    reference = make_estimator("logistic", C=1.0).fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-5)


def test_from_arrays_refuses_incomplete_arrays():
    X, y = make_pool(n=40, n_classes=2)
    arrays = fit_model(X, y, n_classes=2).to_arrays()
    del arrays["coef"]
    with pytest.raises(LearningError, match=r"stored model lacks array 'coef'; retrain the model"):
        from_arrays(arrays)


def test_cross_validation_reports_every_metric():
    X, y = make_pool(n=90, n_classes=3)
    out = cross_validate_model(X, y, n_classes=3, random_state=0)
    assert set(out) >= {"accuracy", "balanced_accuracy", "auc", "ece", "n_labels"}
    assert out["n_labels"] == 90 and 0.5 < out["accuracy"] <= 1 and 0.5 < out["auc"] <= 1
    binary = cross_validate_model(*make_pool(n=60, n_classes=2), n_classes=2, folds=3, random_state=0)
    assert 0.5 < binary["auc"] <= 1


def test_cross_validation_needs_two_labels_per_class():
    X, y = make_pool(n=30, n_classes=3)
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:1]]
    with pytest.raises(NotEnoughLabelsError, match=r"at least 2 labels of every class, but class 'tumour' has 1"):
        cross_validate_model(X[keep], y[keep], n_classes=3, class_names=CLASSES)


def test_committee_members():
    X, y = make_pool(n=60, n_classes=3)
    committee = fit_committee(X, y, n_classes=3, n_members=4, random_state=0)
    members = committee.member_proba(X[:7])
    assert members.shape == (4, 7, 3)
    assert not np.allclose(members[0], members[1])  # bootstrap members differ
    np.testing.assert_allclose(committee.predict_proba(X[:7]), members.mean(axis=0))
    with pytest.raises(LearningError, match=r"n_members == 1, must be an int >= 2"):
        fit_committee(X, y, n_classes=3, n_members=1)


def test_standardize_in_blocks_equals_the_whole_pool_formula():
    from aldesk.learning.base import standardize

    rng = np.random.default_rng(5)
    X = rng.normal(50.0, 3.0, (20_000, 4)).astype(np.float32)  # more rows than one block, a large mean
    X[:, 2] = 7.0                                                # a constant column
    Z = standardize(X)
    X64 = X.astype(np.float64)
    expected = (X64 - X64.mean(axis=0)) / np.where(X64.std(axis=0) < 1e-12, 1.0, X64.std(axis=0))
    assert Z.dtype == np.float32 and Z.shape == X.shape
    np.testing.assert_allclose(Z, expected, atol=1e-4)
    assert np.all(Z[:, 2] == 0.0)
