"""Registry, cold-start fallback, rare-class weighting, and the approximations behind EER and BALD."""

from __future__ import annotations

import numpy as np
import pytest

from aldesk.errors import LearningError
from aldesk.learning.base import UNLABELLED
from aldesk.learning.committee import fit_committee
from aldesk.learning.expected import ExpectedErrorReduction
from aldesk.learning.laplace import logits_from, model_hessian, weight_matrix, with_bias
from aldesk.learning.models import fit_model
from aldesk.learning.strategies import DEFAULT_STRATEGY, STRATEGY_NAMES, get_strategy

from .conftest import make_pool, partially_labelled

NAMES = ["normal", "pneumonia"]


def test_registry_names_are_the_contract():
    assert STRATEGY_NAMES == ("random", "least_confidence", "margin", "entropy", "qbc_vote_entropy", "qbc_kl",
                              "bald", "coreset", "badge", "eer", "emc", "hybrid", "cold_start")
    assert DEFAULT_STRATEGY == "hybrid"


def test_unknown_strategy():
    with pytest.raises(LearningError, match=r"unknown strategy 'smart'; choose one of random, least_confidence, "
                                            r"margin, .*, hybrid, cold_start"):
        get_strategy("smart")


def test_unknown_parameter():
    with pytest.raises(LearningError, match=r"strategy 'coreset' takes no parameter 'favour_rare'; "
                                            r"it takes no parameters"):
        get_strategy("coreset", favour_rare=True)
    with pytest.raises(LearningError, match=r"strategy 'hybrid' takes no parameter 'pool'; it takes uncertainty, "):
        get_strategy("hybrid", pool=3)


@pytest.mark.parametrize("name, params, message", [
    ("hybrid", {"pool_factor": 0}, r"pool_factor == 0, must be an int >= 1"),
    ("hybrid", {"diversity": "dpp"}, r"diversity == 'dpp'; choose 'kmeans' or 'kcenter'"),
    ("entropy", {"estimator": "svm"}, r"estimator == 'svm'; choose one of logistic"),
    ("eer", {"loss": "hinge"}, r"loss == 'hinge'; choose 'zero_one' or 'log'"),
    ("bald", {"n_samples": 1}, r"n_samples == 1, must be an int >= 2"),
])
def test_parameters_are_checked_at_call_time(name, params, message, pool):
    X, _, y = pool
    strategy = get_strategy(name, **params)  # storing is fine ...
    with pytest.raises(LearningError, match=message):  # ... using is not
        strategy.query(X, y, n_classes=3, random_state=0)


@pytest.mark.parametrize("name", ["hybrid", "entropy", "margin", "least_confidence", "badge", "bald",
                                  "qbc_vote_entropy", "eer", "emc"])
def test_model_strategies_fall_back_to_cold_start_and_say_why(name):
    X, y_true = make_pool(n=60, n_classes=2)
    y = np.full(len(X), UNLABELLED)
    y[np.flatnonzero(y_true == 0)[:3]] = 0
    result = get_strategy(name, class_names=NAMES).query(X, y, batch_size=4, random_state=0, n_classes=2)
    assert result.strategy == "cold_start"
    assert result.details["requested"] == name
    assert all(r.startswith("model not trained yet (class 'pneumonia' has 0 labels): typical and diverse scan, "
                            "cluster ") for r in result.reasons)
    assert "cluster 3 of 4" in result.reasons[2]


def test_cold_start_prefers_big_clusters_and_unlabelled_regions():
    rng = np.random.default_rng(0)
    big = rng.normal([0, 0], 0.3, size=(200, 2))
    small = rng.normal([8, 8], 0.3, size=(20, 2))
    covered = rng.normal([-8, 8], 0.3, size=(100, 2))
    X = np.vstack([big, small, covered]).astype(np.float32)
    y = np.full(len(X), UNLABELLED)
    y[220:223] = 0  # the third blob is already labelled
    result = get_strategy("cold_start").query(X, y, batch_size=3, random_state=0)
    firsts = X[result.indices]
    assert np.linalg.norm(firsts[0]) < 1.5  # the biggest kind of scan first, and a typical one of it
    assert np.linalg.norm(firsts[-1] - [-8, 8]) < 1.5  # the already-labelled kind last
    assert "(200 similar scans)" in result.reasons[0]


