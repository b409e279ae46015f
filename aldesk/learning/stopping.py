""""When can I stop labelling?": the evidence, as pure functions over arrays.

Three signals, each honest about its uncertainty:

- **stability** (Bloodgood & Vijay-Shanker 2009, "A method for stopping active learning based on
  stabilizing predictions"): Cohen's κ between the predictions of successive models on a fixed set of
  scans (the *stop set*, labels not needed). When the last few models agree almost perfectly, more
  labels of the same kind will change little. Their setting: window 3, κ ≥ 0.99; ours 0.995 (below).
- **audit accuracy**: accuracy / balanced accuracy on the *audit sample* (uniformly random scans mixed
  into the queue), each audit scan predicted by a model that did not see it (cross-fitting), with a Wilson
  interval for accuracy and a bootstrap interval for balanced accuracy.
- **projection**: an inverse power law ``acc(n) = a − b·n^(−c)`` fitted to the audit learning curve (the
  models that the first n labels, in reading order, would give, scored on audit scans they did not see);
  bootstrapping the audit scans gives an interval for the accuracy at n + N labels and for the gain.

Never imports Qt or sqlite; nothing here knows about projects.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from aldesk.errors import LearningError

STABILITY_WINDOW = 3        # successive model pairs averaged (Bloodgood & Vijay-Shanker 2009)
# Their threshold was 0.99; our models are retrained every 10 labels, so successive models differ by
# fewer labels than their batches and agree more for nothing: 0.99 stopped up to 2 points early in
# simulation, 0.995 did not (tests/benchmarks/stopping-RESULTS.md: chosen on seeds 0-2, checked on 3-7).
STABILITY_KAPPA = 0.995
WORTHWHILE_GAIN = 0.01      # projected accuracy gain below which more labels are not worth it
MIN_AUDIT = 20              # fewer audit labels than this: no accuracy estimate worth showing
CURVE_SIZES = 6             # points of the audit learning curve
CURVE_FOLDS = 5             # cross-fitting folds over the audit scans


# ====================================================================================== stability
def prediction_agreement(a, b, n_classes: int) -> tuple[float, float]:
    """(Cohen's κ, share of scans with the same predicted class) of two models' predictions.

    a, b : (n,) int class indices on the same scans. κ is 1.0 when both predict one single class for
    every scan (they agree and nothing else can be said), NaN when there are no scans."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1:
        raise LearningError(f"a.shape == {a.shape}, b.shape == {b.shape}: must be equal 1-d")
    if len(a) == 0:
        return float("nan"), float("nan")
    k = int(max(n_classes, a.max() + 1, b.max() + 1))
    confusion = np.bincount(a * k + b, minlength=k * k).reshape(k, k).astype(np.float64)
    n = confusion.sum()
    observed = np.trace(confusion) / n
    expected = float((confusion.sum(axis=1) * confusion.sum(axis=0)).sum() / n ** 2)
    if expected >= 1.0 - 1e-12:
        return (1.0 if observed >= 1.0 - 1e-12 else 0.0), float(observed)
    return float((observed - expected) / (1.0 - expected)), float(observed)


@dataclass
class Stability:
    """kappas[i]: κ between model i and model i+1 of the history (oldest first); labels[i]: training
    labels of model i+1; mean_kappa / agreement: means over the last ``window`` pairs (None if fewer);
    stable: mean_kappa ≥ threshold with a full window; n_models: models compared (after merging repeats)."""

    kappas: list[float] = field(default_factory=list)
    agreements: list[float] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    window: int = STABILITY_WINDOW
    threshold: float = STABILITY_KAPPA
    mean_kappa: float | None = None
    agreement: float | None = None
    stable: bool = False
    n_models: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def stability(history: list[tuple[int, np.ndarray, np.ndarray]], n_classes: int, *,
              window: int = STABILITY_WINDOW, threshold: float = STABILITY_KAPPA) -> Stability:
    """κ between successive models on the stop set.

    history : oldest first, one (n_labels, scan_ids (m,) int64, predicted (m,) int) per model. Each pair
    is compared on the scans both predicted (the stop set can grow with imports). A model trained on no
    more labels than the one before it (a retrain without new labels) replaces that one: agreement with
    itself says nothing."""
    if window < 1:
        raise LearningError(f"window == {window}, must be >= 1")
    kept: list[tuple[int, np.ndarray, np.ndarray]] = []
    for n, ids, pred in history:
        if kept and n <= kept[-1][0]:
            kept[-1] = (n, ids, pred)
        else:
            kept.append((int(n), np.asarray(ids, dtype=np.int64), np.asarray(pred, dtype=np.int64)))
    out = Stability(window=window, threshold=threshold, n_models=len(kept))
    for (_, ids0, p0), (n1, ids1, p1) in zip(kept, kept[1:]):
        common, i0, i1 = np.intersect1d(ids0, ids1, assume_unique=True, return_indices=True)
        kappa, agree = prediction_agreement(p0[i0], p1[i1], n_classes)
        out.kappas.append(kappa)
        out.agreements.append(agree)
        out.labels.append(n1)
    if len(out.kappas) >= window:
        out.mean_kappa = float(np.mean(out.kappas[-window:]))
        out.agreement = float(np.mean(out.agreements[-window:]))
        out.stable = bool(out.mean_kappa >= threshold)
    return out


# ====================================================================================== audit accuracy
def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion: sound at 0 or n successes and for small n."""
    from scipy.stats import norm

    if not 0.0 < confidence < 1.0:
        raise LearningError(f"confidence == {confidence}, must be in (0, 1)")
    if n <= 0:
        return float("nan"), float("nan")
    z = float(norm.ppf(0.5 + confidence / 2.0))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))  # p inside despite rounding


def _balanced(y: np.ndarray, correct: np.ndarray, weights: np.ndarray, n_classes: int) -> float:
    hits = np.bincount(y, weights=weights * correct, minlength=n_classes)
    seen = np.bincount(y, weights=weights, minlength=n_classes)
    present = seen > 0
    return float((hits[present] / seen[present]).mean()) if present.any() else float("nan")


def audit_estimate(y_true, y_pred, n_classes: int, *, confidence: float = 0.95, n_boot: int = 1000,
                   random_state=0) -> dict:
    """Accuracy and balanced accuracy of predictions on audit scans, with intervals.

    y_true, y_pred : (n,) class indices. Returns {"n", "accuracy", "ci" (Wilson), "balanced_accuracy",
    "balanced_ci" (percentile bootstrap over scans), "confidence"}; figures None when n == 0."""
    y = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    if y.shape != pred.shape:
        raise LearningError(f"y_true has shape {y.shape} but y_pred {pred.shape}")
    n = len(y)
    out = {"n": int(n), "accuracy": None, "ci": None, "balanced_accuracy": None, "balanced_ci": None,
           "confidence": confidence}
    if n == 0:
        return out
    correct = (y == pred).astype(np.float64)
    out["accuracy"] = float(correct.mean())
    out["ci"] = list(wilson_interval(int(correct.sum()), n, confidence))
    out["balanced_accuracy"] = _balanced(y, correct, np.ones(n), n_classes)
    if n_boot > 0:
        rng = np.random.default_rng(random_state)
        draws = np.array([_balanced(y, correct, np.bincount(rng.integers(0, n, n), minlength=n).astype(float),
                                    n_classes) for _ in range(n_boot)])
        tail = (1.0 - confidence) / 2.0
        out["balanced_ci"] = [float(v) for v in np.nanquantile(draws, [tail, 1.0 - tail])]
    return out


# ====================================================================================== learning curve
def curve_sizes(n_labels: int, first: int, points: int = CURVE_SIZES) -> np.ndarray:
    """Label counts at which to rebuild the model: geometric from ``first`` to ``n_labels``."""
    first = max(2, min(first, n_labels))
    return np.unique(np.round(np.geomspace(first, n_labels, points)).astype(np.int64))


def audit_learning_curve(X, y, order, audit, sizes, *, fit, folds: int = CURVE_FOLDS, random_state=0,
                         should_stop=lambda: False, fold_of=None, starts=None) -> np.ndarray:
    """Whether each audit scan is predicted right by the model the first n labels give, for n in sizes.

    X : (n_scans, d) standardised features; y : (n_scans,) class index (UNLABELLED < 0 where none);
    order : (n_labels,) indices of labelled scans in the order they were read; audit : indices of audit
    scans (labelled); sizes : label counts. fit(rows) -> a model fitted on X[rows], y[rows] (the caller
    adds weights, model choice) with ``predict_proba``, or raises LearningError (e.g. a class missing) —
    then that entry is NaN. Cross-fitting: the audit scans are
    split into ``folds`` folds; the model for fold f never sees fold f. Returns (len(sizes), len(audit))
    float64 of 1.0 (right), 0.0 (wrong) or NaN (no model).
    fold_of : (len(audit),) the audit scans' folds when the caller has them (else random, balanced);
    starts : per fold, a model that never saw that fold's audit scans (the training's stable-fold models):
    fit(rows, start) then starts from it, a warm start that cannot leak the held-out scans into the fit."""
    order = np.asarray(order, dtype=np.int64)
    audit = np.asarray(audit, dtype=np.int64)
    if fold_of is not None:
        fold_of = np.asarray(fold_of, dtype=np.int64)
        folds = int(fold_of.max()) + 1 if len(fold_of) else 1
    else:
        folds = max(2, min(folds, len(audit)))
        rng = np.random.default_rng(random_state)
        fold_of = np.empty(len(audit), dtype=np.int64)
        fold_of[rng.permutation(len(audit))] = np.arange(len(audit)) % folds
    in_fold = np.zeros((folds, len(X)), dtype=bool)
    for f in range(folds):
        in_fold[f, audit[fold_of == f]] = True
    out = np.full((len(sizes), len(audit)), np.nan)
    for s, size in enumerate(sizes):
        head = order[:int(size)]
        for f in range(folds):
            if should_stop():
                from aldesk.errors import CancelledError

                raise CancelledError("learning curve cancelled")
            train = head[~in_fold[f, head]]
            test = fold_of == f
            if not test.any():
                continue
            try:
                model = fit(train) if starts is None else fit(train, starts[f])
            except LearningError:
                continue
            pred = model.predict_proba(X[audit[test]]).argmax(axis=1)
            out[s, test] = (pred == y[audit[test]]).astype(np.float64)
    return out


def _power_law(n, a, b, c):
    return a - b * np.power(n, -c)


def fit_power_law(sizes, accuracy) -> tuple[float, float, float] | None:
    """(a, b, c) of ``acc(n) = a − b·n^(−c)`` by least squares (a ≤ 1, b ≥ 0, 0.05 ≤ c ≤ 2), or None
    when fewer than 3 finite points or the fit fails. ``a`` is the accuracy the curve levels off at."""
    from scipy.optimize import curve_fit

    x = np.asarray(sizes, dtype=np.float64)
    yv = np.asarray(accuracy, dtype=np.float64)
    ok = np.isfinite(yv)
    x, yv = x[ok], yv[ok]
    if len(x) < 3:
        return None
    guess = (min(1.0, float(yv.max()) + 0.02), max(1e-3, float(yv.max() - yv.min()) * float(x[0]) ** 0.5), 0.5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = curve_fit(_power_law, x, yv, p0=guess, bounds=([0.0, 0.0, 0.05], [1.0, 100.0, 2.0]),
                                  maxfev=2000)
    except (RuntimeError, ValueError):
        return None
    return tuple(float(p) for p in params)


def project_accuracy(sizes, correct: np.ndarray, more: int, *, confidence: float = 0.95, n_boot: int = 200,
                     random_state=0) -> dict | None:
    """Accuracy expected after ``more`` further labels, from the audit learning curve.

    sizes : (S,) label counts; correct : (S, n_audit) from :func:`audit_learning_curve`. Fits the power
    law to the mean curve, and again to ``n_boot`` resamples of the audit scans for the interval.
    Returns {"labels", "more", "accuracy", "ci", "gain", "gain_ci", "plateau", "curve": [[n, acc], ...]}:
    gain is the fitted curve's rise from now to now + more, accuracy the audit accuracy now plus that gain
    (anchored where the audit stands, not where the curve passes), "plateau" the curve's asymptote; or None
    when the curve cannot be fitted."""
    sizes = np.asarray(sizes, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if len(sizes) < 3 or correct.shape[1] == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(correct, axis=1)
    params = fit_power_law(sizes, mean)
    if params is None:
        return None
    now, later = float(sizes[-1]), float(sizes[-1] + more)
    rng = np.random.default_rng(random_state)
    at, gains = [], []
    for _ in range(n_boot):
        cols = rng.integers(0, correct.shape[1], correct.shape[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p = fit_power_law(sizes, np.nanmean(correct[:, cols], axis=1))
        if p is not None:
            g = _power_law(later, *p) - _power_law(now, *p)
            at.append(min(1.0, np.nanmean(correct[-1, cols]) + g))
            gains.append(g)
    tail = (1.0 - confidence) / 2.0
    ci = [float(v) for v in np.quantile(at, [tail, 1 - tail])] if len(at) >= n_boot / 2 else None
    gain_ci = [float(v) for v in np.quantile(gains, [tail, 1 - tail])] if len(gains) >= n_boot / 2 else None
    gain = float(_power_law(later, *params) - _power_law(now, *params))
    return {"labels": int(later), "more": int(more), "accuracy": float(min(1.0, mean[-1] + gain)), "ci": ci,
            "gain": gain, "gain_ci": gain_ci,
            "plateau": params[0], "curve": [[int(s), None if not np.isfinite(m) else float(m)]
                                             for s, m in zip(sizes, mean)]}


# ====================================================================================== advice
@dataclass
class Advice:
    """stop: the evidence says more labels of this kind are unlikely to pay; text: one paragraph for
    a project lead; reasons: the separate findings behind it."""

    stop: bool
    text: str
    reasons: list[str]


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def recommend(*, labels: int, stab: Stability | None, audit: dict | None, projected: dict | None,
              ceiling: float | None = None, worthwhile: float = WORTHWHILE_GAIN,
              min_audit: int = MIN_AUDIT) -> Advice:
    """Turn the figures into a recommendation. Stop when the predictions have stabilised (mean κ over
    the window ≥ threshold) and the audit learning curve (once the audit sample has ``min_audit``
    scans) does not expect a worthwhile gain (point estimate < ``worthwhile``); or when the audit
    accuracy's interval reaches the readers' own agreement (a model cannot be shown to beat its teachers)."""
    reasons: list[str] = []
    if stab is not None and stab.mean_kappa is not None:
        n_models = stab.window + 1
        reasons.append(f"{'the model has stopped changing' if stab.stable else 'the model is still changing'}: "
                       f"{n_models} successive models agree on {_pct(stab.agreement)} of scans "
                       f"(κ {stab.mean_kappa:.3f}; stable from κ {stab.threshold:.3f})")
    else:
        have = 0 if stab is None else stab.n_models
        reasons.append(f"not enough models yet to judge stability ({have} of {STABILITY_WINDOW + 1} needed)")
    audit_ok = audit is not None and audit.get("accuracy") is not None and audit["n"] >= min_audit
    if audit_ok:
        lo, hi = audit["ci"]
        reasons.append(f"estimated accuracy {audit['accuracy']:.2f} ± {(hi - lo) / 2:.2f} "
                       f"(from {audit['n']} audit scans)")
    else:
        n = 0 if audit is None else audit.get("n", 0)
        reasons.append(f"only {n} audit scans read so far: the accuracy estimate needs at least {min_audit}")
    gain_small = None  # the projection counts only once the audit sample is big enough to fit a curve on
    if projected is not None and audit_ok:
        g = projected["gain"]
        ci = projected.get("gain_ci")
        span = f" (95 % interval {ci[0]:+.3f} to {ci[1]:+.3f})" if ci else ""
        reasons.append(f"{projected['more']} more labels would change accuracy by about {g:+.3f}{span}")
        gain_small = g < worthwhile
    at_ceiling = bool(audit_ok and ceiling is not None and audit["ci"][1] >= ceiling)
    if audit_ok and ceiling is not None:
        reasons.append(f"the readers' own agreement is {ceiling:.2f}: "
                       f"{'the model is as good as can be shown against their labels' if at_ceiling else 'that ceiling is not reached yet'}")
    stable = bool(stab is not None and stab.stable)
    # stability alone stops too early where the curve still rises slowly (digits in
    # tests/benchmarks/stopping-RESULTS.md): the audit curve must agree
    stop = (stable and gain_small is True) or at_ceiling
    if stop:
        head = "You can stop labelling for the model's sake"
    elif stable and gain_small is None:
        head = ("The model has stabilised; keep labelling until the audit sample can confirm that the accuracy "
                "has levelled off")
    elif stable:
        head = "The model has stabilised but the audit curve still rises: keep labelling a little longer"
    else:
        head = "Keep labelling"
    return Advice(stop=stop, text=f"{head} ({labels} labels): " + "; ".join(reasons) + ".", reasons=reasons)


# ====================================================================================== audit sample
def audit_picks(keys, eligible, k: int) -> np.ndarray:
    """The ``k`` eligible scans with the smallest audit keys (ascending): the next audit scans.

    keys : (n,) float in [0, 1), a fixed random number per scan, independent of the images and of the
    model; eligible : (n,) bool (unread and not already waiting in a queue). Drawing in key order is a
    uniform draw from the eligible scans, and it makes the audit set a prefix of one random order."""
    keys = np.asarray(keys, dtype=np.float64)
    idx = np.flatnonzero(np.asarray(eligible, dtype=bool))
    if k <= 0 or len(idx) == 0:
        return np.zeros(0, dtype=np.int64)
    return idx[np.argsort(keys[idx], kind="stable")[:k]]


def audit_members(keys, drawn, labelled) -> np.ndarray:
    """Indices of the audit set: labelled scans whose key is at most the largest key ever drawn.

    Every scan below that key is in the audit set whether the audit or the active queue brought it to a
    reader, so the set is all labelled scans of a prefix of one random order of the whole project: a
    uniform random sample (reads still missing in the prefix are reported as pending by the caller)."""
    keys = np.asarray(keys, dtype=np.float64)
    drawn = np.asarray(drawn, dtype=bool)
    if not drawn.any():
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero((keys <= keys[drawn].max()) & np.asarray(labelled, dtype=bool))


def audit_evidence(X, y, order, audit, *, n_classes: int, fit, more: int, first: int = 20,
                   points: int = CURVE_SIZES, folds: int = CURVE_FOLDS, confidence: float = 0.95,
                   n_boot: int = 200, random_state=0, should_stop=lambda: False) -> dict:
    """The audit accuracy of the model all labels give (cross-fitted) and the projection at +``more``.

    Arguments as :func:`audit_learning_curve`; the last curve point uses every label, so its row is the
    cross-fitted audit prediction of (nearly) the current model: each audit scan is predicted by a model
    trained on all labels but its fold's. Returns {"audit": audit_estimate(...), "projected":
    project_accuracy(...) or None, "sizes": [...]}."""
    order = np.asarray(order, dtype=np.int64)
    audit = np.asarray(audit, dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    if len(audit) == 0 or len(order) == 0:
        return {"audit": audit_estimate(np.zeros(0, np.int64), np.zeros(0, np.int64), n_classes),
                "projected": None, "sizes": []}
    sizes = curve_sizes(len(order), first, points)
    correct = audit_learning_curve(X, y, order, audit, sizes, fit=fit, folds=folds, random_state=random_state,
                                   should_stop=should_stop)
    last = correct[-1]
    ok = np.isfinite(last)
    truth = y[audit[ok]]
    pred = np.where(last[ok] == 1.0, truth, -1)  # only right/wrong matters below
    est = audit_estimate(truth, pred, n_classes, confidence=confidence, n_boot=n_boot, random_state=random_state)
    projected = project_accuracy(sizes, correct, more, confidence=confidence, n_boot=n_boot,
                                 random_state=random_state)
    return {"audit": est, "projected": projected, "sizes": [int(s) for s in sizes]}



def queue_vs_random(X, y, queue_order, audit, *, fit, folds: int = CURVE_FOLDS, confidence: float = 0.95,
                    n_boot: int = 1000, random_state=0) -> dict | None:
    """Does the active queue pick better scans than chance, on this project's own data?

    With the same number of labels k, compare the model fitted on the first k scans the queue brought
    (queue_order: labelled non-audit indices in reading order) with the model fitted on k audit scans
    (uniformly random), both scored on the audit fold neither saw (cross-fitting: k ≈ (folds−1)/folds of
    the audit set). The comparison is about the first k queue labels; later queue labels cannot be
    matched by as many random ones. X, y, fit as :func:`audit_learning_curve`. Returns {"labels" (k, mean
    over folds), "queue_accuracy", "random_accuracy", "difference" (queue − random), "difference_ci"
    (bootstrap over audit scans), "n"} or None when no fold could be compared (too few queue labels, a
    class missing from either side)."""
    y = np.asarray(y, dtype=np.int64)
    queue_order = np.asarray(queue_order, dtype=np.int64)
    audit = np.asarray(audit, dtype=np.int64)
    if len(audit) < 2:
        return None
    folds = max(2, min(folds, len(audit)))
    rng = np.random.default_rng(random_state)
    fold_of = np.empty(len(audit), dtype=np.int64)
    fold_of[rng.permutation(len(audit))] = np.arange(len(audit)) % folds
    q_right = np.full(len(audit), np.nan)
    r_right = np.full(len(audit), np.nan)
    sizes = []
    for f in range(folds):
        test = fold_of == f
        train_random = audit[~test]
        k = len(train_random)
        if len(queue_order) < k:
            continue
        try:
            model_r, model_q = fit(train_random), fit(queue_order[:k])
        except LearningError:
            continue
        truth = y[audit[test]]
        r_right[test] = model_r.predict_proba(X[audit[test]]).argmax(axis=1) == truth
        q_right[test] = model_q.predict_proba(X[audit[test]]).argmax(axis=1) == truth
        sizes.append(k)
    ok = np.isfinite(q_right) & np.isfinite(r_right)
    if not ok.any():
        return None
    diff = q_right[ok] - r_right[ok]
    n = int(ok.sum())
    ci = None
    if n_boot > 0:
        boots = diff[rng.integers(0, n, (n_boot, n))].mean(axis=1)
        tail = (1.0 - confidence) / 2.0
        ci = [float(v) for v in np.quantile(boots, [tail, 1 - tail])]
    return {"labels": int(round(float(np.mean(sizes)))), "queue_accuracy": float(q_right[ok].mean()),
            "random_accuracy": float(r_right[ok].mean()), "difference": float(diff.mean()), "difference_ci": ci,
            "n": n}
