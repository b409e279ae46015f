"""Objectives, class weighting that follows them, the ordinal model and its uncertainty, the pre-filter size."""

from __future__ import annotations

import numpy as np
import pytest

from aldesk.errors import LearningError
from aldesk.learning.base import UNLABELLED
from aldesk.learning.hybrid import prefilter_size, scheduled_fraction
from aldesk.learning.strategies import get_strategy
from aldesk.learning.models import fit_model
from aldesk.learning.objectives import (
    class_weighting,
    graded_prediction,
    objective_score,
    quadratic_kappa,
    score_all,
    sensitivity_at_specificity,
)
from aldesk.learning.ordinal import CumulativeLogit, grade_variance_scores
from aldesk.learning.simulation import simulate


def test_quadratic_kappa_matches_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    pred = np.clip(y + rng.integers(-1, 2, 300), 0, 4)
    assert quadratic_kappa(y, pred, 5) == pytest.approx(cohen_kappa_score(y, pred, weights="quadratic"))
    assert quadratic_kappa(y, y, 5) == pytest.approx(1.0)


def test_a_far_miss_costs_more_kappa_than_a_near_one():
    y = np.array([0, 1, 2, 3, 4] * 10)
    near = np.where(y == 2, 3, y)
    far = np.where(y == 2, 0, y)
    assert quadratic_kappa(y, near, 5) > quadratic_kappa(y, far, 5)
    assert (near == y).mean() == (far == y).mean()  # accuracy cannot tell them apart


def test_sensitivity_at_specificity():
    y = np.r_[np.zeros(10), np.ones(10)].astype(int)
    score = np.r_[np.arange(10) / 10, np.arange(10) / 10 + 0.45]  # negatives 0..0.9, positives 0.45..1.35
    # the threshold keeps 90 % of negatives below: 0.9 is the 10th negative -> positives above 0.9 count
    assert sensitivity_at_specificity(y, score, 0.9) == pytest.approx((score[10:] > 0.9).mean())
    assert np.isnan(sensitivity_at_specificity(np.zeros(5, int), np.ones(5), 0.9))  # a class is missing


def test_graded_prediction_is_the_median_grade():
    proba = np.array([[0.4, 0.0, 0.0, 0.6], [0.3, 0.3, 0.4, 0.0]])
    assert graded_prediction(proba).tolist() == [3, 1]


def test_score_all_adds_graded_and_binary_figures():
    rng = np.random.default_rng(1)
    p3 = rng.dirichlet(np.ones(3), 50)
    y3 = rng.integers(0, 3, 50)
    assert {"quadratic_kappa", "grade_mae"} <= set(score_all(p3, y3, ordered=True))
    assert "quadratic_kappa" not in score_all(p3, y3)
    p2 = rng.dirichlet(np.ones(2), 50)
    assert "sensitivity_at_specificity" in score_all(p2, rng.integers(0, 2, 50))
    with pytest.raises(LearningError, match="needs 2 classes"):
        objective_score("sensitivity_at_specificity", p3, y3)


def test_class_weighting_follows_the_objective():
    assert class_weighting("accuracy") is None and class_weighting("quadratic_kappa") is None
    assert class_weighting("balanced_accuracy") == "balanced" == class_weighting("sensitivity_at_specificity")
    with pytest.raises(LearningError, match="unknown objective 'auc'"):
        class_weighting("auc")


def _imbalanced(seed=0, n=600):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.12).astype(int)
    X = (rng.normal(size=(n, 4)) + y[:, None] * 0.9).astype(np.float32)
    return X, y


