"""Confident learning on out-of-fold probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from aldesk.errors import NotEnoughLabelsError
from aldesk.review.label_errors import find_label_issues, out_of_fold_proba


def test_thresholds_flags_and_margins_on_a_hand_made_example():
    y = np.array([0, 0, 0, 1, 1, 1])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.3, 0.7], [0.1, 0.9], [0.6, 0.4]])
    issues = find_label_issues(y, proba)
    assert issues.thresholds == pytest.approx([(0.9 + 0.8 + 0.2) / 3, (0.7 + 0.9 + 0.4) / 3])
    # scan 2 is flagged (labelled 0, p1 = 0.8 >= 0.667); scan 5 is not (labelled 1, p0 = 0.6 < 0.633)
    assert issues.indices.tolist() == [2]
    assert issues.suggested.tolist() == [1]
    assert issues.margin == pytest.approx([0.6])
    assert issues.self_confidence == pytest.approx([0.2])
    assert issues.ranking[0] == 2 and sorted(issues.ranking.tolist()) == list(range(6))


def test_finds_flipped_labels_on_separable_data():
    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 5)) + 3.0 * np.eye(3, 5)[y]
    flipped = rng.choice(n, 30, replace=False)
    given = y.copy()
    given[flipped] = (given[flipped] + 1) % 3
    proba = out_of_fold_proba(X, given, 3, folds=5, random_state=0)
    assert proba.shape == (n, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    issues = find_label_issues(given, proba)
    assert np.isin(issues.ranking[:30], flipped).mean() >= 0.8
    assert (issues.suggested == y[issues.indices]).mean() >= 0.8


def test_out_of_fold_is_reproducible_and_accepts_weights():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(80, 3)), np.tile([0, 1], 40)
    a = out_of_fold_proba(X, y, 2, random_state=3)
    assert np.array_equal(a, out_of_fold_proba(X, y, 2, random_state=3))
    b = out_of_fold_proba(X, y, 2, random_state=3, sample_weight=np.linspace(0.5, 1, 80))
    assert not np.allclose(a, b)


def test_too_few_labels_per_class_is_a_clear_error():
    X, y = np.zeros((5, 2)), np.array([0, 0, 0, 0, 1])
    with pytest.raises(NotEnoughLabelsError, match="class 1 has fewer than 2 labelled scans"):
        out_of_fold_proba(X, y, 2)
    with pytest.raises(ValueError, match="folds == 1, must be >= 2"):
        out_of_fold_proba(X, y, 2, folds=1)
    with pytest.raises(ValueError, match=r"proba.shape == \(2, 2\), must be \(3, n_classes\)"):
        find_label_issues(np.array([0, 1, 0]), np.zeros((2, 2)))
