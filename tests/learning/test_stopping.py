"""The pure "when can I stop?" evidence: stability κ, audit intervals, learning-curve projection, advice."""

from __future__ import annotations

import numpy as np
import pytest

from aldesk.errors import LearningError, NotEnoughLabelsError
from aldesk.learning import stopping as st


def test_prediction_agreement_matches_cohen_kappa():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 200)
    b = np.where(rng.random(200) < 0.8, a, rng.integers(0, 3, 200))
    kappa, agree = st.prediction_agreement(a, b, 3)
    assert kappa == pytest.approx(cohen_kappa_score(a, b))
    assert agree == pytest.approx((a == b).mean())
    assert st.prediction_agreement(a, a, 3) == (1.0, 1.0)
    assert st.prediction_agreement(np.zeros(5, int), np.zeros(5, int), 2) == (1.0, 1.0)  # one class, agreeing
    with pytest.raises(LearningError, match="must be equal 1-d"):
        st.prediction_agreement(a, b[:10], 3)


def test_stability_window_threshold_and_repeated_label_counts():
    ids = np.arange(100)
    base = np.zeros(100, int)
    base[:50] = 1
    flipped = base.copy()
    flipped[:10] = 0
    # models at 20, 30, 30 (a retrain without new labels replaces its twin), 40, 50
    history = [(20, ids, flipped), (30, ids, flipped), (30, ids, base), (40, ids, base), (50, ids, base)]
    s = st.stability(history, 2)
    assert s.labels == [30, 40, 50] and len(s.kappas) == 3
    assert s.kappas[0] < 0.9 and s.kappas[1:] == [1.0, 1.0]
    assert s.mean_kappa == pytest.approx(np.mean(s.kappas)) and not s.stable
    s = st.stability(history + [(60, ids, base)], 2)
    assert s.mean_kappa == 1.0 and s.stable and s.agreement == 1.0
    assert st.stability(history[:2], 2).mean_kappa is None  # fewer pairs than the window
    assert s.n_models == 5
    assert "(1 of 4 needed)" in st.recommend(labels=20, stab=st.stability(history[:1], 2), audit=None,
                                             projected=None).text


def test_stability_compares_scans_both_models_predicted():
    a_ids, b_ids = np.array([1, 2, 3, 4]), np.array([3, 4, 5, 6])
    s = st.stability([(10, a_ids, np.array([0, 0, 1, 0])), (20, b_ids, np.array([1, 0, 1, 1]))], 2, window=1)
    assert s.agreement == 1.0  # scans 3 and 4 agree; 1, 2, 5, 6 are not compared


def test_wilson_interval_known_values():
    lo, hi = st.wilson_interval(8, 10)
    assert (round(lo, 3), round(hi, 3)) == (0.490, 0.943)
    assert st.wilson_interval(0, 20)[0] == 0.0 and st.wilson_interval(20, 20) == (pytest.approx(0.8389, abs=1e-4), 1.0)
    assert np.isnan(st.wilson_interval(0, 0)[0])
    with pytest.raises(LearningError, match="confidence == 1.5"):
        st.wilson_interval(1, 2, 1.5)


def test_audit_estimate_accuracy_balanced_and_intervals():
    y = np.array([0] * 80 + [1] * 20)
    pred = y.copy()
    pred[:8] = 1      # 90 % of class 0 right
    pred[80:90] = 0   # 50 % of class 1 right
    est = st.audit_estimate(y, pred, 2, n_boot=300)
    assert est["accuracy"] == pytest.approx(0.82) and est["balanced_accuracy"] == pytest.approx(0.70)
    assert est["ci"][0] < 0.82 < est["ci"][1] and est["balanced_ci"][0] < 0.70 < est["balanced_ci"][1]
    assert st.audit_estimate([], [], 2)["accuracy"] is None


def test_power_law_fit_recovers_a_known_curve():
    n = np.array([20, 40, 80, 160, 320, 640])
    acc = 0.9 - 0.8 * n ** -0.5
    a, b, c = st.fit_power_law(n, acc)
    assert (a, b, c) == (pytest.approx(0.9, abs=1e-3), pytest.approx(0.8, rel=1e-2), pytest.approx(0.5, rel=1e-2))
    assert st.fit_power_law(n[:2], acc[:2]) is None


def test_projection_from_audit_correctness_has_gain_and_interval():
    rng = np.random.default_rng(0)
    sizes = np.array([20, 40, 80, 160, 320])
    p = 0.95 - 1.5 * sizes ** -0.6
    correct = (rng.random((len(sizes), 400)) < p[:, None]).astype(float)
    proj = st.project_accuracy(sizes, correct, 320, n_boot=100)
    true_gain = (0.95 - 1.5 * 640 ** -0.6) - p[-1]
    assert proj["labels"] == 640 and proj["more"] == 320
    assert proj["gain_ci"][0] <= true_gain <= proj["gain_ci"][1]
    assert proj["accuracy"] == pytest.approx(correct[-1].mean() + proj["gain"])
    assert proj["ci"][0] <= proj["accuracy"] <= proj["ci"][1]
    assert st.project_accuracy(sizes[:2], correct[:2], 10) is None


class _Recorder:
    """fit(rows) that remembers what it trained on and predicts class 0 (or raises for a missing class)."""

    def __init__(self, y):
        self.y, self.calls = y, []

    def __call__(self, rows):
        self.calls.append(np.asarray(rows))
        if len(np.unique(self.y[rows])) < 2:
            raise NotEnoughLabelsError("a class has no label")
        return self

    def predict_proba(self, X):
        return np.tile([1.0, 0.0], (len(X), 1))


