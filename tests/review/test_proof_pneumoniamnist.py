"""Issue 5, point 7, on real labels: simulated readers with known error rates on PneumoniaMNIST.

Dawid–Skene recovers the true label at least as often as majority vote, and clearly more often when
one reader is much worse; with 10% of labels flipped, at least half of the top-k flagged scans
(k = number flipped) are truly flipped. Fixed seeds; the figures themselves come from
tests/benchmarks/bench_consensus.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.benchmarks.bench_consensus import DATA, consensus_accuracy, label_error_run, load, simulate_readers

pytestmark = pytest.mark.skipif(not DATA.is_file(), reason=f"PneumoniaMNIST not found at {DATA}")


@pytest.fixture(scope="module")
def pneumonia():
    return load()


@pytest.mark.parametrize("seed", [0, 1])
def test_dawid_skene_at_least_matches_majority_with_similar_readers(pneumonia, seed):
    _, y = pneumonia
    R = simulate_readers(y, [(0.10, 0.10), (0.15, 0.15), (0.20, 0.20)], None, np.random.default_rng(seed))
    result = consensus_accuracy(y, R, np.random.default_rng(1000 + seed), plain_em=False)
    assert result["dawid_skene"] >= result["majority"]
    # the estimated error rates are the simulated ones
    np.testing.assert_allclose(result["estimated_errors"], [[0.10, 0.10], [0.15, 0.15], [0.20, 0.20]], atol=0.03)


@pytest.mark.parametrize("errors, per_scan", [
    ([(0.10, 0.10), (0.10, 0.10), (0.45, 0.45)], None),
    ([(0.05, 0.05), (0.10, 0.10), (0.15, 0.15), (0.45, 0.45)], None),
    ([(0.05, 0.05), (0.10, 0.10), (0.15, 0.15), (0.20, 0.20), (0.45, 0.45)], 3),
])
def test_dawid_skene_clearly_beats_majority_when_one_reader_is_much_worse(pneumonia, errors, per_scan):
    _, y = pneumonia
    for seed in (0, 1):
        R = simulate_readers(y, errors, per_scan, np.random.default_rng(seed))
        result = consensus_accuracy(y, R, np.random.default_rng(1000 + seed), plain_em=False)
        assert result["dawid_skene"] - result["majority"] >= 0.02, result
        assert result["estimated_errors"][-1][0] == pytest.approx(0.45, abs=0.03)


def test_half_of_the_top_k_flagged_scans_are_truly_flipped(pneumonia):
    images, y = pneumonia
    result = label_error_run(images, y, n=1500, flip_share=0.10, seed=0)
    assert result["flipped"] == 150
    assert result["precision_at_k"] >= 0.5, result
    assert result["flagged_precision"] >= 0.5
