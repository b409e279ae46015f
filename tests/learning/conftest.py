"""Small generated pools for learning tests: the point of these tests is edge cases, not realism."""

from __future__ import annotations

import numpy as np
import pytest

from aldesk.learning.base import UNLABELLED, standardize


def make_pool(n=90, d=6, n_classes=3, seed=0):
    """(X float32 standardised, y_true) with well separated but overlapping classes."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.0, size=(n_classes, d))
    y = np.arange(n) % n_classes
    X = centres[y] + rng.normal(0, 1.0, size=(n, d))
    return standardize(X), y.astype(np.int64)


def partially_labelled(y_true, per_class=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.full(len(y_true), UNLABELLED, dtype=np.int64)
    for k in np.unique(y_true):
        idx = rng.choice(np.flatnonzero(y_true == k), per_class, replace=False)
        y[idx] = k
    return y


@pytest.fixture
def pool():
    X, y_true = make_pool()
    return X, y_true, partially_labelled(y_true)