def test_audit_learning_curve_cross_fits_and_follows_reading_order():
    rng = np.random.default_rng(1)
    n = 60
    X = rng.normal(size=(n, 3)).astype(np.float32)
    y = rng.integers(0, 2, n)
    order = rng.permutation(n)
    audit = order[::4]
    fit = _Recorder(y)
    right = st.audit_learning_curve(X, y, order, audit, [10, 60], fit=fit, folds=3)
    assert right.shape == (2, len(audit))
    assert np.array_equal(right[1], (y[audit] == 0).astype(float))
    for rows in fit.calls:
        assert len(set(rows.tolist()) & set(audit.tolist())) <= len(audit) - len(audit) // 3  # a fold is out
    big = [set(r.tolist()) for r in fit.calls if len(r) > 10]
    assert len(big) == 3 and all(set(order[:60].tolist()) - b <= set(audit.tolist()) for b in big)
    assert all(len(r) <= 10 for r in fit.calls[:3])  # the first point uses only the first 10 labels read


def test_audit_picks_and_members():
    keys = np.array([0.5, 0.1, 0.9, 0.3, 0.2])
    eligible = np.array([True, True, True, False, True])
    assert st.audit_picks(keys, eligible, 2).tolist() == [1, 4]
    drawn = np.array([False, False, False, False, True])  # largest drawn key 0.2
    labelled = np.array([True, True, True, True, True])
    assert st.audit_members(keys, drawn, labelled).tolist() == [1, 4]
    assert st.audit_members(keys, np.zeros(5, bool), labelled).tolist() == []


def test_queue_vs_random_uses_equal_label_counts_and_held_out_folds():
    rng = np.random.default_rng(2)
    y = np.tile([0, 1], 50)
    X = rng.normal(size=(100, 2)).astype(np.float32)
    audit, queue = np.arange(0, 20), np.arange(20, 100)
    fit = _Recorder(y)
    out = st.queue_vs_random(X, y, queue, audit, fit=fit, folds=4, n_boot=50)
    assert out["labels"] == 15 and out["n"] == 20
    assert all(len(c) == 15 for c in fit.calls)
    assert out["difference"] == 0.0  # both models predict class 0
    assert st.queue_vs_random(X, y, queue[:5], audit, fit=fit) is None  # too few queue labels


def test_recommendation_reads_like_a_sentence_and_follows_the_evidence():
    stable = st.Stability(kappas=[0.995, 0.996, 0.998], agreements=[0.99, 0.992, 0.994], labels=[30, 40, 50],
                          mean_kappa=0.9963, agreement=0.992, stable=True)
    audit = {"n": 60, "accuracy": 0.87, "ci": [0.84, 0.90]}
    flat = {"more": 200, "gain": 0.004, "gain_ci": [0.0, 0.01]}
    rising = {"more": 200, "gain": 0.03, "gain_ci": [0.01, 0.05]}
    advice = st.recommend(labels=500, stab=stable, audit=audit, projected=flat)
    assert advice.stop
    assert "the model has stopped changing: 4 successive models agree on 99.2 % of scans" in advice.text
    assert "estimated accuracy 0.87 ± 0.03" in advice.text
    assert not st.recommend(labels=500, stab=stable, audit=audit, projected=rising).stop
    # stable, but too few audit scans to check the curve: not yet
    early = st.recommend(labels=150, stab=stable, audit={"n": 12, "accuracy": 0.9, "ci": [0.6, 0.98]}, projected=flat)
    assert not early.stop and early.text.startswith("The model has stabilised; keep labelling until the audit")
    unstable = st.Stability(kappas=[0.9, 0.92, 0.95], agreements=[0.95, 0.96, 0.97], labels=[30, 40, 50],
                            mean_kappa=0.923, agreement=0.96, stable=False)
    keep = st.recommend(labels=50, stab=unstable, audit=None, projected=None)
    assert not keep.stop and keep.text.startswith("Keep labelling") and "still changing" in keep.text
    # the readers' ceiling reached: stop even while the model still moves
    assert st.recommend(labels=500, stab=unstable, audit=audit, projected=rising, ceiling=0.88).stop


def test_audit_learning_curve_with_given_folds_starts_each_fit_from_that_folds_model():
    """The GUI retrain passes the audit scans' stable folds and, per fold, the training's fold model (which
    never saw that fold's scans): each audit fit starts from the model of the fold it holds out."""
    rng = np.random.default_rng(2)
    n = 60
    X = rng.normal(size=(n, 3)).astype(np.float32)
    y = rng.integers(0, 2, n)
    order = rng.permutation(n)
    audit = order[::4]
    fold_of = np.arange(len(audit)) % 3
    fold_of[fold_of == 1] = 0  # fold 1 holds no audit scan: no fit for it
    starts = ["model of fold 0", "model of fold 1", "model of fold 2"]
    calls = []

    class Model:
        def predict_proba(self, Xs):
            return np.tile([1.0, 0.0], (len(Xs), 1))

    def fit(rows, start):
        calls.append((set(rows.tolist()), start))
        return Model()

    right = st.audit_learning_curve(X, y, order, audit, [n], fit=fit, fold_of=fold_of, starts=starts)
    assert np.array_equal(right[0], (y[audit] == 0).astype(float))
    assert [start for _, start in calls] == ["model of fold 0", "model of fold 2"]
    for (rows, _), f in zip(calls, (0, 2)):
        assert not rows & set(audit[fold_of == f].tolist())        # its own audit scans held out
        assert set(audit[fold_of != f].tolist()) <= rows            # the other folds' audit scans in
