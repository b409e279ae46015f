"""A bootstrap committee of classifiers, for query-by-committee and BALD.

Each member is the same estimator fitted on a stratified bootstrap sample of the labels (every class in
every member), so members disagree exactly where the labels leave the model unsure. Members are left
uncalibrated: committee strategies compare them with each other, not with the truth.

Pure: numpy and scikit-learn; never Qt, sqlite or the store.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from aldesk.errors import LearningError
from aldesk.learning.models import (
    CALIBRATION_FOLDS,
    DEFAULT_MODEL,
    LOGISTIC_C,
    TrainedModel,
    _check_training,
    _seed,
    fit_model,
    select_C,
    single_threaded,
)

DEFAULT_MEMBERS = 5


class Committee:
    """K fitted members.

    member_proba(X) : (K, n, n_classes) float64; predict_proba(X) : (n, n_classes), their mean.
    """

    def __init__(self, members: list[TrainedModel], n_classes: int, name: str):
        self.members_ = list(members)
        self.n_classes_ = int(n_classes)
        self.name = name
        self.n_labels_ = members[0].n_labels_ if members else 0

    @property
    def n_members_(self) -> int:
        return len(self.members_)

    def member_proba(self, X) -> np.ndarray:
        return np.stack([m.predict_proba(X) for m in self.members_])

    def predict_proba(self, X) -> np.ndarray:
        return self.member_proba(X).mean(axis=0)

    def __repr__(self) -> str:
        return f"Committee(name={self.name!r}, members={self.n_members_}, n_classes={self.n_classes_})"


def stratified_bootstrap(y: np.ndarray, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Indices resampled with replacement within each class (same class counts, every class present)."""
    parts = []
    for k in range(n_classes):
        members = np.flatnonzero(y == k)
        if len(members):
            parts.append(rng.choice(members, size=len(members), replace=True))
    return np.sort(np.concatenate(parts))


def fit_committee(X, y, *, n_classes: int, name: str = DEFAULT_MODEL, n_members: int = DEFAULT_MEMBERS,
                  sample_weight=None, random_state=None, class_names=None) -> Committee:
    """Fit ``n_members`` bootstrap members. X : (n_labels, d) labelled rows only; y : (n_labels,)."""
    if isinstance(n_members, bool) or not isinstance(n_members, Integral) or n_members < 2:
        raise LearningError(f"n_members == {n_members!r}, must be an int >= 2")
    X, y, _, sample_weight = _check_training(X, y, n_classes, sample_weight, class_names)
    rng = np.random.default_rng(_seed(random_state))
    C = None
    if name == "logistic":  # choose the regularisation once, on all labels; members only resample
        counts = np.bincount(y, minlength=n_classes)
        folds = min(CALIBRATION_FOLDS, int(counts.min()))
        C = LOGISTIC_C
        if folds >= 2:
            with single_threaded():
                C, _, _ = select_C(X, y, n_classes=n_classes, folds=folds, sample_weight=sample_weight,
                                   random_state=rng)
    members = []
    for _ in range(n_members):
        idx = stratified_bootstrap(y, n_classes, rng)
        sw = None if sample_weight is None else sample_weight[idx]
        members.append(fit_model(X[idx], y[idx], n_classes=n_classes, name=name, sample_weight=sw,
                                 random_state=rng, calibrate=False, class_names=class_names, C=C))
    return Committee(members, n_classes, name)
