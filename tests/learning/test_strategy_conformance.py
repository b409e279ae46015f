"""Every registered query strategy through the same checks (scikit-activeml's template-test idea).

A new strategy is a new row in ROWS (its speed-friendly parameters for tiny pools), not new test code;
``test_every_registered_strategy_has_a_row`` fails until the row exists.
"""

from __future__ import annotations

import numpy as np
import pytest

from aldesk.errors import LearningError
from aldesk.learning.base import UNLABELLED, QueryResult, QueryStrategy
from aldesk.learning.models import fit_model
from aldesk.learning.strategies import STRATEGY_NAMES, get_strategy

from .conftest import make_pool, partially_labelled

# name -> parameters that keep it fast on a 90-scan pool
ROWS = {
    "random": {},
    "least_confidence": {},
    "margin": {},
    "entropy": {},
    "qbc_vote_entropy": {"n_members": 3},
    "qbc_kl": {"n_members": 3},
    "bald": {"n_samples": 8},
    "coreset": {},
    "badge": {},
    "eer": {"n_candidates": 40, "n_evaluation": 40},
    "emc": {},
    "hybrid": {},
    "cold_start": {},
}
N_CLASSES = 3


def test_every_registered_strategy_has_a_row():
    assert set(ROWS) == set(STRATEGY_NAMES)


def check_result(result: QueryResult, candidates: np.ndarray, y: np.ndarray, batch_size: int) -> None:
    assert isinstance(result, QueryResult)
    idx = result.indices
    assert idx.dtype == np.int64
    assert len(idx) == min(batch_size, len(candidates))
    assert len(np.unique(idx)) == len(idx), "a scan was chosen twice"
    assert np.isin(idx, candidates).all(), "chose a scan outside the candidates"
    assert (y[idx] == UNLABELLED).all(), "chose an already labelled scan"
    assert len(result.scores) == len(idx) == len(result.reasons)
    assert np.isfinite(result.scores).all()
    assert all(isinstance(r, str) and r for r in result.reasons)


@pytest.fixture(params=STRATEGY_NAMES)
def name(request):
    return request.param


@pytest.fixture
def strategy(name):
    return get_strategy(name, **ROWS[name])


@pytest.fixture
def data():
    X, y_true = make_pool(n=90, d=6, n_classes=N_CLASSES)
    return X, y_true, partially_labelled(y_true, per_class=4)


