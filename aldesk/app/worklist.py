"""A reader's work list: which scans to show next, and the model state to show beside them.

``refresh_worklist`` is the body of the GUI's background retraining (and usable from a script): on
its own Project connection it extracts missing features, retrains with cheap cross-validation, ranks
the pool and returns plain data. ``plain_worklist`` is the instant list (no model) shown before the
first ranking. Never imports Qt.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from aldesk.app.callbacks import Progress, ShouldStop, check_stop, never_stop, no_progress
from aldesk.errors import NotEnoughLabelsError
from aldesk.store import Project

RANKED_BATCH = 50


@dataclass
class Worklist:
    """to_label : (n,) int64 scan ids the reader has not read: ranked first (best first), then id order.

    ``scores``/``reasons`` cover the ranked scans; ``predictions`` maps scan id -> (class, probability)
    for every scan the model saw (empty before the first model); ``metrics`` are train's
    cross-validated figures (accuracy, balanced_accuracy, auc, ece, labels) or None.
    """

    to_label: np.ndarray
    scores: dict[int, float] = field(default_factory=dict)
    reasons: dict[int, str] = field(default_factory=dict)
    strategy: str | None = None
    metrics: dict | None = None
    model_id: int | None = None
    n_labels: int = 0
    predictions: Mapping[int, tuple[str, float]] = field(default_factory=dict)
    note: str = ""
    elapsed_s: float = 0.0


def read_by(project: Project, annotator: str) -> dict[int, str]:
    """scan id -> this reader's current value (class, 'unsure' or 'skip')."""
    return {l.scan_id: l.value for l in project.labels.current(annotator)}


def my_reads_newest_first(project: Project, annotator: str) -> tuple[np.ndarray, dict[int, str]]:
    """(scan ids this reader read, newest read first; scan id -> value)."""
    rows = sorted(project.labels.current(annotator), key=lambda l: l.created_at, reverse=True)
    return np.array([l.scan_id for l in rows], dtype=np.int64), {l.scan_id: l.value for l in rows}


def _done_ids(project: Project, annotator: str) -> np.ndarray:
    """Scans not to offer this reader: those they read, and those read by enough others."""
    reads_per_scan = max(1, int(project.settings().get("reads_per_scan", 1)))
    reads = project.labels.current_matrix(project.classes)  # (scan, reader id, class): arrays, not objects
    mine_id = next((i for i, name in project.labels.reader_names() if name == annotator.strip()), -1)
    scans, n = np.unique(reads[:, 0], return_counts=True)
    return np.union1d(reads[reads[:, 1] == mine_id, 0], scans[n >= reads_per_scan]).astype(np.int64)


def _order(all_ids: np.ndarray, done: np.ndarray, first: list[int]) -> np.ndarray:
    rest = all_ids[~np.isin(all_ids, done)]
    if not first:
        return rest
    head = np.array(first, dtype=np.int64)
    head = head[~np.isin(head, done)]
    return np.concatenate([head, rest[~np.isin(rest, head)]])


def plain_worklist(project: Project, annotator: str) -> Worklist:
    """Unread scans in import order, no model: instant, for the first screen."""
    t0 = time.perf_counter()
    latest = project.models.latest()
    wl = Worklist(to_label=_order(project.scans.ids(), _done_ids(project, annotator), []),
                  n_labels=project.labels.count(), note="not ranked yet")
    if latest:
        wl.model_id, wl.metrics = latest["id"], latest["metrics"]
    wl.elapsed_s = time.perf_counter() - t0
    return wl