def test_unweighted_model_favours_accuracy_weighted_favours_balanced_accuracy():
    X, y = _imbalanced()
    Xt, yt = _imbalanced(1, 4000)
    plain = score_all(fit_model(X, y, n_classes=2, random_state=0, class_weight=None).predict_proba(Xt), yt)
    fair = score_all(fit_model(X, y, n_classes=2, random_state=0, class_weight="balanced").predict_proba(Xt), yt)
    assert plain["accuracy"] > fair["accuracy"]
    assert fair["balanced_accuracy"] > plain["balanced_accuracy"]
    with pytest.raises(LearningError, match="class_weight == 'rare'"):
        fit_model(X, y, n_classes=2, class_weight="rare")


def test_cumulative_logit_is_ordered_and_sums_to_one():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = np.digitize(X[:, 0] + 0.3 * rng.normal(size=400), [-1, 0, 1])
    model = CumulativeLogit(C=1.0).fit(X, y)
    p = model.predict_proba(X)
    assert p.shape == (400, 4) and np.allclose(p.sum(axis=1), 1) and (p >= 0).all()
    grid = np.c_[np.linspace(-3, 3, 50), np.zeros((50, 2))]
    expected = model.predict_proba(grid) @ np.arange(4)
    assert np.all(np.diff(expected) > 0)  # the expected grade rises with the feature that sets it
    assert (model.predict(X) == y).mean() > 0.7


def test_ordinal_model_through_fit_model():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = np.digitize(X[:, 1], [-0.8, 0, 0.8])
    m = fit_model(X[:200], y[:200], n_classes=4, name="ordinal_logistic", random_state=0, class_weight=None)
    sc = score_all(m.predict_proba(X[200:]), y[200:], ordered=True)
    assert sc["quadratic_kappa"] > 0.8 and sc["grade_mae"] < 0.4


def test_grade_variance_knows_far_from_near():
    near = np.array([[0.0, 0.5, 0.5, 0.0, 0.0]])
    far = np.array([[0.5, 0.0, 0.0, 0.0, 0.5]])
    assert grade_variance_scores(far)[0] == pytest.approx(1.0)
    assert grade_variance_scores(near)[0] < grade_variance_scores(far)[0]
    assert grade_variance_scores(np.eye(5)).max() == pytest.approx(0.0)


@pytest.mark.parametrize(("n", "b", "expected"), [(546, 10, 55), (4700, 10, 470), (100_000, 10, 500),
                                                  (60, 10, 20), (100_000, 1000, 10_000)])
def test_prefilter_scales_with_the_pool(n, b, expected):
    assert prefilter_size(n, b, pool_factor=50, pool_fraction=0.1) == expected


@pytest.mark.parametrize(("labelled", "classes", "expected"), [(20, 7, 1.0), (35, 7, 1.0), (70, 7, 0.5), (250, 7, 0.14),
                                                              (20, 2, 0.5), (100, 2, 0.1), (1000, 2, 0.1), (0, 2, 0.1)])
def test_prefilter_keeps_the_whole_pool_while_labels_are_few(labelled, classes, expected):
    """With warm_per_class=5: typical scans first (below 5 labels per class), then 5 / (labels per class)
    down to the uncertain 10 %."""
    assert scheduled_fraction(0.1, 5.0, labelled, classes) == pytest.approx(expected, abs=0.001)
    assert scheduled_fraction(0.1, 0.0, labelled, classes) == 0.1  # no warm-up: always the fraction


