"""The selection algorithms: k-center greedy, factored BADGE, and the hybrid's diversity."""

from __future__ import annotations

import numpy as np

from aldesk.learning.badge import gradient_factors, kmeanspp_badge
from aldesk.learning.base import UNLABELLED
from aldesk.learning.coreset import k_center_greedy
from aldesk.learning.models import fit_model
from aldesk.learning.strategies import get_strategy


def test_k_center_greedy_picks_far_points_first():
    rng = np.random.default_rng(0)
    near = rng.normal(0, 0.1, size=(20, 2))
    far = np.array([[10.0, 0.0], [0.0, -7.0], [-3.0, 3.0]])
    X = np.vstack([near, far]).astype(np.float32)
    centres = np.array([0, 1])
    candidates = np.arange(2, len(X))
    picks, dist = k_center_greedy(X, centres, candidates, 3, rng, return_distances=True)
    assert picks.tolist() == [20, 21, 22]  # farthest from the labelled cluster, then the next farthest
    assert dist[0] > dist[1] > dist[2] > 4
    np.testing.assert_allclose(dist[0], np.linalg.norm(X[20] - X[:2], axis=1).min(), rtol=1e-5)


def test_k_center_greedy_never_repeats_and_spreads():
    X = np.array([[0, 0], [0, 0], [0, 0], [5, 5], [5, 5.1]], dtype=np.float32)
    picks = k_center_greedy(X, np.array([], dtype=np.int64), np.arange(5), 2, np.random.default_rng(1))
    assert len(set(picks.tolist())) == 2
    assert {int(p) in (3, 4) for p in picks} == {True, False}  # one from each blob


def _explicit_badge(X, proba, candidates, b, rng):
    """k-means++ on the explicitly built (m, (d+1)·C) gradient embedding, drawing like the factored one."""
    a = gradient_factors(proba)
    xt = np.hstack([X[candidates].astype(np.float64), np.ones((len(candidates), 1))])
    G = (a[:, :, None] * xt[:, None, :]).reshape(len(candidates), -1)
    picks = [int(np.argmax((G * G).sum(1)))]
    d2 = np.full(len(candidates), np.inf)
    chosen = np.zeros(len(candidates), dtype=bool)
    for _ in range(1, b):
        c = picks[-1]
        chosen[c] = True
        d2 = np.minimum(d2, ((G - G[c]) ** 2).sum(1))
        d2[chosen] = 0
        i = int(np.searchsorted(np.cumsum(d2), rng.random() * d2.sum(), side="right"))
        picks.append(i)
    return candidates[picks]


def test_factored_badge_equals_explicit_embedding():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    proba = rng.dirichlet([1.0, 1.0, 1.0], size=25)
    candidates = np.arange(5, 30)
    fast = kmeanspp_badge(X, proba, candidates, 8, np.random.default_rng(7))
    slow = _explicit_badge(X, proba, candidates, 8, np.random.default_rng(7))
    np.testing.assert_array_equal(fast, slow)


def _ambiguous_duplicates(seed=0):
    """Two classes, plus 30 near copies of one scan sitting exactly on the boundary."""
    rng = np.random.default_rng(seed)
    a = rng.normal([-2.0, 0.0], 0.8, size=(120, 2))
    b = rng.normal([2.0, 0.0], 0.8, size=(120, 2))
    dup = np.array([0.0, 0.0]) + rng.normal(0, 0.01, size=(30, 2))
    X = np.vstack([a, b, dup]).astype(np.float32)
    y_true = np.r_[np.zeros(120), np.ones(120), rng.integers(0, 2, 30)].astype(np.int64)
    # labelled: three scans of each class placed symmetrically, so the boundary runs through x = 0
    X[[0, 1, 2]] = [[-2, 0], [-2, 1], [-2, -1]]
    X[[120, 121, 122]] = [[2, 0], [2, 1], [2, -1]]
    y = np.full(len(X), UNLABELLED)
    y[[0, 1, 2, 120, 121, 122]] = y_true[[0, 1, 2, 120, 121, 122]]
    return X, y, np.arange(240, 270)


def test_hybrid_batch_is_more_diverse_than_pure_entropy():
    X, y, dup = _ambiguous_duplicates()
    lab = y != UNLABELLED
    model = fit_model(X[lab], y[lab], n_classes=2, random_state=0)
    ent = get_strategy("entropy").query(X, y, batch_size=8, random_state=0, model=model, n_classes=2)
    # the whole (small) pool as the pre-filter: this checks the diverse pick, not the pre-filter's size
    hyb = get_strategy("hybrid", pool_fraction=1.0).query(X, y, batch_size=8, random_state=0, model=model, n_classes=2)

    def spread(idx):
        P = X[idx]
        return np.mean([np.linalg.norm(p - q) for i, p in enumerate(P) for q in P[i + 1:]])

    assert np.isin(ent.indices, dup).sum() >= 6  # entropy piles into the duplicated cluster
    assert np.isin(hyb.indices, dup).sum() <= 2
    assert spread(hyb.indices) > 3 * spread(ent.indices)
    assert "typical of a group of" in hyb.reasons[0]


def test_kcenter_hybrid_also_spreads():
    X, y, dup = _ambiguous_duplicates(1)
    hyb = get_strategy("hybrid", diversity="kcenter", pool_fraction=1.0).query(X, y, batch_size=8, random_state=0,
                                                                         n_classes=2)
    assert np.isin(hyb.indices, dup).sum() <= 2


def test_lazy_k_center_matches_the_full_computation(monkeypatch):
    from aldesk.learning import coreset

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 8)).astype(np.float32)
    lab = rng.choice(3000, 300, replace=False)
    cand = np.setdiff1d(np.arange(3000), lab)
    lazy, d_lazy = k_center_greedy(X, lab, cand, 20, 0, return_distances=True)  # 300 > BOUND_CENTRES
    monkeypatch.setattr(coreset, "BOUND_CENTRES", 10_000)
    full, d_full = k_center_greedy(X, lab, cand, 20, 0, return_distances=True)
    np.testing.assert_array_equal(lazy, full)
    np.testing.assert_allclose(d_lazy, d_full, rtol=1e-5)
