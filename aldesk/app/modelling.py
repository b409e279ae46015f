"""Train, evaluate and rank: the learning engine applied to a project's scans and labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aldesk.app.callbacks import Progress, ShouldStop, never_stop, no_progress
from aldesk.app.labelling import training_labels
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


@dataclass
class Dataset:
    """Everything train, rank and the GUI's predictions read, loaded and standardised once.

    ids : (n,) int64 scan ids; X : (n, d) float32 standardised over the pool; y : (n,) int64 class
    index or UNLABELLED; weights : (n,) float64 soft-label weights; key : what the model fitted on it is
    valid for (extractor, labels and adjudications versions, pool size); version : the extractor's version
    (a chosen C is only reused on features of the same version)."""

    ids: np.ndarray
    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    key: str
    extractor: str
    version: str = ""


def load_dataset(project: Project, extractor: str = "default", *, progress: Progress = no_progress,
                 should_stop: ShouldStop = never_stop) -> Dataset:
    """(scan ids, standardised X, y with UNLABELLED, soft-label weights) for every scan.

    Reading 100k vectors out of SQLite and standardising them, and the consensus behind the labels, take
    seconds; both are cached in the project's cache folder (see aldesk.app.arraycache) under keys that
    change with the feature set and with the labels, so ``rank`` after ``train`` reads them back."""
    from aldesk.app.arraycache import cached_arrays
    from aldesk.app.features import extract_features

    result = extract_features(project, extractor, progress=progress, should_stop=should_stop)
    set_id = project.features.find_set(result.extractor, result.version)
    pool = f"{result.extractor}-{result.version}-{project.features.fingerprint(set_id)}"

    def standardised():
        ids, X = project.features.matrix(set_id)
        return ids, standardize(X, in_place=True)  # the raw matrix is not needed: no second copy

    ids, X = cached_arrays(project, f"pool-{extractor}", pool, standardised)
    if len(ids) == 0:
        raise LearningError(f"{project.path}: no scans yet; import some with `aldesk import PROJECT FOLDER`")
    key = f"{pool}/{project.labels.version()}/{project.reviews.version()}"
    y, weights = cached_arrays(project, f"labels-{extractor}", key, lambda: training_labels(project, ids))
    return Dataset(ids, X, y, weights, key, extractor, result.version)


def stored_model(project: Project, data: Dataset, estimator: str = "logistic"):
    """The ``estimator`` model ``train`` fitted on exactly this dataset (same labels, pool and extractor),
    rebuilt from its plain arrays, or None: ranking reuses it instead of fitting again."""
    latest = project.models.latest()
    if (not latest or not latest.get("arrays") or latest["estimator"] != estimator
            or latest["metrics"].get("dataset") != data.key):
        return None
    from aldesk.learning.models import from_arrays

    return from_arrays(latest["arrays"])


# The logistic C is chosen by out-of-fold log-loss over a grid (up to 3 x the folds of fits); it is chosen
# again once the labels have grown (or shrunk) by this factor since, and reused in between.
C_RESELECT_GROWTH = 1.5


def _comparable_latest(project: Project, model: str, data: Dataset, weighting: str | None) -> dict | None:
    """The newest stored model when it was trained with the same estimator, features (extractor and its
    version), class set and class weighting as asked for now (its labels may differ), else None."""
    latest = project.models.latest()
    if not latest:
        return None
    metrics = latest["metrics"]
    if (latest["estimator"] != model or latest["extractor"] != data.extractor
            or metrics.get("feature_version") != data.version or list(metrics.get("per_class", {})) != project.classes
            or metrics.get("class_weight") != (weighting or "none")):
        return None
    return latest


def _rebuilt(latest: dict | None):
    """A comparable stored model (``_comparable_latest``) rebuilt from its arrays, or None: the next fit
    starts from its solution (and its folds from its fold models), not from zero."""
    if not latest or not latest.get("arrays"):
        return None
    from aldesk.learning.models import from_arrays

    try:
        return from_arrays(latest["arrays"])
    except LearningError:
        return None  # an unreadable old model only costs a cold start


def _reusable_C(latest: dict | None, n_labels: int) -> tuple[float | None, int]:
    if not latest:
        return None, n_labels
    metrics = latest["metrics"]
    chosen = metrics.get("C_chosen_at")
    C = metrics.get("C")
    if C is None or not chosen or n_labels > C_RESELECT_GROWTH * chosen or n_labels < chosen / C_RESELECT_GROWTH:
        return None, n_labels
    return float(C), int(chosen)


def stored_C(project: Project, model: str, data: Dataset, n_labels: int,
              weighting: str | None) -> tuple[float | None, int]:
    """(C to reuse or None to choose afresh, the label count it was chosen at).

    The C lives in the newest stored model's report, so a new session (or the CLI after the GUI) reuses it;
    it is reused only for the same estimator, features (extractor and its version), class set and class
    weighting, and while the label count stays within ``C_RESELECT_GROWTH`` of the count it was chosen at."""
    return _reusable_C(_comparable_latest(project, model, data, weighting), n_labels)


def rank(
    project: Project,
    *,
    strategy: str = DEFAULT_STRATEGY,
    batch: int = 10,
    extractor: str = "default",
    random_state: int | None = 0,
    favour_rare: bool = False,
    data: Dataset | None = None,
    progress: Progress = no_progress,
    should_stop: ShouldStop = never_stop,
) -> Ranking:
    """The next ``batch`` scans to read, best first, each with its score and reason.

    Scores with the model ``train`` stored for these very labels when there is one (nothing is refitted);
    ``data`` is a ``load_dataset`` result to reuse."""
    from aldesk.learning.strategies import get_strategy

    data = data if data is not None and data.extractor == extractor else load_dataset(
        project, extractor, progress=progress, should_stop=should_stop)
    ids, X, y = data.ids, data.X, data.y
    already_read = project.labels.read_scan_ids()
    candidates = np.flatnonzero(~np.isin(ids, already_read) & (y == UNLABELLED)).astype(np.int64)

    chooser = get_strategy(strategy, **({"favour_rare": True} if favour_rare else {}))
    model = _ranking_model(project, data, chooser, random_state)
    result = chooser.query(X, y, candidates=candidates, batch_size=batch, random_state=random_state,
                           n_classes=len(project.classes), model=model)
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
    """JSON-ready: numpy numbers to Python ones; whole numbers stay whole (``"folds": 5``, not 5.0)."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    return float(v) if isinstance(v, (float, np.floating)) else v


