"""Uncertainty sampling: the scans the current model is least sure about.

Score functions (``<name>_scores``) take (n, C) calibrated probabilities and return (n,) float64
utilities, higher = more useful; they never fit anything, so the app can store scores and re-rank
cheaply. ``UncertaintyStrategy`` adds the model, the optional rare-class weighting and the reasons.
Falls back to cold start when no model can be trained yet.
"""

from __future__ import annotations

import numpy as np

from aldesk.errors import LearningError
from aldesk.learning.base import BaseStrategy, QueryInput, class_label, make_result, ordinal, top_k
from aldesk.learning.models import DEFAULT_MODEL, MODEL_NAMES
from aldesk.learning.ordinal import grade_variance_scores
from aldesk.learning.querymodel import model_proba


def _check_proba(proba) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise LearningError(f"proba must be (n_scans, n_classes >= 2), got shape {p.shape}")
    return p


def least_confidence_scores(proba) -> np.ndarray:
    """1 - max_k p_k: 0 for a certain prediction, 1 - 1/C at most."""
    p = _check_proba(proba)
    return 1.0 - p.max(axis=1)


def margin_scores(proba) -> np.ndarray:
    """1 - (p_first - p_second): 1 when the two likeliest classes tie, 0 when one class has it all."""
    p = _check_proba(proba)
    two = -np.partition(-p, 1, axis=1)[:, :2]
    return 1.0 - (two[:, 0] - two[:, 1])


def entropy_scores(proba) -> np.ndarray:
    """Shannon entropy in nats, -sum_k p_k log p_k: 0 when certain, log C (0.69 for two classes) at most."""
    p = _check_proba(proba)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.maximum(-(p * logs).sum(axis=1), 0.0)


SCORE_FUNCTIONS = {
    "least_confidence": least_confidence_scores,
    "margin": margin_scores,
    "entropy": entropy_scores,
    "grade_variance": grade_variance_scores,  # graded classes (learning.ordinal)
}
SCORE_LABELS = {"least_confidence": "least confidence", "margin": "margin score", "entropy": "entropy",
                "grade_variance": "grade variance"}


def rare_class_weights(counts: np.ndarray, strength: float = 0.5, cap: float = 10.0) -> np.ndarray:
    """(C,) weights >= 1 that grow as a class is rarer among the labels: (max_count / count)^strength."""
    c = np.maximum(np.asarray(counts, dtype=np.float64), 0.5)
    return np.minimum((c.max() / c) ** strength, cap)


def favour_rare_factors(proba: np.ndarray, counts: np.ndarray, strength: float = 0.5) -> np.ndarray:
    """(n,) multiplier sum_k p_k w_k: scans predicted to be of a rare class count up to ``cap`` times more."""
    return _check_proba(proba) @ rare_class_weights(counts, strength)


def rare_reason(p_row: np.ndarray, counts: np.ndarray, factor: float, class_names=None) -> str:
    weights = rare_class_weights(counts)
    k = int(np.argmax(p_row * (weights > 1.0))) if (weights > 1.0).any() else int(np.argmax(p_row))
    return f"predicted {class_label(k, class_names)} {p_row[k]:.0%} (rare class, weight x{factor:.1f})"


def check_model_params(strategy) -> None:
    if strategy.estimator not in MODEL_NAMES:
        raise LearningError(f"estimator == {strategy.estimator!r}; choose one of {', '.join(MODEL_NAMES)}")
    m = strategy.min_labels_per_class
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise LearningError(f"min_labels_per_class == {m!r}, must be an int >= 1")


class UncertaintyStrategy(BaseStrategy):
    """Top-b candidates by ``measure`` (least_confidence, margin or entropy) of the calibrated model.

    favour_rare : multiply scores by ``favour_rare_factors`` so likely rare-class scans come first
    estimator : model fitted when ``query`` gets ``model=None``
    min_labels_per_class : below this in any class, rank with cold start instead
    """

    def __init__(self, measure: str = "entropy", *, favour_rare: bool = False, estimator: str = DEFAULT_MODEL,
                 calibrate: bool = True, min_labels_per_class: int = 1, class_names=None):
        self.measure = measure
        self.favour_rare = favour_rare
        self.estimator = estimator
        self.calibrate = calibrate
        self.min_labels_per_class = min_labels_per_class
        self.class_names = class_names

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.measure

    def _check_params(self) -> None:
        if self.measure not in SCORE_FUNCTIONS:
            raise LearningError(f"measure == {self.measure!r}; choose one of {', '.join(SCORE_FUNCTIONS)}")
        check_model_params(self)

    def _query(self, data: QueryInput, model):
        proba, fallback = model_proba(self, data, model)
        if fallback is not None:
            return fallback
        u = SCORE_FUNCTIONS[self.measure](proba)
        score = u * favour_rare_factors(proba, data.class_counts) if self.favour_rare else u
        best = top_k(score, data.batch_size)
        label = SCORE_LABELS[self.measure]
        m = len(score)
        reasons = []
        for r, i in enumerate(best, 1):
            text = f"{label} {u[i]:.2f}, {ordinal(r)} most {'useful' if self.favour_rare else 'uncertain'} of {m:,}"
            if self.favour_rare:
                factor = float(score[i] / u[i]) if u[i] > 0 else 1.0
                text += "; " + rare_reason(proba[i], data.class_counts, factor, self.class_names)
            reasons.append(text)
        return make_result(self.name, data.candidates[best], score[best], reasons,
                           n_labels=int(len(data.labelled)))