def test_favour_rare_moves_likely_rare_scans_up():
    X, y_true = make_pool(n=300, d=4, n_classes=2, seed=5)
    rare = np.flatnonzero(y_true == 1)
    y = np.full(len(X), UNLABELLED)
    y[np.flatnonzero(y_true == 0)[:40]] = 0
    y[rare[:2]] = 1
    plain = get_strategy("entropy").query(X, y, batch_size=10, random_state=0, n_classes=2)
    rare_first = get_strategy("entropy", favour_rare=True).query(X, y, batch_size=10, random_state=0, n_classes=2)
    assert np.isin(rare_first.indices, rare).sum() >= np.isin(plain.indices, rare).sum()
    assert "(rare class, weight x" in rare_first.reasons[0]
    hybrid = get_strategy("hybrid", favour_rare=True, class_names=NAMES).query(X, y, batch_size=5, random_state=0,
                                                                              n_classes=2)
    assert "predicted 'pneumonia'" in hybrid.reasons[0] or "predicted 'normal'" in hybrid.reasons[0]


def test_reasons_read_like_the_examples(pool):
    X, _, y = pool
    hybrid = get_strategy("hybrid").query(X, y, batch_size=3, random_state=0, n_classes=3)
    assert hybrid.reasons[0].startswith("margin score ")
    assert "most uncertain" in hybrid.reasons[0] and "labelled scans" in hybrid.reasons[0]
    assert "labels are still few (4.0 per class): typical scans come first" in hybrid.reasons[0]
    warm = get_strategy("hybrid", warm_per_class=0).query(X, y, batch_size=3, random_state=0, n_classes=3)
    assert "still few" not in warm.reasons[0]
    entropy = get_strategy("entropy").query(X, y, batch_size=3, random_state=0, n_classes=3)
    assert entropy.reasons[2].split(", ")[1].startswith("3rd most uncertain of ")


def test_eer_newton_step_tracks_real_retraining():
    X, y_true = make_pool(n=120, d=3, n_classes=3, seed=6)
    lab = np.flatnonzero(partially_labelled(y_true, per_class=10, seed=6) != UNLABELLED)
    model = fit_model(X[lab], y_true[lab], n_classes=3, calibrate=False, C=1.0)
    H = model_hessian(model, X[lab], y_true[lab])
    W = weight_matrix(model)
    Zall = with_bias(model.standardise(X))
    new_i, new_k = int(np.setdiff1d(np.arange(120), lab)[0]), 2
    # one Newton step for adding (x_new, class 2), as ExpectedErrorReduction does it
    counts = np.bincount(y_true[lab], minlength=3)
    s_k = len(lab) / (3 * counts[new_k])
    p = np.exp(logits_from(Zall[new_i:new_i + 1], W))[0]
    p /= p.sum()
    g = s_k * np.outer(p - np.eye(3)[new_k], Zall[new_i]).reshape(-1)
    W_step = W - np.linalg.solve(H, g).reshape(W.shape)
    refit = fit_model(np.vstack([X[lab], X[new_i:new_i + 1]]), np.r_[y_true[lab], new_k], n_classes=3,
                      calibrate=False, C=1.0)
    change_newton = logits_from(Zall, W_step) - logits_from(Zall, W)
    change_refit = refit.decision_logits(X) - model.decision_logits(X)
    centred = lambda z: z - z.mean(axis=1, keepdims=True)  # softmax ignores a shift shared by all classes
    corr = np.corrcoef(centred(change_newton).ravel(), centred(change_refit).ravel())[0, 1]
    assert corr > 0.95


def test_eer_reports_its_samples(pool):
    X, _, y = pool
    result = ExpectedErrorReduction(n_candidates=30, n_evaluation=25).query(X, y, batch_size=3, random_state=0,
                                                                           n_classes=3)
    assert result.details["sampled_candidates"] == 30 and result.details["evaluation_scans"] == 25
    assert "on 25 unlabelled scans" in result.reasons[0]


def test_bald_uses_the_laplace_posterior_for_logistic_and_a_committee_otherwise(pool):
    X, _, y = pool
    bald = get_strategy("bald").query(X, y, batch_size=5, random_state=0, n_classes=3)
    assert bald.details["committee"] == "logistic (Laplace posterior)" and bald.details["n_members"] == 20
    lab = y != UNLABELLED
    committee = fit_committee(X[lab], y[lab], n_classes=3, n_members=4, random_state=0)
    given = get_strategy("bald").query(X, y, batch_size=5, random_state=0, n_classes=3, model=committee)
    kl = get_strategy("qbc_kl").query(X, y, batch_size=5, random_state=0, n_classes=3, model=committee)
    np.testing.assert_array_equal(given.indices, kl.indices)  # the same committee: the same information


def test_a_model_for_other_classes_is_refused(pool):
    X, _, y = pool
    lab = y != UNLABELLED
    binary = fit_model(X[lab], (y[lab] > 0).astype(int), n_classes=2)
    with pytest.raises(LearningError, match=r"model predicts 2 classes but n_classes == 3; retrain the model"):
        get_strategy("entropy").query(X, y, n_classes=3, model=binary)
