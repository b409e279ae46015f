"""Warm starts (issue 14 at 1,129 features): the next fit starts from the previous model, each stable fold
from its own previous model; the result is the same optimum, reached in fewer L-BFGS iterations."""

from __future__ import annotations

import numpy as np
import pytest

from aldesk.learning import models
from aldesk.learning.models import fit_model, from_arrays, stable_folds

from .conftest import make_pool


def _noisy_pool(n=1500, d=40, n_classes=3, seed=1):
    rng = np.random.default_rng(seed)
    X, y = make_pool(n=n, d=d, n_classes=n_classes, seed=seed)
    X = (X + rng.normal(0, 1.5, X.shape)).astype(np.float32)  # overlapping: the optimum is not at infinity
    return X, y


@pytest.fixture
def iterations(monkeypatch):
    """L-BFGS iterations of every logistic fit, in order."""
    from sklearn.linear_model import LogisticRegression

    seen: list[int] = []
    fit = LogisticRegression.fit

    def counting(self, *args, **kwargs):
        out = fit(self, *args, **kwargs)
        seen.append(int(np.max(self.n_iter_)))
        return out

    monkeypatch.setattr(LogisticRegression, "fit", counting)
    return seen


def test_stable_folds_keep_a_scan_in_its_fold_and_spread_ids_evenly():
    ids = np.arange(1, 30_001)
    folds = stable_folds(ids, 3)
    assert folds.min() == 0 and folds.max() == 2
    assert np.all(np.abs(np.bincount(folds) / len(ids) - 1 / 3) < 0.01)
    assert np.array_equal(stable_folds(ids[::-1], 3), folds[::-1])  # by id, not by position
    assert np.array_equal(stable_folds(ids[5000:], 3), folds[5000:])  # more scans move no scan


@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_warm_started_fit_reaches_the_cold_optimum_in_fewer_iterations(n_classes, iterations):
    X, y = _noisy_pool(n_classes=n_classes)
    groups = stable_folds(np.arange(len(y)) + 7, 3)
    before = fit_model(X[:-20], y[:-20], n_classes=n_classes, C=0.1, folds=3, random_state=0, groups=groups[:-20])
    assert len(before.fold_models_) == 3
    iterations.clear()
    cold = fit_model(X, y, n_classes=n_classes, C=0.1, folds=3, random_state=0, groups=groups)
    cold_iterations = list(iterations)
    iterations.clear()
    warm = fit_model(X, y, n_classes=n_classes, C=0.1, folds=3, random_state=0, groups=groups,
                     start=from_arrays(before.to_arrays()))  # as the app does: from the stored arrays
    warm_iterations = list(iterations)
    assert len(cold_iterations) == len(warm_iterations) == 4  # the final fit and 3 folds
    assert sum(warm_iterations) < 0.6 * sum(cold_iterations)
    assert warm_iterations[0] < cold_iterations[0] and max(warm_iterations[1:]) < max(cold_iterations[1:])
    # the same optimum, up to L-BFGS's own tolerance (a cold fit is no closer to it than that)
    scale = np.abs(cold.coef_).max()
    np.testing.assert_allclose(warm.coef_, cold.coef_, atol=0.01 * scale)
    np.testing.assert_allclose(warm.oof_logits_, cold.oof_logits_, rtol=0.02, atol=0.05)
    np.testing.assert_allclose(warm.decision_logits(X), cold.decision_logits(X), rtol=0.02, atol=0.05)


def test_a_stable_fold_model_never_saw_its_own_fold():
    X, y = _noisy_pool(n=600)
    groups = stable_folds(np.arange(len(y)), 3)
    model = fit_model(X, y, n_classes=3, C=0.1, folds=3, random_state=0, groups=groups)
    for k, fold in enumerate(model.fold_models_):
        alone = fit_model(X[groups != k], y[groups != k], n_classes=3, C=0.1, calibrate=False, random_state=0)
        np.testing.assert_allclose(fold.decision_logits(X), alone.decision_logits(X), rtol=0.02, atol=0.05)
        # and its logits are the out-of-fold logits of that fold's rows
        np.testing.assert_allclose(model.oof_logits_[groups == k], fold.decision_logits(X[groups == k]), atol=1e-5)


def test_fold_models_are_stored_as_arrays_and_used_only_for_the_same_folds(monkeypatch):
    X, y = _noisy_pool(n=600)
    five = fit_model(X, y, n_classes=3, C=0.1, folds=5, random_state=0, groups=stable_folds(np.arange(600), 5))
    arrays = five.to_arrays()
    assert arrays["fold_w"].shape == (5, X.shape[1], 3) and arrays["fold_w"].dtype == np.float32
    again = from_arrays(arrays)
    assert len(again.fold_models_) == 5
    np.testing.assert_allclose(again.fold_models_[2].decision_logits(X), five.fold_models_[2].decision_logits(X),
                               atol=1e-4)
    starts: list = []
    real = models._fit_estimator
    monkeypatch.setattr(models, "_fit_estimator", lambda *a, **k: starts.append(a[8] if len(a) > 8 else k.get("start"))
                        or real(*a, **k))
    # a 3-fold retrain after a 5-fold one: fold k of 3 is not fold k of 5, so no fold starts from them
    fit_model(X, y, n_classes=3, C=0.1, folds=3, random_state=0, groups=stable_folds(np.arange(600), 3), start=again)
    assert starts[0] is again and all(s is not None and s not in again.fold_models_ for s in starts[1:])


def test_without_groups_the_folds_are_stratified_and_no_fold_models_are_kept():
    X, y = _noisy_pool(n=300)
    model = fit_model(X, y, n_classes=3, C=0.1, folds=3, random_state=0)
    assert model.fold_models_ == [] and "fold_w" not in model.to_arrays()


def test_groups_whose_folds_miss_a_class_fall_back_to_stratified_folds():
    X, y = _noisy_pool(n=300)
    groups = np.where(y == 2, 0, 1)  # fold 0's training rows would hold no scan of class 2
    model = fit_model(X, y, n_classes=3, C=0.1, folds=2, random_state=0, groups=groups)
    assert model.fold_models_ == [] and np.isfinite(model.oof_logits_).all()
