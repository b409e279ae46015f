"""Agreement statistics against published worked examples and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from aldesk.review.agreement import (
    agreement_report,
    bootstrap_ci,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    percent_agreement,
)
from aldesk.review.ratings import MISSING, category_counts, check_ratings, ratings_matrix

# Fleiss (1971) as worked on Wikipedia ("Fleiss' kappa", worked example): 10 subjects, 14 raters,
# 5 categories; P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210.
FLEISS_TABLE = np.array([
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
])

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers,
# 12 units, values 1..5, missing data ('.'); alpha nominal 0.743, interval 0.849.
_ = None
KRIPPENDORFF_DATA = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
    [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
]


def krippendorff_counts() -> np.ndarray:
    R = np.array([[MISSING if v is None else v - 1 for v in row] for row in KRIPPENDORFF_DATA]).T
    return category_counts(R, 5)


def test_fleiss_kappa_matches_fleiss_1971_worked_example():
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.2099, abs=5e-4)
    assert percent_agreement(FLEISS_TABLE) == pytest.approx(0.378, abs=5e-4)


def test_krippendorff_alpha_matches_the_2011_worked_example_with_missing_data():
    counts = krippendorff_counts()
    assert krippendorff_alpha(counts, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(counts, "interval") == pytest.approx(0.849, abs=5e-4)
    # ordinal: the value other implementations (e.g. the `krippendorff` package) give for this data
    assert krippendorff_alpha(counts, "ordinal") == pytest.approx(0.815, abs=5e-4)


def test_krippendorff_ordinal_equals_brute_force_pairwise_definition():
    rng = np.random.default_rng(3)
    R = rng.integers(0, 4, (40, 3))
    R[rng.random(R.shape) < 0.2] = MISSING
    counts = category_counts(R, 4)
    # alpha = 1 - D_o / D_e with the ordinal metric computed from all pairable values
    values = [[v for v in row if v != MISSING] for row in R]
    values = [v for v in values if len(v) >= 2]
    n_c = np.zeros(4)
    for v in values:
        for x in v:
            n_c[x] += 1
    n = n_c.sum()

    def delta(c, k):
        lo, hi = min(c, k), max(c, k)
        return (n_c[lo:hi + 1].sum() - (n_c[lo] + n_c[hi]) / 2) ** 2

    d_o = sum(delta(a, b) / (len(v) - 1) for v in values for i, a in enumerate(v) for j, b in enumerate(v) if i != j) / n
    d_e = sum(n_c[c] * n_c[k] * delta(c, k) for c in range(4) for k in range(4)) / (n * (n - 1))
    assert krippendorff_alpha(counts, "ordinal") == pytest.approx(1 - d_o / d_e, rel=1e-10)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cohen_kappa_equals_scikit_learn(weights, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 3, 200)
    b = np.where(rng.random(200) < 0.7, a, rng.integers(0, 3, 200))
    assert cohen_kappa(a, b, 3, weights=weights) == pytest.approx(cohen_kappa_score(a, b, weights=weights), abs=1e-12)


def test_cohen_kappa_with_sample_weights_equals_repeated_items():
    a, b = np.array([0, 1, 1, 0, 1]), np.array([0, 1, 0, 0, 1])
    w = np.array([2, 1, 3, 1, 2])
    assert cohen_kappa(a, b, 2, sample_weight=w) == pytest.approx(cohen_kappa_score(np.repeat(a, w), np.repeat(b, w)))


def test_statistics_without_variation_or_data_are_nan_not_errors():
    assert np.isnan(cohen_kappa([], [], 2))
    assert np.isnan(cohen_kappa([1, 1, 1], [1, 1, 1], 2))
    assert np.isnan(fleiss_kappa(np.array([[2.0, 0.0], [2.0, 0.0]])))
    assert np.isnan(krippendorff_alpha(np.array([[1.0, 0.0], [0.0, 1.0]])))  # nothing pairable
    assert np.isnan(percent_agreement(np.zeros((0, 2))))


def test_fleiss_generalises_to_a_varying_number_of_raters():
    # items with 2 and 3 raters; single-rated items are left out
    counts = np.array([[2, 0], [1, 1], [3, 0], [0, 3], [1, 0]], dtype=float)
    p_i = np.array([1, 0, 1, 1])
    p_j = np.array([6, 4]) / 10
    expected = (p_i.mean() - (p_j ** 2).sum()) / (1 - (p_j ** 2).sum())
    assert fleiss_kappa(counts) == pytest.approx(expected)


def test_bad_parameters_are_refused_with_messages():
    with pytest.raises(ValueError, match="level == 'ratio', must be one of nominal, ordinal, interval"):
        krippendorff_alpha(FLEISS_TABLE, "ratio")
    with pytest.raises(ValueError, match="weights == 'cubic'"):
        cohen_kappa([0, 1], [0, 1], 2, weights="cubic")
    with pytest.raises(ValueError, match=r"confidence == 1.5, must be in \(0, 1\)"):
        bootstrap_ci(lambda w: 0.0, 5, confidence=1.5)
    with pytest.raises(ValueError, match="ratings.ndim == 1, must be 2"):
        check_ratings(np.array([0, 1]))
    with pytest.raises(ValueError, match="ratings hold class 3, but n_classes == 2"):
        check_ratings(np.array([[0, 3]]), 2)


def test_bootstrap_ci_is_seeded_and_brackets_the_estimate():
    counts = krippendorff_counts()
    stat = lambda w: krippendorff_alpha(counts, "nominal", w)  # noqa: E731
    ci = bootstrap_ci(stat, len(counts), n_boot=300, random_state=7)
    assert ci == bootstrap_ci(stat, len(counts), n_boot=300, random_state=7)
    assert ci[0] < 0.743 < ci[1]
    assert ci != bootstrap_ci(stat, len(counts), n_boot=300, random_state=8)


def test_agreement_report_shape_and_values():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 120)
    R = np.stack([np.where(rng.random(120) < e, 1 - truth, truth) for e in (0.1, 0.2, 0.3)], axis=1)
    R[:40, 2] = MISSING  # the third reader read only some scans
    report = agreement_report(R, ["a", "b", "c"], ["normal", "pneumonia"], ordered=True, truth=truth,
                              n_boot=100, random_state=0)
    pairs = {(p["a"], p["b"]): p for p in report["pairs"]}
    assert set(pairs) == {("a", "b"), ("a", "c"), ("b", "c")}
    assert pairs[("a", "b")]["n"] == 120 and pairs[("a", "c")]["n"] == 80
    assert pairs[("a", "c")]["cohen_kappa"] == pytest.approx(cohen_kappa_score(R[40:, 0], R[40:, 2]), abs=1e-6)
    lo, hi = pairs[("a", "b")]["cohen_kappa_ci"]
    assert lo <= pairs[("a", "b")]["cohen_kappa"] <= hi
    assert report["n"] == report["n_multi_read"] == 120
    assert report["fleiss_kappa"] == pytest.approx(fleiss_kappa(category_counts(R, 2)), abs=1e-6)
    assert report["krippendorff_alpha"] == pytest.approx(krippendorff_alpha(category_counts(R, 2)), abs=1e-6)
    assert "krippendorff_alpha_ordinal" in report and "weighted_kappa" in pairs[("a", "b")]
    vs = {v["reader"]: v for v in report["vs_consensus"]}
    assert vs["a"]["cohen_kappa"] > vs["b"]["cohen_kappa"] > vs["c"]["cohen_kappa"]
    assert vs["c"]["n"] == 80


def test_ratings_matrix_from_triples():
    R, items, raters = ratings_matrix([(10, "b", 1), (10, "a", 0), (11, "a", -1), (12, "b", 1)])
    assert items == [10, 11, 12] and raters == ["a", "b"]
    assert R.tolist() == [[0, 1], [MISSING, MISSING], [MISSING, 1]]