def test_warm_up_batch_spreads_over_the_pool_then_narrows():
    """Few labels (the default warm-up: below 2 per class): the hybrid batch is drawn from the whole pool;
    many: from the most uncertain 10 %."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 5)).astype(np.float32)
    truth = (X[:, 0] > 0).astype(np.int64)
    y = np.full(2000, UNLABELLED, dtype=np.int64)
    few = np.r_[np.flatnonzero(truth == 0)[:1], np.flatnonzero(truth == 1)[:1]]
    y[few] = truth[few]
    early = get_strategy("hybrid").query(X, y, batch_size=10, random_state=0, n_classes=2)
    assert early.details["prefiltered"] == 1998 and early.details["prefilter_fraction"] == 1.0
    three = np.r_[np.flatnonzero(truth == 0)[:3], np.flatnonzero(truth == 1)[:3]]
    y[three] = truth[three]  # 3 per class: past the default warm-up, the kept share is 2 / 3
    assert get_strategy("hybrid").query(X, y, batch_size=10, random_state=0,
                                        n_classes=2).details["prefilter_fraction"] == round(2 / 3, 4)
    many = np.r_[np.flatnonzero(truth == 0)[:200], np.flatnonzero(truth == 1)[:200]]
    y[many] = truth[many]
    late = get_strategy("hybrid").query(X, y, batch_size=10, random_state=0, n_classes=2)
    assert late.details["prefilter_fraction"] == 0.1 and late.details["prefiltered"] == 160
    assert np.abs(X[late.indices, 0]).mean() < np.abs(X[early.indices, 0]).mean()  # nearer the boundary


def test_simulate_scores_the_objective_and_records_graded_metrics():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(260, 4)).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.2 * rng.normal(size=260), [-0.7, 0, 0.7])
    res = simulate(X, y, test_idx=np.arange(200, 260), strategies=["random", "default"], seeds=[0, 1], initial=12,
                   batch=6, budget=30, n_classes=4, objective="quadratic_kappa", ordered=True)
    assert res["objective"] == "quadratic_kappa" and res["default"] in res["strategies"]
    assert "default" not in res["strategies"]
    run = res["strategies"]["random"]["runs"][0]
    assert list(run)[:3] == ["seed", "labels", "quadratic_kappa"]
    assert {"grade_mae", "ece", "accuracy"} <= set(run)
    from aldesk.learning.simulation import aulc

    entry = res["strategies"]["random"]
    assert entry["aulc"] == pytest.approx(np.mean([aulc(r["labels"], r["quadratic_kappa"]) for r in entry["runs"]]))
    with pytest.raises(LearningError, match="needs 2 classes"):
        simulate(X, y, test_idx=np.arange(200, 260), strategies=["random"], seeds=1, initial=12, batch=6, budget=30,
                 n_classes=4, objective="sensitivity_at_specificity")


def test_random_share_hedges_part_of_the_batch():
    from aldesk.learning.base import UNLABELLED
    from aldesk.learning.strategies import get_strategy

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)).astype(np.float32)
    y = np.full(400, UNLABELLED)
    y[:20] = (X[:20, 0] > 0).astype(int)
    res = get_strategy("hybrid", random_share=0.5).query(X, y, batch_size=10, random_state=1, n_classes=2)
    assert len(set(res.indices.tolist())) == 10 and not np.isin(res.indices, np.arange(20)).any()
    hedged = [r for r in res.reasons if r.startswith("drawn at random")]
    assert len(hedged) == 5 and res.details["random_share"] == 0.5
    plain = get_strategy("hybrid").query(X, y, batch_size=10, random_state=1, n_classes=2)
    assert not any(r.startswith("drawn at random") for r in plain.reasons)
    with pytest.raises(LearningError, match=r"random_share == 1, must be a number in \[0, 1\)"):
        get_strategy("hybrid", random_share=1).query(X, y, batch_size=10, random_state=1, n_classes=2)


def test_the_default_runs_as_the_app_runs_it_for_graded_classes_too():
    """One default for every kind of label set: simulate's default is plain ``hybrid`` (the app's ranking
    builds it with no parameters either); graded sets differ only by the ordinal model."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.2 * rng.normal(size=200), [-0.7, 0, 0.7])
    common = dict(test_idx=np.arange(150, 200), seeds=[0], initial=12, batch=6, budget=30, n_classes=4,
                  objective="quadratic_kappa", ordered=True, model="ordinal_logistic")
    default = simulate(X, y, strategies=["default"], **common)["strategies"]["hybrid"]["runs"]
    plain = simulate(X, y, strategies=["hybrid"], params={"hybrid": {}}, **common)["strategies"]["hybrid"]["runs"]
    assert default == plain
