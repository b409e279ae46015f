"""How a strategy gets the model it scores with, and what it does when there can be none yet.

``model=None`` in ``query`` means "fit the default model from (X, y)"; a caller that already trained one
(the app after a retrain, the simulation at each step) passes it and nothing is refitted. When no model
can be trained (some class has no label) the model-based strategies fall back to cold start and say so.
"""

from __future__ import annotations

import numpy as np

from aldesk.errors import LearningError
from aldesk.learning.base import _CHUNK, QueryInput, class_label

MIN_LABELS_PER_CLASS = 1


def not_trainable_reason(data: QueryInput, min_labels_per_class: int, class_names=None) -> str | None:
    """'model not trained yet (class 'pneumonia' has 0 labels)' or None when a model can be fitted."""
    if data.n_classes is None or len(data.labelled) == 0:
        return "model not trained yet (no scan labelled yet)"
    counts = data.class_counts
    short = [k for k in range(data.n_classes) if counts[k] < min_labels_per_class]
    if not short:
        return None
    k = short[0]
    more = f" and {len(short) - 1} more class{'es' if len(short) > 2 else ''}" if len(short) > 1 else ""
    n = int(counts[k])
    return f"model not trained yet (class {class_label(k, class_names)} has {n} label{'' if n == 1 else 's'}{more})"


def check_model(model, data: QueryInput, *, needs_members: bool = False) -> None:
    """A caller-supplied model must predict this problem's classes; fills in data.n_classes when unknown."""
    if not hasattr(model, "predict_proba"):
        raise LearningError(f"model must have predict_proba(X), got {type(model).__name__}")
    if needs_members and not hasattr(model, "member_proba"):
        raise LearningError(f"this strategy needs a committee (member_proba), got {type(model).__name__}")
    k = getattr(model, "n_classes_", None)
    if k is None:
        return
    if data.n_classes is None:
        data.n_classes = int(k)
    elif int(k) != data.n_classes:
        raise LearningError(f"model predicts {k} classes but n_classes == {data.n_classes}; retrain the model")
    if len(data.y) and data.y.max() >= data.n_classes:
        raise LearningError(f"y contains class {int(data.y.max())} but the model predicts {data.n_classes}")


def resolve_model(data: QueryInput, model, *, estimator: str, calibrate: bool, class_names=None,
                  min_labels_per_class: int = MIN_LABELS_PER_CLASS):
    """(model, None) ready to score, or (None, reason) when none can be trained yet."""
    if model is not None:
        check_model(model, data)
        return model, None
    why = not_trainable_reason(data, min_labels_per_class, class_names)
    if why:
        return None, why
    from aldesk.learning.models import fit_model

    fitted = fit_model(data.X[data.labelled], data.y[data.labelled], n_classes=data.n_classes, name=estimator,
                       random_state=data.rng, calibrate=calibrate, class_names=class_names)
    return fitted, None


def resolve_committee(data: QueryInput, model, *, estimator: str, n_members: int, class_names=None,
                      min_labels_per_class: int = MIN_LABELS_PER_CLASS):
    """A committee given by the caller (has member_proba) or a bootstrap committee fitted here."""
    if model is not None and hasattr(model, "member_proba"):
        check_model(model, data, needs_members=True)
        return model, None
    if model is not None:
        check_model(model, data)  # a single model: its classes tell n_classes, its members we fit
    why = not_trainable_reason(data, min_labels_per_class, class_names)
    if why:
        return None, why
    from aldesk.learning.committee import fit_committee

    name = getattr(model, "name", None) or estimator
    committee = fit_committee(data.X[data.labelled], data.y[data.labelled], n_classes=data.n_classes, name=name,
                              n_members=n_members, random_state=data.rng, class_names=class_names)
    return committee, None


def rows_of(X: np.ndarray, rows: np.ndarray, fn) -> np.ndarray:
    """fn applied to X[rows] in blocks, without copying a whole million-row pool at once.

    When rows cover most of X it is cheaper to run fn on contiguous slices of X and keep the wanted rows.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return fn(X[:0])
    if len(rows) >= 0.5 * len(X):
        keep = np.zeros(len(X), dtype=bool)
        keep[rows] = True
        parts = []
        for s in range(0, len(X), _CHUNK):
            sel = keep[s:s + _CHUNK]
            if sel.any():
                parts.append(fn(X[s:s + _CHUNK])[sel])
        return np.concatenate(parts)
    return np.concatenate([fn(X[rows[s:s + _CHUNK]]) for s in range(0, len(rows), _CHUNK)])


def candidate_proba(model, data: QueryInput) -> np.ndarray:
    """(m, n_classes) probabilities of the candidates, in the order of data.candidates (sorted)."""
    proba = rows_of(data.X, data.candidates, model.predict_proba)
    if data.n_classes is not None and proba.shape[1] != data.n_classes:
        raise LearningError(f"model predicts {proba.shape[1]} classes but n_classes == {data.n_classes}")
    return np.asarray(proba, dtype=np.float64)


def cold_start_fallback(data: QueryInput, why: str, requested: str):
    """Rank with cold start, every reason prefixed by why the model-based strategy could not run."""
    from aldesk.learning.coldstart import ColdStartStrategy

    result = ColdStartStrategy().select(data, note=why)
    result.details.update({"requested": requested, "fallback": "cold_start", "fallback_reason": why})
    return result


def model_proba(strategy, data: QueryInput, model):
    """Candidate probabilities from the given (or freshly fitted) model, or, while no model can be trained,
    the cold-start result to return instead: ``(proba, None)`` or ``(None, fallback)``.

    ``strategy`` carries the model parameters every model-based strategy stores (estimator, calibrate,
    class_names, min_labels_per_class) and its name for the fallback's reasons."""
    fitted, why = resolve_model(data, model, estimator=strategy.estimator, calibrate=strategy.calibrate,
                                class_names=strategy.class_names, min_labels_per_class=strategy.min_labels_per_class)
    if fitted is None:
        return None, cold_start_fallback(data, why, strategy.name)
    return candidate_proba(fitted, data), None