class TestStrategyConformance:
    def test_follows_the_protocol(self, strategy, name):
        assert isinstance(strategy, QueryStrategy)
        assert strategy.name == name

    @pytest.mark.parametrize("batch_size, message", [
        (0, r"batch_size == 0, must be >= 1"),
        (-1, r"batch_size == -1, must be >= 1"),
        (2.5, r"batch_size must be an int, got float 2.5"),
        ("3", r"batch_size must be an int, got str '3'"),
        (True, r"batch_size must be an int, got bool"),
    ])
    def test_bad_batch_size(self, strategy, data, batch_size, message):
        X, _, y = data
        with pytest.raises(LearningError, match=message):
            strategy.query(X, y, batch_size=batch_size, random_state=0, n_classes=N_CLASSES)

    @pytest.mark.parametrize("bad, message", [
        ([0, 90], r"candidates contains index 90, out of range for X with 90 rows"),
        ([-1, 3], r"candidates contains index -1, out of range"),
        ([0.5, 2.0], r"candidates must be integer indices into X"),
    ])
    def test_candidates_out_of_range(self, strategy, data, bad, message):
        X, _, y = data
        with pytest.raises(LearningError, match=message):
            strategy.query(X, y, candidates=np.array(bad), random_state=0, n_classes=N_CLASSES)

    def test_length_mismatch(self, strategy, data):
        X, _, y = data
        with pytest.raises(LearningError, match=r"X has 90 rows but y has 89; give one label"):
            strategy.query(X, y[:-1], random_state=0, n_classes=N_CLASSES)

    def test_nan_in_features(self, strategy, data):
        X, _, y = data
        X = X.copy()
        X[7, 2] = np.nan
        with pytest.raises(LearningError, match=r"X contains NaN or infinity \(row 7\); re-extract"):
            strategy.query(X, y, random_state=0, n_classes=N_CLASSES)

    def test_features_must_be_2d(self, strategy, data):
        X, _, y = data
        with pytest.raises(LearningError, match=r"X must be 2-D \(n_scans, n_features\), got shape \(90,\)"):
            strategy.query(X[:, 0], y, random_state=0, n_classes=N_CLASSES)

    def test_label_beyond_n_classes(self, strategy, data):
        X, _, y = data
        y = y.copy()
        y[0] = 3
        with pytest.raises(LearningError, match=r"y contains class 3 but n_classes == 3"):
            strategy.query(X, y, random_state=0, n_classes=N_CLASSES)

    def test_bad_random_state(self, strategy, data):
        X, _, y = data
        with pytest.raises(LearningError, match=r"random_state must be None, an int or a numpy Generator"):
            strategy.query(X, y, random_state="seed", n_classes=N_CLASSES)

    def test_reproducible_with_a_seed(self, strategy, data):
        X, _, y = data
        a = strategy.query(X, y, batch_size=5, random_state=3, n_classes=N_CLASSES)
        b = get_strategy(strategy.name, **ROWS[strategy.name]).query(X, y, batch_size=5, random_state=3,
                                                                     n_classes=N_CLASSES)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_allclose(a.scores, b.scores)
        assert a.reasons == b.reasons

    @pytest.mark.parametrize("batch_size", [1, 5, 200])
    def test_batch_sizes(self, strategy, data, batch_size):
        X, _, y = data
        candidates = np.flatnonzero(y == UNLABELLED)
        result = strategy.query(X, y, batch_size=batch_size, random_state=0, n_classes=N_CLASSES)
        check_result(result, candidates, y, batch_size)

    def test_respects_given_candidates(self, strategy, data):
        X, _, y = data
        candidates = np.flatnonzero(y == UNLABELLED)[::3]
        result = strategy.query(X, y, candidates=candidates, batch_size=4, random_state=0, n_classes=N_CLASSES)
        check_result(result, candidates, y, 4)

    def test_labelled_candidates_are_never_chosen(self, strategy, data):
        X, _, y = data
        labelled = np.flatnonzero(y != UNLABELLED)
        candidates = np.concatenate([labelled, np.flatnonzero(y == UNLABELLED)[:3]])
        result = strategy.query(X, y, candidates=candidates, batch_size=10, random_state=0, n_classes=N_CLASSES)
        check_result(result, np.flatnonzero(y == UNLABELLED)[:3], y, 10)

    def test_nothing_labelled(self, strategy, data):
        X, _, _ = data
        y = np.full(len(X), UNLABELLED)
        result = strategy.query(X, y, batch_size=5, random_state=0, n_classes=N_CLASSES)
        check_result(result, np.arange(len(X)), y, 5)

    def test_nothing_labelled_and_no_n_classes(self, strategy, data):
        X, _, _ = data
        y = np.full(len(X), UNLABELLED)
        result = strategy.query(X, y, batch_size=3, random_state=0)
        check_result(result, np.arange(len(X)), y, 3)

    def test_one_labelled(self, strategy, data):
        X, y_true, _ = data
        y = np.full(len(X), UNLABELLED)
        y[4] = y_true[4]
        result = strategy.query(X, y, batch_size=5, random_state=0, n_classes=N_CLASSES)
        check_result(result, np.flatnonzero(y == UNLABELLED), y, 5)

    def test_all_but_a_few_labelled(self, strategy, data):
        X, y_true, _ = data
        y = y_true.copy()
        y[[3, 40, 77]] = UNLABELLED
        result = strategy.query(X, y, batch_size=5, random_state=0, n_classes=N_CLASSES)
        check_result(result, np.array([3, 40, 77]), y, 5)

    def test_all_labelled_gives_an_empty_result(self, strategy, data):
        X, y_true, _ = data
        result = strategy.query(X, y_true, batch_size=5, random_state=0, n_classes=N_CLASSES)
        assert len(result.indices) == len(result.scores) == len(result.reasons) == 0

    def test_empty_candidates_give_an_empty_result(self, strategy, data):
        X, _, y = data
        result = strategy.query(X, y, candidates=np.array([], dtype=np.int64), random_state=0, n_classes=N_CLASSES)
        assert len(result.indices) == 0

    def test_uses_a_given_model(self, strategy, data):
        X, _, y = data
        lab = y != UNLABELLED
        model = fit_model(X[lab], y[lab], n_classes=N_CLASSES, random_state=0)
        result = strategy.query(X, y, batch_size=4, random_state=0, model=model, n_classes=N_CLASSES)
        check_result(result, np.flatnonzero(y == UNLABELLED), y, 4)

    def test_binary_pool(self, strategy):
        X, y_true = make_pool(n=60, d=5, n_classes=2, seed=1)
        y = partially_labelled(y_true, per_class=3, seed=1)
        result = strategy.query(X, y, batch_size=4, random_state=0, n_classes=2)
        check_result(result, np.flatnonzero(y == UNLABELLED), y, 4)