def refresh_worklist(
    project: Project,
    annotator: str,
    *,
    strategy: str = "hybrid",
    batch: int = RANKED_BATCH,
    extractor: str = "default",
    retrain: bool = True,
    folds: int = 3,
    progress: Progress = no_progress,
    should_stop: ShouldStop = never_stop,
) -> Worklist:
    """Features -> model (3-fold CV by default: cheap) -> ranking -> the reader's new work list, with a
    share of uniformly random audit scans mixed into its head (aldesk.app.progress.mix_audit).

    Too few labels to train is not an error: the list is ranked by the strategy's cold start and the
    note says why there is no model yet. Cancelled (``should_stop``) between steps.
    """
    from aldesk.app.modelling import load_dataset, rank, train, up_to_date_model

    t0 = time.perf_counter()
    progress(0, 4, "features")
    # loaded and standardised once: train, rank and the predictions all read it
    data = load_dataset(project, extractor, progress=progress, should_stop=should_stop)
    ids = data.ids
    check_stop(should_stop, "retraining")
    metrics, model_id, note = None, None, ""
    current = up_to_date_model(project, data) if retrain else None
    if current is not None:  # nothing changed since that model was trained (e.g. reopening a project)
        metrics, model_id = current["metrics"], current["id"]
    elif retrain:
        progress(1, 4, "training")
        try:
            metrics = train(project, extractor=extractor, folds=folds, data=data, should_stop=should_stop)
            model_id = (project.models.latest() or {}).get("id")
        except NotEnoughLabelsError as exc:
            note = str(exc)
    else:
        latest = project.models.latest()
        if latest:
            metrics, model_id = latest["metrics"], latest["id"]
    check_stop(should_stop, "retraining")
    progress(2, 4, "ranking")
    ranking = rank(project, strategy=strategy, batch=batch, extractor=extractor, data=data, should_stop=should_stop)
    check_stop(should_stop, "retraining")
    progress(3, 4, "predictions")
    predictions = _predictions(project, ids, data.X, model_id)
    from aldesk.app.progress import AUDIT_REASON, mix_audit

    first, audit = mix_audit(project, annotator, [r.scan_id for r in ranking.batch], ids, n_labels=ranking.n_labelled)
    wl = Worklist(
        to_label=_order(ids, _done_ids(project, annotator), first),
        scores={r.scan_id: r.score for r in ranking.batch},
        reasons={**{s: AUDIT_REASON for s in audit}, **{r.scan_id: r.reason for r in ranking.batch}},
        strategy=ranking.strategy,
        metrics=metrics,
        model_id=model_id,
        n_labels=ranking.n_labelled,
        predictions=predictions,
        note=note,
    )
    progress(4, 4, "done")
    wl.elapsed_s = time.perf_counter() - t0
    return wl


class Predictions(Mapping):
    """scan id -> (most likely class, its probability), held as three arrays: 100,000 scans make three
    arrays, not 300,000 Python objects for the garbage collector to walk (a walk of a few hundred ms that
    holds the GIL and freezes the GUI, whichever thread starts it)."""

    def __init__(self, ids: np.ndarray, best: np.ndarray, proba: np.ndarray, classes: list[str]):
        order = np.argsort(ids, kind="stable")
        self._ids, self._best, self._p = ids[order], best[order], proba[order]
        self._classes = list(classes)

    def _find(self, scan_id) -> int:
        i = int(np.searchsorted(self._ids, scan_id))
        if i >= len(self._ids) or self._ids[i] != scan_id:
            raise KeyError(scan_id)
        return i

    def __getitem__(self, scan_id) -> tuple[str, float]:
        i = self._find(scan_id)
        return self._classes[int(self._best[i])], float(self._p[i])

    def __contains__(self, scan_id) -> bool:
        try:
            self._find(scan_id)
        except (KeyError, TypeError):
            return False
        return True

    def __iter__(self):
        return iter(self._ids.tolist())

    def __len__(self) -> int:
        return len(self._ids)


def _predictions(project: Project, ids: np.ndarray, X: np.ndarray, model_id: int | None) -> Mapping[int, tuple[str, float]]:
    """scan id -> (most likely class, its probability) from the stored model (plain arrays).
    X : (n, d) float32 features already standardised over the pool (``Dataset.X``)."""
    latest = project.models.latest()
    if model_id is None or not latest or latest["id"] != model_id or not latest.get("arrays"):
        return {}
    from aldesk.learning.models import from_arrays

    model = from_arrays(latest["arrays"])
    proba = model.predict_proba(X)
    best = proba.argmax(axis=1)
    return Predictions(np.asarray(ids, dtype=np.int64), best, proba[np.arange(len(best)), best], project.classes)
