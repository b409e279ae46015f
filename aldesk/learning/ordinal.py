"""Graded classes (BI-RADS 1-5, diabetic retinopathy grades 0-4) learned as graded.

``CumulativeLogit``: the ordinal model of Frank & Hall (2001, "A simple approach to ordinal
classification"): one binary logistic model per threshold, P(grade > k | x), k = 0..K-2, combined as
P(grade = k) = P(> k-1) - P(> k). Unlike a multinomial model it knows that grade 3 lies between 2 and 4:
each threshold model sees every label, so a rare middle grade borrows strength from its neighbours.
The threshold probabilities are made monotone (a running minimum) before differencing.

``grade_variance_scores``: ordinal-aware uncertainty: the variance of the predicted grade,
sum_k p_k (k - E[k])^2, scaled to [0, 1]. A scan split between grades 1 and 3 is more uncertain than one
split between 1 and 2, which entropy cannot tell apart.

Pure numpy + scikit-learn; no Qt, sqlite or store.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class CumulativeLogit(ClassifierMixin, BaseEstimator):
    """scikit-learn style ordinal classifier; classes are the sorted integer grades seen in ``fit``.

    C : inverse L2 strength of every threshold model; class_weight : "balanced" (every grade counts
    equally, through sample weights) or None.
    """

    def __init__(self, C: float = 0.1, class_weight: str | None = None, max_iter: int = 1000):
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter

    def fit(self, X, y, sample_weight=None) -> "CumulativeLogit":
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(y, dtype=np.int64)
        self.classes_ = np.unique(y)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if self.class_weight == "balanced":
            counts = np.array([(y == c).sum() for c in self.classes_], dtype=np.float64)
            w = w * (len(y) / (len(self.classes_) * counts))[np.searchsorted(self.classes_, y)]
        self.coef_ = np.zeros((len(self.classes_) - 1, X.shape[1]))
        self.intercept_ = np.zeros(len(self.classes_) - 1)
        for k, c in enumerate(self.classes_[:-1]):
            clf = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(X, (y > c).astype(int), sample_weight=w)
            self.coef_[k], self.intercept_[k] = clf.coef_[0], clf.intercept_[0]
        return self

    def predict_proba(self, X) -> np.ndarray:
        z = np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_
        above = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))  # (n, K-1) P(grade > k)
        above = np.minimum.accumulate(above, axis=1)
        cum = np.hstack([np.ones((len(z), 1)), above, np.zeros((len(z), 1))])
        p = np.clip(cum[:, :-1] - cum[:, 1:], 1e-9, None)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def grade_variance_scores(proba) -> np.ndarray:
    """Variance of the predicted grade, divided by its maximum ((C-1)/2)^2: 0 when certain, 1 when split
    between the lowest and the highest grade."""
    p = np.asarray(proba, dtype=np.float64)
    grades = np.arange(p.shape[1], dtype=np.float64)
    mean = p @ grades
    var = p @ grades**2 - mean**2
    return np.maximum(var, 0.0) / max(((p.shape[1] - 1) / 2.0) ** 2, 1e-12)