def _ranking_model(project: Project, data: Dataset, chooser, random_state):
    """The model the strategy scores with: the one ``train`` stored for these very labels when its estimator
    is the strategy's, else one fitted here (weighing classes as the project's objective says, C reused as
    ``train`` does); None when the strategy needs none or no model can be trained yet (the strategy then
    falls back to cold start)."""
    from aldesk.app.objective import project_objective
    from aldesk.errors import NotEnoughLabelsError
    from aldesk.learning.models import DEFAULT_MODEL, default_model, fit_model
    from aldesk.learning.objectives import class_weighting

    estimator = getattr(chooser, "estimator", None)
    labelled = data.y != UNLABELLED
    if estimator is None or not labelled.any():
        return None
    objective, ordered = project_objective(project)
    if estimator == DEFAULT_MODEL:
        estimator = default_model(ordered)  # graded classes learn as graded
    stored = stored_model(project, data, estimator)
    if stored is not None:
        return stored
    weighting = class_weighting(objective)
    C, _ = stored_C(project, estimator, data, int(labelled.sum()), weighting)
    try:
        return fit_model(data.X[labelled], data.y[labelled], n_classes=len(project.classes), name=estimator,
                         random_state=random_state, class_names=project.classes, C=C, class_weight=weighting)
    except NotEnoughLabelsError:
        return None


def up_to_date_model(project: Project, data: Dataset) -> dict | None:
    """The newest stored model when it was trained on exactly this dataset (same labels, reviews, pool and
    features) with the model and class weighting the project asks for now: training again would give the
    same model, so the GUI's retrain at open skips it (issue 14: the first ranking of a session)."""
    from aldesk.app.objective import project_objective
    from aldesk.learning.models import default_model
    from aldesk.learning.objectives import class_weighting

    latest = project.models.latest()
    if not latest or latest["metrics"].get("dataset") != data.key:
        return None
    objective, ordered = project_objective(project)
    if (latest["estimator"] != default_model(ordered)
            or latest["metrics"].get("class_weight") != (class_weighting(objective) or "none")):
        return None
    return latest


