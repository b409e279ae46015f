"""What "better" means for a project: the objective it names, scored on probabilities, and what follows.

A project names one objective (setting ``objective``); the simulation's learning curves and AULC, the
reports' headline figure and the model's class weighting follow it:

* ``accuracy``: share of scans called right. Classes are weighed as they come (no re-weighting): the
  model should be right on the scans it will see, and re-weighting towards rare classes costs accuracy.
* ``balanced_accuracy``: mean per-class recall; classes weighed equally ("balanced") in the fit.
* ``sensitivity_at_specificity``: binary screening (positive = the second class): the share of positives
  found at the threshold that keeps ``specificity`` (default 0.90) of negatives; classes weighed equally.
* ``quadratic_kappa``: Cohen's kappa with quadratic weights, for graded (ordered) classes; no re-weighting.

Pure numpy; no Qt, sqlite or store.
"""

from __future__ import annotations

import numpy as np

from aldesk.errors import LearningError

OBJECTIVES = ("accuracy", "balanced_accuracy", "sensitivity_at_specificity", "quadratic_kappa")
DEFAULT_OBJECTIVE = "accuracy"
DEFAULT_SPECIFICITY = 0.90


def check_objective(objective: str, n_classes: int | None = None) -> str:
    if objective not in OBJECTIVES:
        raise LearningError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if objective == "sensitivity_at_specificity" and n_classes is not None and n_classes != 2:
        raise LearningError(f"objective 'sensitivity_at_specificity' needs 2 classes, this has {n_classes}; "
                            f"choose balanced_accuracy")
    return objective


def class_weighting(objective: str) -> str | None:
    """"balanced" when the objective counts every class equally, else None (weigh scans as they come)."""
    check_objective(objective)
    return "balanced" if objective in ("balanced_accuracy", "sensitivity_at_specificity") else None


def quadratic_kappa(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Cohen's kappa with quadratic disagreement weights (1.0 perfect, 0.0 chance); nan if undefined."""
    y = np.asarray(y, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    if len(y) == 0:
        return float("nan")
    observed = np.zeros((n_classes, n_classes))
    np.add.at(observed, (y, pred), 1.0)
    observed /= len(y)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    grades = np.arange(n_classes)
    w = (grades[:, None] - grades[None, :]) ** 2 / max(1, (n_classes - 1) ** 2)
    denom = (w * expected).sum()
    return float(1.0 - (w * observed).sum() / denom) if denom > 0 else float("nan")


def expected_grade(proba: np.ndarray) -> np.ndarray:
    return np.asarray(proba) @ np.arange(proba.shape[1], dtype=np.float64)


def graded_prediction(proba: np.ndarray) -> np.ndarray:
    """The grade minimising expected absolute error: the median of the predicted distribution."""
    cdf = np.cumsum(np.asarray(proba, dtype=np.float64), axis=1)
    return (cdf < 0.5 - 1e-12).sum(axis=1).clip(0, proba.shape[1] - 1)


def sensitivity_at_specificity(y: np.ndarray, positive_score: np.ndarray,
                               specificity: float = DEFAULT_SPECIFICITY) -> float:
    """Share of positives (y == 1) scored above the threshold that keeps ``specificity`` of negatives below."""
    y = np.asarray(y, dtype=np.int64)
    neg, pos = positive_score[y == 0], positive_score[y == 1]
    if len(neg) == 0 or len(pos) == 0:
        return float("nan")
    threshold = np.quantile(neg, specificity, method="higher")
    return float((pos > threshold).mean())


def score_all(proba: np.ndarray, y: np.ndarray, *, ordered: bool = False,
              specificity: float = DEFAULT_SPECIFICITY) -> dict:
    """Every figure the reports show: accuracy, balanced_accuracy, auc, ece, plus quadratic_kappa and
    grade_mae for ordered classes and sensitivity_at_specificity for two classes."""
    from aldesk.learning.models import evaluate

    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    out = evaluate(proba, y)
    k = proba.shape[1]
    if ordered:
        grade = graded_prediction(proba)
        out["quadratic_kappa"] = quadratic_kappa(y, grade, k)
        out["grade_mae"] = float(np.abs(grade - y).mean())
    if k == 2:
        out["sensitivity_at_specificity"] = sensitivity_at_specificity(y, proba[:, 1], specificity)
    return out


def objective_score(objective: str, proba: np.ndarray, y: np.ndarray, **kwargs) -> float:
    check_objective(objective, proba.shape[1])
    return score_all(proba, y, ordered=objective == "quadratic_kappa", **kwargs)[objective]
