"""Each reader is judged against the *other* readers (issue 13 point 11).

A reader made 25 % wrong on purpose was reported as "estimated accuracy 1.000, kappa vs consensus
1.000" because the consensus held their own read. Readers with known error rates must come out near
the truth, and where that cannot be estimated the report says why.
"""

from __future__ import annotations

import numpy as np
import pytest

from aldesk.review.agreement import agreement_report, reader_reliability
from aldesk.review.ratings import MISSING

CLASSES = ["normal", "pneumonia"]


def simulate(error_rates, n_items=400, reads_per_item=3, seed=0):
    """(truth, R): each item read by ``reads_per_item`` random readers; reader j wrong with p = error_rates[j]."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_items)
    R = np.full((n_items, len(error_rates)), MISSING, dtype=np.int64)
    for i in range(n_items):
        for j in rng.choice(len(error_rates), reads_per_item, replace=False):
            R[i, j] = 1 - truth[i] if rng.random() < error_rates[j] else truth[i]
    return truth, R


@pytest.mark.parametrize("reads_per_item", [3, 4])
def test_estimated_accuracy_lands_near_each_readers_true_accuracy(reads_per_item):
    errors = [0.02, 0.10, 0.25, 0.05]
    truth, R = simulate(errors, reads_per_item=reads_per_item, seed=reads_per_item)
    names = ["ann", "bob", "cat", "dan"]
    rows = {r["reader"]: r for r in reader_reliability(R, names, 2)}
    for name, err in zip(names, errors):
        true_accuracy = float((R[:, names.index(name)] == truth)[R[:, names.index(name)] != MISSING].mean())
        assert rows[name]["why"] is None
        assert rows[name]["accuracy"] == pytest.approx(true_accuracy, abs=0.06), name
    assert rows["cat"]["accuracy"] < 0.85                    # the 25 % reader is no longer "1.000"
    assert rows["cat"]["cohen_kappa"] < rows["dan"]["cohen_kappa"]


def test_the_issue_case_a_reader_wrong_on_a_quarter_is_not_perfect():
    """Mostly single reads plus some double reads: the consensus that holds the own read says 1.0."""
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 2, 300)
    R = np.full((300, 3), MISSING, dtype=np.int64)
    R[:, 0] = truth                                           # a careful reader on everything
    R[:150, 1] = np.where(rng.random(150) < 0.05, 1 - truth[:150], truth[:150])
    bad = np.where(rng.random(300) < 0.25, 1 - truth, truth)
    R[100:, 2] = bad[100:]                                    # 25 % wrong on purpose
    report = agreement_report(R, ["a", "b", "x"], CLASSES, n_boot=0)
    x = {v["reader"]: v for v in report["vs_consensus"]}["x"]
    assert x["accuracy"] == pytest.approx(0.75, abs=0.06)
    assert x["cohen_kappa"] < 0.7 and x["percent_agreement"] < 0.85
    assert x["confusion"][0][0] == pytest.approx(0.75, abs=0.08)


@pytest.mark.parametrize("errors", [[0.0, 0.25], [0.0, 0.25, 0.1, 0.05]])
def test_double_reading_only_says_plainly_why_accuracy_cannot_be_estimated(errors):
    """Two reads per scan: the other read cannot say which of the two readers was right."""
    truth, R = simulate(errors, n_items=200, reads_per_item=2)
    names = "abcd"[:len(errors)]
    rows = {r["reader"]: r for r in reader_reliability(R, list(names), 2)}
    for name in "ab":
        assert np.isnan(rows[name]["accuracy"])
        assert "one other reader only" in rows[name]["why"]
        assert 0.5 < rows[name]["percent_agreement"] < 1.0   # still told how often they differ


def test_a_reader_nobody_else_read_with_is_not_estimated():
    R = np.array([[0, MISSING], [1, MISSING], [MISSING, 0]], dtype=np.int64)
    rows = {r["reader"]: r for r in reader_reliability(R, ["a", "b"], 2)}
    assert rows["a"]["why"] == "no scan a read was also read by another reader" and rows["a"]["n"] == 0


def test_adjudicated_truth_is_a_strong_reference_even_with_one_other_reader():
    truth, R = simulate([0.0, 0.25], n_items=100, reads_per_item=2, seed=3)
    rows = {r["reader"]: r for r in reader_reliability(R, ["a", "b"], 2, truth=truth)}
    assert rows["b"]["why"] is None and rows["b"]["accuracy"] == pytest.approx(
        float((R[:, 1] == truth).mean()), abs=1e-9)
