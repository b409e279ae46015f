"""Labels that look wrong: confident learning on out-of-fold predicted probabilities.

A model that never saw a scan's label (out of fold) predicts its class; when it confidently
predicts another class the label is suspect (Northcutt et al. 2021, "Confident learning"):
class j's threshold is the mean probability of j over the scans labelled j, a scan labelled y is
flagged when some other class j reaches its threshold and beats y, and flagged scans are ranked by
margin p(j) - p(y), largest first. A flag is a suggestion for a second opinion, never a relabel.

Arrays:
    X : (n, d) float, features already standardised by the caller
    y : (n,) int64 given class per scan (0..n_classes-1; no unlabelled rows)
    proba : (n, n_classes) float64 out-of-fold class probabilities

Pure: numpy and scikit-learn. Never imports Qt, sqlite or the store.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from aldesk.errors import NotEnoughLabelsError


def out_of_fold_proba(X, y, n_classes: int, *, folds: int = 5, sample_weight=None, C: float = 1.0,
                      random_state=0) -> np.ndarray:
    """(n, n_classes) probabilities from a logistic regression fitted without each scan's fold.

    Folds are stratified; with fewer scans of a class than ``folds`` the number of folds drops to
    that count. NotEnoughLabelsError when a class has fewer than two labelled scans."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X.shape == {X.shape}, y.shape == {y.shape}: need (n, d) and (n,)")
    if folds < 2:
        raise ValueError(f"folds == {folds}, must be >= 2")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"y holds classes outside 0..{n_classes - 1}")
    per_class = np.bincount(y, minlength=n_classes)
    if per_class.min() < 2:
        short = [str(k) for k in np.flatnonzero(per_class < 2)]
        raise NotEnoughLabelsError(
            f"class {', '.join(short)} has fewer than 2 labelled scans (counts {per_class.tolist()}); "
            "label at least 2 scans of every class before looking for label errors")
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    splitter = StratifiedKFold(n_splits=int(min(folds, per_class.min())), shuffle=True,
                               random_state=random_state)
    proba = np.zeros((len(y), n_classes))
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, test in splitter.split(X, y):
            model = LogisticRegression(C=C, max_iter=500)
            model.fit(X[train], y[train], sample_weight=w[train])
            proba[np.ix_(test, model.classes_)] = model.predict_proba(X[test])
    return proba


@dataclass
class LabelIssues:
    """Flagged scans, most suspicious first.

    indices : (m,) int64 rows of y flagged, by margin descending
    suggested : (m,) int64 the class the model believes
    margin : (m,) float64 p(suggested) - p(given), in (0, 1]
    self_confidence : (m,) float64 p(given)
    thresholds : (n_classes,) float64 per-class thresholds (mean self-confidence)
    ranking : (n,) int64 every row by margin descending (flagged first): the order to review in
    """

    indices: np.ndarray
    suggested: np.ndarray
    margin: np.ndarray
    self_confidence: np.ndarray
    thresholds: np.ndarray
    ranking: np.ndarray


def find_label_issues(y, proba) -> LabelIssues:
    """Confident-learning flags from given labels ``y`` and out-of-fold ``proba``."""
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] != len(y):
        raise ValueError(f"proba.shape == {proba.shape}, must be ({len(y)}, n_classes)")
    n, k = proba.shape
    rows = np.arange(n)
    thresholds = np.array([proba[y == j, j].mean() if (y == j).any() else 1.0 for j in range(k)])
    self_conf = proba[rows, y]
    # classes other than the given one that reach their threshold
    confident = (proba >= thresholds[None, :]) & (np.arange(k)[None, :] != y[:, None])
    other = np.where(confident, proba, -np.inf)
    best_other = other.argmax(axis=1)
    best_p = other[rows, best_other]
    flagged = np.isfinite(best_p) & (best_p > self_conf)
    # margin for every row (against the strongest other class, confident or not) gives the full order
    masked = proba.copy()
    masked[rows, y] = -np.inf
    margin_all = np.where(flagged, best_p, masked.max(axis=1)) - self_conf
    ranking = np.lexsort((rows, -margin_all, ~flagged))
    idx = ranking[: int(flagged.sum())]
    return LabelIssues(
        indices=idx.astype(np.int64),
        suggested=best_other[idx].astype(np.int64),
        margin=(best_p - self_conf)[idx],
        self_confidence=self_conf[idx],
        thresholds=thresholds,
        ranking=ranking.astype(np.int64),
    )