def train(
    project: Project,
    *,
    model: str | None = None,
    extractor: str = "default",
    folds: int = 5,
    random_state: int = 0,
    data: Dataset | None = None,
    progress: Progress = no_progress,
    should_stop: ShouldStop = never_stop,
) -> dict:
    """Fit on every final label and report cross-validated accuracy, balanced accuracy, AUC and ECE, and
    the accuracy on the audit sample (``audit_accuracy``, ``audit_ci``: aldesk.app.progress).

    One out-of-fold pass serves both the calibration and the reported figures (``oof_metrics``); the
    logistic C is reused from the previous model until the labels grow by ``C_RESELECT_GROWTH``. The
    fitted model is stored as plain arrays where the estimator allows it (logistic), keyed by the
    dataset, so ``rank`` on the same labels scores with it; other estimators store only their metrics
    and are retrained from the labels when needed, never unpickled.
    """
    from aldesk.app.objective import project_objective
    from aldesk.learning.models import cross_validate_model, default_model, fit_model, oof_metrics
    from aldesk.learning.objectives import class_weighting

    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise LearningError(f"folds == {folds!r}, must be an int >= 2")
    data = data if data is not None and data.extractor == extractor else load_dataset(
        project, extractor, progress=progress, should_stop=should_stop)
    ids, X, y, weights = data.ids, data.X, data.y, data.weights
    labelled = y != UNLABELLED
    n_classes = len(project.classes)
    objective, ordered = project_objective(project)
    model = model or default_model(ordered)  # graded classes learn as graded
    weighting = class_weighting(objective)  # the objective decides whether rare classes weigh more
    n_labels = int(labelled.sum())
    latest = _comparable_latest(project, model, data, weighting)  # read once: its C and its arrays
    C, chosen_at = _reusable_C(latest, n_labels)
    progress(0, 2, "fitting")
    # soft labels (consensus posteriors) weigh each scan by how sure the readers are of its label; each
    # scan keeps its fold from retrain to retrain (stable_folds), so every fit starts from the previous
    # model's solution for the same rows (warm starts: issue 14's retrain time at 1,129 features)
    from aldesk.learning.models import stable_folds

    start = _rebuilt(latest)
    fitted = fit_model(X[labelled], y[labelled], n_classes=n_classes, name=model, random_state=random_state,
                       sample_weight=weights[labelled], class_names=project.classes, class_weight=weighting,
                       C=C, folds=folds, start=start, groups=stable_folds(ids[labelled], folds))
    progress(1, 2, "cross-validating")
    if fitted.oof_logits_ is not None:
        metrics = {**oof_metrics(fitted.oof_logits_, y[labelled], random_state=random_state, ordered=ordered),
                   "n_labels": n_labels, "folds": int(fitted.cv_folds_)}
    else:  # too few labels to calibrate: small enough to cross-validate the plain way
        metrics = cross_validate_model(X[labelled], y[labelled], n_classes=n_classes, name=model, folds=folds,
                                       random_state=random_state, class_names=project.classes,
                                       class_weight=weighting, ordered=ordered)
    progress(2, 2, "done")
    arrays = fitted.to_arrays() if hasattr(fitted, "to_arrays") else None
    counts = np.bincount(y[labelled], minlength=n_classes)
    report = {
        "objective": objective,
        objective: _plain(metrics.get(objective)),
        "model": model,
        "extractor": extractor,
        "feature_version": data.version,
        "labels": n_labels,
        "per_class": {c: int(n) for c, n in zip(project.classes, counts)},
        "folds": folds,
        "class_weight": weighting or "none",
        **{k: _plain(v) for k, v in metrics.items() if k != objective},
    }
    if getattr(fitted, "C_", None) is not None:
        report["C"] = float(fitted.C_)
        report["C_chosen_at"] = chosen_at if C is not None else n_labels
    report["dataset"] = data.key
    from aldesk.app.progress import record_stop_predictions, train_fields

    report.update(train_fields(project, ids, X, y, weights, fitted, model=model, features=(extractor, data.version),
                               should_stop=should_stop))
    model_id = project.models.add(extractor=extractor, estimator=model, n_labels=report["labels"], metrics=report,
                                  arrays=arrays)
    record_stop_predictions(project, model_id, ids, X, fitted)
    return report
