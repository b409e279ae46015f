"""Train, evaluate and rank: the learning engine applied to a project's scans and labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aldesk.app.callbacks import Progress, ShouldStop, never_stop, no_progress
from aldesk.app.features import load_features
from aldesk.app.labelling import read_scan_ids, training_labels
from aldesk.errors import LearningError
from aldesk.learning.base import UNLABELLED, standardize
from aldesk.store import Project

DEFAULT_STRATEGY = "hybrid"


@dataclass
class RankedScan:
    scan_id: int
    path: str
    score: float
    reason: str


@dataclass
class Ranking:
    strategy: str
    batch: list[RankedScan]
    n_labelled: int
    n_candidates: int
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "strategy": self.strategy,
            "batch": [{"scan_id": r.scan_id, "path": r.path, "score": r.score, "reason": r.reason} for r in self.batch],
            "labelled": self.n_labelled,
            "candidates": self.n_candidates,
        }


def _dataset(project: Project, extractor: str, progress: Progress, should_stop: ShouldStop):
    """(scan ids, standardised X, y with UNLABELLED, soft-label weights) for every scan."""
    ids, X = load_features(project, extractor, progress=progress, should_stop=should_stop)
    if len(ids) == 0:
        raise LearningError(f"{project.path}: no scans yet; import some with `aldesk import PROJECT FOLDER`")
    y, weights = training_labels(project, ids)
    return ids, standardize(X), y, weights


def rank(
    project: Project,
    *,
    strategy: str = DEFAULT_STRATEGY,
    batch: int = 10,
    extractor: str = "default",
    random_state: int | None = 0,
    favour_rare: bool = False,
    progress: Progress = no_progress,
    should_stop: ShouldStop = never_stop,
) -> Ranking:
    """The next ``batch`` scans to read, best first, each with its score and reason."""
    from aldesk.learning.strategies import get_strategy

    ids, X, y, _ = _dataset(project, extractor, progress, should_stop)
    already_read = read_scan_ids(project)
    candidates = np.array([i for i, s in enumerate(ids.tolist()) if s not in already_read and y[i] == UNLABELLED],
                          dtype=np.int64)
    params = {"favour_rare": True} if favour_rare else {}
    chooser = get_strategy(strategy, **params)
    result = chooser.query(X, y, candidates=candidates, batch_size=batch, random_state=random_state,
                           n_classes=len(project.classes), model=_ranking_model(project, X, y, chooser, random_state))
    chosen = ids[result.indices]
    rows = {r.id: r for r in project.scans.rows(chosen.tolist())}
    reasons = list(result.reasons)
    if project.units.kind() != "image":   # why this study: the series behind the score
        from aldesk.app.unit_features import series_reasons

        behind = series_reasons(project, chosen.tolist(), extractor)
        reasons = [f"{r}; {behind[int(s)]}" if int(s) in behind else r for s, r in zip(chosen, reasons)]
    return Ranking(
        strategy=result.strategy or strategy,
        batch=[RankedScan(int(s), str(rows[int(s)].path), float(sc), reason)
               for s, sc, reason in zip(chosen, result.scores, reasons)],
        n_labelled=int((y != UNLABELLED).sum()),
        n_candidates=len(candidates),
        details=result.details,
    )


def _plain(v):
    return float(v) if isinstance(v, (int, float, np.floating, np.integer)) else v


def _ranking_model(project: Project, X, y, chooser, random_state):
    """The model the strategy scores with, weighing classes as the project's objective says; None when the
    strategy needs none or no model can be trained yet (the strategy then falls back to cold start)."""
    from aldesk.app.objective import project_objective
    from aldesk.errors import NotEnoughLabelsError
    from aldesk.learning.models import fit_model
    from aldesk.learning.objectives import class_weighting

    estimator = getattr(chooser, "estimator", None)
    labelled = y != UNLABELLED
    if estimator is None or not labelled.any():
        return None
    try:
        return fit_model(X[labelled], y[labelled], n_classes=len(project.classes), name=estimator,
                         random_state=random_state, class_names=project.classes,
                         class_weight=class_weighting(project_objective(project)[0]))
    except NotEnoughLabelsError:
        return None


def train(
    project: Project,
    *,
    model: str = "logistic",
    extractor: str = "default",
    folds: int = 5,
    random_state: int = 0,
    progress: Progress = no_progress,
    should_stop: ShouldStop = never_stop,
) -> dict:
    """Fit on every final label and report cross-validated accuracy, balanced accuracy, AUC and ECE, and
    the accuracy on the audit sample (``audit_accuracy``, ``audit_ci``: aldesk.app.progress).

    The fitted model is stored as plain arrays where the estimator allows it (logistic), else only
    its metrics: it is retrained from the labels when needed, never unpickled.
    """
    from aldesk.app.objective import project_objective
    from aldesk.learning.models import cross_validate_model, fit_model
    from aldesk.learning.objectives import class_weighting

    ids, X, y, weights = _dataset(project, extractor, progress, should_stop)
    labelled = y != UNLABELLED
    n_classes = len(project.classes)
    objective, ordered = project_objective(project)
    weighting = class_weighting(objective)  # the objective decides whether rare classes weigh more
    progress(0, 2, "cross-validating")
    metrics = cross_validate_model(X[labelled], y[labelled], n_classes=n_classes, name=model, folds=folds,
                                   random_state=random_state, class_names=project.classes,
                                   class_weight=weighting, ordered=ordered)
    progress(1, 2, "fitting")
    # soft labels (consensus posteriors) weigh each scan by how sure the readers are of its label
    fitted = fit_model(X[labelled], y[labelled], n_classes=n_classes, name=model, random_state=random_state,
                       sample_weight=weights[labelled], class_names=project.classes, class_weight=weighting)
    progress(2, 2, "done")
    arrays = fitted.to_arrays() if hasattr(fitted, "to_arrays") else None
    counts = np.bincount(y[labelled], minlength=n_classes)
    report = {
        "objective": objective,
        objective: _plain(metrics.get(objective)),
        "model": model,
        "extractor": extractor,
        "labels": int(labelled.sum()),
        "per_class": {c: int(n) for c, n in zip(project.classes, counts)},
        "folds": folds,
        "class_weight": weighting or "none",
        **{k: _plain(v) for k, v in metrics.items() if k != objective},
    }
    from aldesk.app.progress import record_stop_predictions, train_fields

    report.update(train_fields(project, ids, X, y, weights, fitted, model=model, should_stop=should_stop))
    model_id = project.models.add(extractor=extractor, estimator=model, n_labels=report["labels"], metrics=report,
                                  arrays=arrays)
    record_stop_predictions(project, model_id, ids, X, fitted)
    return report
