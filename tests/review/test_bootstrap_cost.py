"""The agreement bootstrap resamples distinct rating patterns, not items: its cost does not grow with reads."""

import numpy as np

from aldesk.review import agreement
from aldesk.review.agreement import agreement_report, bootstrap_ci


def _ratings(n, rng):
    truth = rng.integers(0, 2, n)
    R = np.full((n, 3), -1)
    for i in range(n):
        for j in rng.choice(3, 2, replace=False):
            R[i, j] = truth[i] if rng.random() < 0.85 else 1 - truth[i]
    return R


def test_statistics_are_resampled_over_patterns_not_items(monkeypatch):
    rng = np.random.default_rng(0)
    R = _ratings(20_000, rng)
    sizes = []
    real = agreement.percent_agreement

    def spy(counts, weights=None):
        sizes.append(len(counts))
        return real(counts, weights)

    monkeypatch.setattr(agreement, "percent_agreement", spy)
    report = agreement_report(R, ["a", "b", "c"], ["x", "y"], n_boot=50)
    assert sizes[0] == 20_000  # the point estimate sees every item
    assert max(sizes[1:]) <= 3 and len(sizes) == 51  # each resample: the distinct count rows only
    assert report["percent_agreement_ci"][0] < report["percent_agreement"] < report["percent_agreement_ci"][1]


def test_grouped_bootstrap_matches_the_item_bootstrap():
    """Multinomial draws over groups are the item bootstrap's distribution: same interval, up to noise."""
    rng = np.random.default_rng(1)
    x = (rng.random(3000) < 0.7).astype(float)

    def mean_items(w):
        return float(np.average(x, weights=w))

    values, counts = np.unique(x, return_counts=True)
    by_item = bootstrap_ci(mean_items, len(x), n_boot=2000, random_state=0)
    by_group = bootstrap_ci(lambda w: float(np.average(values, weights=w)), len(x), n_boot=2000, random_state=0,
                            groups=counts)
    assert np.allclose(by_item, by_group, atol=0.004)
