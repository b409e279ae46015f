"""Dawid–Skene, majority vote and the consensus that chooses between them."""

from __future__ import annotations

import numpy as np
import pytest

from aldesk.review.consensus import Consensus, consensus, majority_labels, majority_vote
from aldesk.review.dawid_skene import DawidSkene, dawid_skene
from aldesk.review.ratings import MISSING


def simulate(n, confusions, rng, read_share=1.0, prior=(0.3, 0.7)):
    """ratings (n, r) from per-reader confusion matrices (row = true class); truth (n,)."""
    k = len(prior)
    truth = rng.choice(k, n, p=prior)
    R = np.full((n, len(confusions)), MISSING)
    for j, c in enumerate(confusions):
        c = np.asarray(c)
        given = np.array([rng.choice(k, p=c[t]) for t in truth])
        read = rng.random(n) < read_share
        R[read, j] = given[read]
    return R, truth


def test_recovers_each_readers_confusion_matrix_with_partial_reads():
    rng = np.random.default_rng(0)
    confusions = [[[0.95, 0.05], [0.05, 0.95]], [[0.6, 0.4], [0.05, 0.95]], [[0.8, 0.2], [0.2, 0.8]],
                  [[0.9, 0.1], [0.3, 0.7]]]
    R, truth = simulate(3000, confusions, rng, read_share=0.7)
    model = DawidSkene(2).fit(R)
    assert model.confusion_.shape == (4, 2, 2)
    np.testing.assert_allclose(model.confusion_.sum(axis=2), 1.0)
    np.testing.assert_allclose(model.confusion_, confusions, atol=0.05)
    assert model.prior_ == pytest.approx([0.3, 0.7], abs=0.03)
    assert (model.predict() == truth).mean() > 0.9
    assert model.n_reads_.tolist() == (R != MISSING).sum(axis=0).tolist()


def test_three_classes_and_unread_items_get_the_prior():
    rng = np.random.default_rng(1)
    good = np.eye(3) * 0.85 + 0.05
    R, truth = simulate(600, [good, good, good], rng, prior=(0.2, 0.3, 0.5))
    R[:5] = MISSING
    model = dawid_skene(R, 3)
    np.testing.assert_allclose(model.posterior_[:5], np.tile(model.prior_, (5, 1)))
    assert (model.predict()[5:] == truth[5:]).mean() > 0.9


def test_known_truth_is_kept_and_teaches_the_readers():
    R = np.array([[0, 1], [0, 1], [1, 1], [0, 0]] * 10)
    truth = np.full(len(R), MISSING)
    truth[::4] = 1  # the first reader is wrong on these
    model = DawidSkene(2, prior_strength=0.0).fit(R, truth)
    assert (model.posterior_[::4].argmax(axis=1) == 1).all()
    assert model.posterior_[::4, 1].min() == 1.0
    assert model.confusion_[0, 1, 0] > model.confusion_[1, 1, 0]


def test_prior_keeps_readers_with_few_reads_away_from_certainty():
    R = np.array([[0, 0], [1, 1], [0, 0]])
    model = DawidSkene(2).fit(R)
    assert 0.0 < model.confusion_.min() and model.confusion_.max() < 1.0


def test_bad_parameters_are_refused_with_messages():
    R = np.array([[0, 1], [1, 1]])
    with pytest.raises(ValueError, match="max_iter == 0, must be an integer >= 1"):
        DawidSkene(2, max_iter=0).fit(R)
    with pytest.raises(ValueError, match="prior_strength == -1, must be >= 0"):
        DawidSkene(2, prior_strength=-1).fit(R)
    with pytest.raises(ValueError, match="ratings hold no read at all"):
        DawidSkene(2).fit(np.full((3, 2), MISSING))
    with pytest.raises(ValueError, match=r"truth must be \(2,\) class indices 0..1 or MISSING"):
        DawidSkene(2).fit(R, truth=np.array([0, 5]))


def test_majority_vote_ties_and_shares():
    R = np.array([[0, 0, 1], [0, 1, MISSING], [MISSING, MISSING, MISSING], [1, 1, 1]])
    labels, share = majority_vote(R, 2)
    assert labels.tolist() == [0, MISSING, MISSING, 1]
    assert share == pytest.approx([2 / 3, 0, 0, 1])


def test_majority_labels_by_name_ignores_unsure():
    reads = [(1, "a"), (1, "a"), (1, "b"), (2, "a"), (2, "b"), (3, "unsure"), (4, "b"), (4, "unsure")]
    assert majority_labels(reads, ["a", "b"]) == {1: "a", 4: "b"}


def test_consensus_falls_back_to_majority_without_enough_overlap():
    R = np.array([[0, MISSING], [MISSING, 1], [0, 0], [1, 0]])
    result = consensus(R, 2, min_overlap=5)
    assert isinstance(result, Consensus)
    assert result.method == "majority" and result.confusion is None
    assert result.labels.tolist() == [0, 1, 0, MISSING]
    assert result.weights.tolist() == [1.0, 1.0, 1.0, 0.0]
    assert result.n_multi_read == 2


def test_consensus_uses_dawid_skene_and_breaks_ties_by_reliability():
    rng = np.random.default_rng(4)
    R, truth = simulate(400, [[[0.97, 0.03], [0.03, 0.97]], [[0.6, 0.4], [0.4, 0.6]]], rng)
    result = consensus(R, 2)
    assert result.method == "dawid-skene"
    disagree = R[:, 0] != R[:, 1]
    # on every disagreement the reliable reader wins
    assert (result.labels[disagree] == R[disagree, 0]).all()
    assert ((result.weights > 0.5) & (result.weights <= 1.0)).all()
