"""Score functions against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aldesk.errors import LearningError
from aldesk.learning.committee_strategies import (
    bald_scores,
    kl_consensus_scores,
    vote_entropy_scores,
    vote_fractions,
)
from aldesk.learning.uncertainty import (
    entropy_scores,
    favour_rare_factors,
    least_confidence_scores,
    margin_scores,
    rare_class_weights,
)

P = np.array([
    [0.5, 0.5],
    [0.9, 0.1],
    [1.0, 0.0],
])
P3 = np.array([[0.5, 0.3, 0.2]])


def test_entropy_by_hand():
    h09 = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))  # 0.325083
    np.testing.assert_allclose(entropy_scores(P), [math.log(2), h09, 0.0], atol=1e-12)
    h3 = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2))  # 1.029653
    np.testing.assert_allclose(entropy_scores(P3), [h3], atol=1e-12)
    assert entropy_scores(P)[0] == pytest.approx(0.6931, abs=1e-4)  # the "entropy 0.69" of a reason


def test_margin_by_hand():
    np.testing.assert_allclose(margin_scores(P), [1.0, 0.2, 0.0], atol=1e-12)
    np.testing.assert_allclose(margin_scores(P3), [0.8], atol=1e-12)


def test_least_confidence_by_hand():
    np.testing.assert_allclose(least_confidence_scores(P), [0.5, 0.1, 0.0], atol=1e-12)
    np.testing.assert_allclose(least_confidence_scores(P3), [0.5], atol=1e-12)


def test_scores_reject_a_vector():
    with pytest.raises(LearningError, match=r"proba must be \(n_scans, n_classes >= 2\), got shape \(3,\)"):
        entropy_scores(np.array([0.2, 0.3, 0.5]))


def test_vote_entropy_by_hand():
    # 4 members; scan 0: votes 0,0,1,1 -> ln 2; scan 1: all vote 0 -> 0; scan 2: 3 vs 1
    members = np.array([
        [[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]],
        [[0.7, 0.3], [0.9, 0.1], [0.7, 0.3]],
        [[0.2, 0.8], [0.6, 0.4], [0.9, 0.1]],
        [[0.4, 0.6], [0.7, 0.3], [0.3, 0.7]],
    ])
    np.testing.assert_allclose(vote_fractions(members), [[0.5, 0.5], [1.0, 0.0], [0.75, 0.25]])
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    np.testing.assert_allclose(vote_entropy_scores(members), [math.log(2), 0.0, h], atol=1e-12)


def test_bald_and_kl_by_hand():
    # two members, each certain, of opposite classes: mutual information = ln 2; agreeing members: 0
    members = np.array([[[1.0, 0.0], [0.7, 0.3]], [[0.0, 1.0], [0.7, 0.3]]])
    np.testing.assert_allclose(bald_scores(members), [math.log(2), 0.0], atol=1e-12)
    np.testing.assert_allclose(kl_consensus_scores(members), [math.log(2), 0.0], atol=1e-12)


def test_kl_to_consensus_equals_mutual_information():
    rng = np.random.default_rng(0)
    members = rng.dirichlet([1.0, 1.0, 1.0], size=(5, 40))
    np.testing.assert_allclose(kl_consensus_scores(members), bald_scores(members), atol=1e-12)


def test_rare_classes_weigh_more():
    counts = np.array([100, 25, 1])
    w = rare_class_weights(counts)
    np.testing.assert_allclose(w, [1.0, 2.0, 10.0])  # sqrt(100/25) = 2, sqrt(100/1) = 10 (= the cap)
    proba = np.array([[0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
    np.testing.assert_allclose(favour_rare_factors(proba, counts), [5.5, 1.5])
