"""The simulation core: its result shape (a contract), pairing, callbacks, and the summaries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aldesk.errors import CancelledError, LearningError
from aldesk.learning.simulation import aulc, format_table, plot_curves, simulate, stratified_initial

from .conftest import make_pool

RUN_KEYS = {"seed", "labels", "accuracy", "balanced_accuracy", "auc", "ece"}


@pytest.fixture(scope="module")
def small_run():
    X, y = make_pool(n=260, d=5, n_classes=3, seed=8)
    calls = []
    results = simulate(X, y, test_idx=np.arange(200, 260), strategies=["random", "entropy", "hybrid"], seeds=[0, 1, 2],
                       initial=9, batch=6, budget=30, n_classes=3, progress=lambda *a: calls.append(a))
    return X, y, results, calls


def test_result_shape_is_the_contract(small_run):
    _, _, results, _ = small_run
    assert set(results["strategies"]) == {"random", "entropy", "hybrid"}
    for name, entry in results["strategies"].items():
        assert {"runs", "aulc", "labels_to_match_random"} <= set(entry)
        assert isinstance(entry["aulc"], float)
        assert entry["labels_to_match_random"] is None or isinstance(entry["labels_to_match_random"], int)
        assert [r["seed"] for r in entry["runs"]] == [0, 1, 2]
        for run in entry["runs"]:
            assert set(run) == RUN_KEYS
            assert run["labels"] == [9, 15, 21, 27, 30]
            assert all(len(run[m]) == 5 for m in ("accuracy", "balanced_accuracy", "auc"))
    json.dumps(results, allow_nan=False)  # plain JSON: no NaN, no numpy types


def test_seeds_are_paired(small_run):
    _, _, results, _ = small_run
    first = {name: [r["accuracy"][0] for r in e["runs"]] for name, e in results["strategies"].items()}
    assert first["random"] == first["entropy"] == first["hybrid"]  # same initial set and model per seed


def test_progress_counts_every_step(small_run):
    _, _, _, calls = small_run
    assert len(calls) == 3 * 3 * 5
    assert calls[-1][:2] == (45, 45) and "hybrid, seed 2: 30 labels" == calls[-1][2]


def test_summaries(small_run):
    _, _, results, _ = small_run
    random = results["strategies"]["random"]
    assert random["aulc"] == pytest.approx(np.mean([aulc(r["labels"], r["accuracy"]) for r in random["runs"]]))
    target = np.mean([r["accuracy"][-1] for r in random["runs"]])
    assert results["random_final_accuracy"] == pytest.approx(target)
    for name, entry in results["strategies"].items():
        mean = np.mean([r["accuracy"] for r in entry["runs"]], axis=0)
        hit = [n for n, a in zip(entry["runs"][0]["labels"], mean) if a >= target - 1e-12]
        assert entry["labels_to_match_random"] == (hit[0] if hit else None)
    vs = results["strategies"]["hybrid"]["vs_random"]
    assert vs["pairs"] == 3 and vs["wins"] + vs["losses"] <= 3


def test_aulc_is_a_normalised_area():
    assert aulc([10, 20, 30], [0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert aulc([10, 20, 30], [0.0, 1.0, 1.0]) == pytest.approx(0.75)


def test_table_and_plot(small_run, tmp_path):
    _, _, results, _ = small_run
    table = format_table(results)
    for name in ("random", "entropy", "hybrid", "AULC", "p (Wilcoxon)"):
        assert name in table
    path = tmp_path / "curves.png"
    plot_curves(results, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stop_raises_cancelled():
    X, y = make_pool(n=120, n_classes=2)
    with pytest.raises(CancelledError, match=r"simulation stopped after 2 of 8 steps"):
        simulate(X, y, test_idx=np.arange(100, 120), strategies=["random"], seeds=2, initial=10, batch=10, budget=40,
                 n_classes=2, should_stop=iter([False, False, True]).__next__)


@pytest.mark.parametrize("kwargs, message", [
    ({"strategies": ["random", "best"]}, r"unknown strategy 'best'"),
    ({"strategies": []}, r"strategies is empty"),
    ({"budget": 500}, r"budget == 500, but the pool has only 100 scans; lower the budget"),
    ({"budget": 5}, r"budget == 5, must be >= 10"),
    ({"seeds": 0}, r"seeds == 0, must be >= 1"),
    ({"test_idx": []}, r"test_idx is empty"),
    ({"model": "svm"}, r"unknown model 'svm'"),
])
def test_bad_arguments(kwargs, message):
    X, y = make_pool(n=120, n_classes=2)
    args = dict(test_idx=np.arange(100, 120), strategies=["random"], seeds=1, initial=10, batch=10, budget=30,
                n_classes=2)
    args.update(kwargs)
    with pytest.raises(LearningError, match=message):
        simulate(X, y, **args)


def test_patients_in_the_test_set_leave_the_pool():
    X, y = make_pool(n=120, n_classes=2)
    groups = np.arange(120) // 2  # two scans per patient; test = scans 99..119 splits patient 49
    results = simulate(X, y, test_idx=np.arange(99, 120), strategies=["random"], seeds=1, initial=10, batch=10,
                       budget=20, n_classes=2, groups=groups)
    assert results["setup"]["pool_dropped_for_patient_overlap"] == 1
    assert results["setup"]["pool"] == 98


def test_stratified_initial_has_every_class():
    y = np.r_[np.zeros(95), np.ones(5)].astype(int)
    picks = stratified_initial(y, np.arange(100), 10, np.random.default_rng(0))
    assert len(picks) == 10 and set(y[picks]) == {0, 1}
