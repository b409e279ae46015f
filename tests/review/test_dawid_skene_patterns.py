"""Dawid–Skene runs on distinct rating patterns: the cost of an EM iteration does not grow with reads."""

import numpy as np

from aldesk.review.dawid_skene import DawidSkene
from aldesk.review.ratings import MISSING


def _ratings(n, rng, readers=3, k=3):
    truth = rng.integers(0, k, n)
    R = np.full((n, readers), MISSING)
    for i in range(n):
        for j in rng.choice(readers, rng.integers(1, readers + 1), replace=False):
            R[i, j] = truth[i] if rng.random() < 0.8 else rng.integers(0, k)
    return R, truth


def test_em_runs_on_patterns_and_gives_each_item_its_patterns_posterior():
    rng = np.random.default_rng(0)
    R, truth = _ratings(3000, rng)
    known = np.where(rng.random(len(R)) < 0.05, truth, MISSING)
    R[7] = MISSING  # an unread item gets the prior
    m = DawidSkene(3).fit(R, known)
    read = (R != MISSING).any(axis=1)
    assert m.n_patterns_ == len(np.unique(np.column_stack([R[read], known[read]]), axis=0))
    assert m.n_patterns_ <= 4 ** 3 * 4 < len(R)  # (3 classes or none) per reader x (adjudicated or not)
    np.testing.assert_allclose(m.posterior_[7], m.prior_)
    same = (R == R[0]).all(axis=1) & (known == known[0])
    assert same.sum() > 1 and np.allclose(m.posterior_[same], m.posterior_[0])


def test_item_order_does_not_matter():
    rng = np.random.default_rng(1)
    R, _ = _ratings(800, rng)
    perm = rng.permutation(len(R))
    a, b = DawidSkene(3).fit(R), DawidSkene(3).fit(R[perm])
    np.testing.assert_allclose(b.posterior_, a.posterior_[perm], atol=1e-10)
    np.testing.assert_allclose(b.confusion_, a.confusion_, atol=1e-10)
    assert a.n_iter_ == b.n_iter_
