""""When can I stop?" on a project: the audit sample, the stop set, and the recommendation.

- **Audit sample.** Every scan has a fixed random *audit key* (a hash of the project id and the scan's
  uid: the same on every workstation, independent of the images and of the model). A share of the
  reader's queue (project setting ``audit_fraction``, default 0.1) is filled with the unread scans of
  smallest key, unmarked, and recorded in the store (``audit_draws``). The *audit set* is every labelled
  scan whose key is at most the largest key drawn: all labelled scans of a prefix of one random order,
  so a uniform random sample of the project, whichever queue brought each scan to a reader.
- **Audit accuracy.** Each audit scan is predicted by a model fitted on every other label but its
  cross-fitting fold's (aldesk.learning.stopping), so the estimate is unbiased for a model with a few
  fewer labels than the current one (a little conservative).
- **Stop set.** The ``STOP_SET_SIZE`` scans of largest key; each trained model's predicted classes on
  it are stored as plain arrays, and κ between successive models says when it stopped changing.

Never imports Qt; the figures are pure functions of aldesk.learning.stopping.
"""

from __future__ import annotations

import hashlib
from numbers import Real

import numpy as np

from aldesk.app.callbacks import Progress, ShouldStop, check_stop, never_stop, no_progress
from aldesk.errors import NotEnoughLabelsError, ProjectError
from aldesk.learning.base import UNLABELLED
from aldesk.store import Project

AUDIT_FRACTION = 0.1        # default share of the queue given to audit scans
MAX_AUDIT_FRACTION = 0.5
STOP_SET_SIZE = 1000        # Bloodgood & Vijay-Shanker used ~2,000; 1,000 keeps κ's resolution at 0.001
PROJECT_MORE = 200          # "accuracy after N more labels": the default N
AUDIT_REASON = "a representative scan of the whole project"
MIN_CEILING_READS = 10      # scans read twice before the readers' agreement is shown as a ceiling
AUDIT_FIT_TOL = 1e-3         # the audit cross-fits' L-BFGS tolerance when warm-started leak-free (see _fitter)


# ====================================================================================== settings
def audit_fraction(project: Project) -> float:
    """The share of the queue given to audit scans (0 = no audit sample)."""
    return float(project.settings().get("audit_fraction", AUDIT_FRACTION))


def set_audit_fraction(project: Project, fraction) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, Real) or not 0.0 <= float(fraction) <= MAX_AUDIT_FRACTION:
        raise ProjectError(f"audit_fraction == {fraction!r}, must be between 0 and {MAX_AUDIT_FRACTION} "
                           "(e.g. 0.1: one scan in ten of the queue is a random audit scan; 0 turns the audit off)")
    project.update_settings(audit_fraction=float(fraction))
    return float(fraction)


# ====================================================================================== audit sample
_KEYS: dict[tuple[str, str], float] = {}  # (project id, uid) -> key: a key never changes, hash each once
_LAST: dict[tuple[str, bytes], np.ndarray] = {}  # (project id, digest of the id list) -> keys: one retrain asks 4 times


def audit_keys(project: Project, scan_ids) -> np.ndarray:
    """(n,) float64 in [0, 1): each scan's fixed random audit key, in ``scan_ids`` order."""
    pid = project.project_id
    ids = np.ascontiguousarray(scan_ids, dtype=np.int64)
    memo = (pid, hashlib.sha1(ids.tobytes()).digest() + project.scans.count().to_bytes(8, "little"))
    cached = _LAST.get(memo)  # (workers on two threads may share this; a miss only costs time)
    if cached is None:  # a new process (the first retrain of a session): the project's cache folder
        from aldesk.app.arraycache import cached_arrays

        cached = cached_arrays(project, "audit-keys", f"{pid}:{memo[1].hex()}", lambda: (_hash_keys(project, ids),))[0]
        _LAST.clear()
        _LAST[memo] = cached.copy()
    return cached.copy()


def _hash_keys(project: Project, ids: np.ndarray) -> np.ndarray:
    """The audit keys computed from the uids (0.4 s at 100,000 scans, hence the caches above)."""
    pid = project.project_id
    salt = pid.encode("utf-8")
    uids = project.scans.uids()
    out = np.empty(len(ids), dtype=np.float64)
    for i, s in enumerate(ids.tolist()):
        uid = uids[s]
        key = _KEYS.get((pid, uid))
        if key is None:
            digest = hashlib.sha256(salt + b":" + uid.encode("utf-8")).digest()
            key = _KEYS[(pid, uid)] = int.from_bytes(digest[:8], "big") / 2.0 ** 64
        out[i] = key
    return out


def mix_audit(project: Project, annotator: str, head: list[int], all_ids: np.ndarray, *, n_labels: int,
              random_state=None) -> tuple[list[int], list[int]]:
    """Put audit scans into the head of a reader's queue: (new head, the audit scan ids in it).

    One position in every 1/audit_fraction of the head (at a random place within its block) holds an
    audit scan: first those drawn before and still unread, then new draws in key order among scans
    nobody has read. New draws are recorded. A drawn scan that the ranking already put in the head stays
    where it is (and counts)."""
    from aldesk.app.labelling import read_scan_ids
    from aldesk.learning.stopping import audit_picks

    fraction = audit_fraction(project)
    k = int(round(fraction * len(head)))
    if k <= 0:
        return list(head), []
    all_ids = np.asarray(all_ids, dtype=np.int64)
    read = read_scan_ids(project)
    unread = np.array([s not in read for s in all_ids.tolist()], dtype=bool)
    keys = audit_keys(project, all_ids)
    drawn = project.audit.draws()
    pending = np.array([s in drawn for s in all_ids.tolist()], dtype=bool) & unread
    chosen = audit_picks(keys, pending, k)
    if len(chosen) < k:
        fresh = audit_picks(keys, unread & ~pending, k - len(chosen))
        if len(fresh):
            project.audit.add_draws(all_ids[fresh], annotator=annotator, n_labels=n_labels)
        chosen = np.concatenate([chosen, fresh])
    audit = [int(s) for s in all_ids[chosen].tolist()]
    in_head = set(head)
    block = max(1, int(round(1.0 / fraction)))
    rng = np.random.default_rng(random_state)
    out = list(head)
    for j, s in enumerate(s for s in audit if s not in in_head):
        out.insert(min(len(out), j * block + int(rng.integers(0, block))), s)
    return out, audit


def _reading_order(project: Project, ids: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices (into ids) of scans with a training label, in the order they were first read."""
    first: dict[int, str] = {}
    for l in project.labels.current():
        if l.scan_id not in first or l.created_at < first[l.scan_id]:
            first[l.scan_id] = l.created_at
    pos = {int(s): i for i, s in enumerate(ids.tolist())}
    labelled = [s for s in first if s in pos and y[pos[s]] != UNLABELLED]
    labelled.sort(key=lambda s: (first[s], s))
    return np.array([pos[s] for s in labelled], dtype=np.int64)


def audit_state(project: Project, ids: np.ndarray, y: np.ndarray) -> dict:
    """{"keys", "members" (indices of the audit set), "drawn", "pending" (audit-prefix scans without a
    training label yet), "order" (labelled indices in reading order)}."""
    from aldesk.learning.stopping import audit_members

    keys = audit_keys(project, ids)
    draws = project.audit.draws()
    drawn = np.array([s in draws for s in ids.tolist()], dtype=bool)
    labelled = y != UNLABELLED
    members = audit_members(keys, drawn, labelled)
    pending = int(((keys <= keys[drawn].max()) & ~labelled).sum()) if drawn.any() else 0
    return {"keys": keys, "members": members, "drawn": int(drawn.sum()), "pending": pending,
            "order": _reading_order(project, ids, y)}


def _class_weight(project: Project) -> str | None:
    """The class weighting the project's objective asks for (as ``train`` fits with)."""
    from aldesk.app.objective import project_objective
    from aldesk.learning.objectives import class_weighting

    return class_weighting(project_objective(project)[0])


def _fitter(X, y, weights, n_classes, model: str, C, class_names, class_weight, random_state=0):
    """fit(rows) for the audit's cross-fitting: the project's model, its chosen regularisation and class
    weighting, no calibration (only the predicted class matters here)."""
    from aldesk.learning.models import fit_model

    def fit(rows, start=None):
        # from a start that never saw the held-out scans a looser tolerance cannot leak them: it halves the
        # fit, and gave the same predicted class on every audit scan at 16,700 labels x 1,129 features
        return fit_model(X[rows], y[rows], n_classes=n_classes, name=model, sample_weight=weights[rows],
                         calibrate=False, C=C, random_state=random_state, class_names=class_names,
                         class_weight=class_weight, start=start,
                         **({} if start is None else {"tol": AUDIT_FIT_TOL}))

    return fit


def train_fields(project: Project, ids, X, y, weights, fitted, *, model: str = "logistic",
                 features: tuple[str, str | None] | None = None, should_stop: ShouldStop = never_stop) -> dict:
    """What ``aldesk train --json`` reports beside cross-validation (and the status bar shows):
    audit_accuracy, audit_ci (Wilson, 95 %), audit_balanced_accuracy, audit_balanced_ci, audit_n,
    audit_pending (None / 0 while no audit scan has a label), and stability_kappa, stability_agreement
    (the new model against the stored history; None until the window is full). X standardised, y with
    UNLABELLED, in ``ids`` order. ``features`` = (extractor, feature version) of the new model: a history
    of models on other features (or another estimator) is not its history."""
    from aldesk.learning.stopping import stability

    ids = np.asarray(ids, dtype=np.int64)
    rows = stop_set(project, ids)
    history = _same_kind(project.audit.stop_history())
    if features is not None and history and _kind(history[-1]) != (*features, model):
        history = []
    n_labels = int((y != UNLABELLED).sum())
    stab = stability([(h["n_labels"], h["scan_ids"], h["predicted"]) for h in history]
                     + [(n_labels, ids[rows], fitted.predict_proba(X[rows]).argmax(axis=1))], len(project.classes))
    return {**_audit_fields(project, ids, X, y, weights, fitted, model=model, should_stop=should_stop),
            "stability_kappa": stab.mean_kappa, "stability_agreement": stab.agreement}


def _audit_fields(project: Project, ids, X, y, weights, fitted, *, model: str, should_stop: ShouldStop) -> dict:
    from aldesk.learning.stopping import audit_estimate, audit_learning_curve

    state = audit_state(project, np.asarray(ids), y)
    members, order = state["members"], state["order"]
    n_classes = len(project.classes)
    est = audit_estimate(np.zeros(0, np.int64), np.zeros(0, np.int64), n_classes)
    if len(members) >= 2:
        fit = _fitter(X, y, weights, n_classes, model, getattr(fitted, "C_", None), project.classes,
                      _class_weight(project))
        # the training's stable-fold models never saw their fold's scans: with the audit scans split by the
        # same folds, each audit model starts from one (issue 14: five cold full-size fits were most of a
        # GUI retrain at 20,000 labels x 1,129 features)
        starts = list(getattr(fitted, "fold_models_", []))
        from aldesk.learning.models import stable_folds

        fold_of = stable_folds(np.asarray(ids)[members], len(starts)) if starts else None
        right = audit_learning_curve(X, y, order, members, [len(order)], fit=fit, should_stop=should_stop,
                                     fold_of=fold_of, starts=starts or None)[0]
        ok = np.isfinite(right)
        truth = y[members[ok]]
        est = audit_estimate(truth, np.where(right[ok] == 1.0, truth, -1), n_classes)
    return {"audit_accuracy": est["accuracy"], "audit_ci": est["ci"],
            "audit_balanced_accuracy": est["balanced_accuracy"], "audit_balanced_ci": est["balanced_ci"],
            "audit_n": est["n"], "audit_pending": state["pending"]}


# ====================================================================================== stop set
def stop_set(project: Project, ids: np.ndarray) -> np.ndarray:
    """Indices (into ids) of the stop set: the STOP_SET_SIZE scans of largest audit key, so it is a fixed
    random sample that the audit (smallest keys first) reaches last."""
    keys = audit_keys(project, ids)
    return np.sort(np.argsort(-keys, kind="stable")[:STOP_SET_SIZE])


def record_stop_predictions(project: Project, model_id: int, ids, X, fitted) -> None:
    """Store the newly trained model's predicted class on the stop set (X standardised, ``ids`` order)."""
    ids = np.asarray(ids, dtype=np.int64)
    rows = stop_set(project, ids)
    project.audit.add_stop_predictions(model_id, ids[rows], fitted.predict_proba(X[rows]).argmax(axis=1))


def _same_kind(history: list[dict]) -> list[dict]:
    """The newest run of models on the same features and estimator (a switch restarts the history). Features
    are the extractor's name and version: ``default`` names whichever extractor is the default, so a project
    that outlived a change of default has "default" models on two kinds of features."""
    start = len(history)
    while start and _kind(history[start - 1]) == _kind(history[-1]):
        start -= 1
    return history[start:]


def _kind(h: dict) -> tuple:
    return h["extractor"], h.get("feature_version"), h["estimator"]


def model_stability(project: Project):
    """Stability of the models trained on the current features and estimator (newest model's kind)."""
    from aldesk.learning.stopping import stability

    history = _same_kind(project.audit.stop_history())
    return stability([(h["n_labels"], h["scan_ids"], h["predicted"]) for h in history], len(project.classes))


# ====================================================================================== the report
def readers_ceiling(project: Project) -> dict | None:
    """What the readers' own agreement says the model can be shown to reach, when at least
    ``MIN_CEILING_READS`` scans were read by several readers (aldesk agreement), else None.

    With readers whose accuracy against the other readers' consensus can be estimated (three or more
    readers), their reads-weighted accuracy ("source": "readers-vs-consensus"); otherwise how often the
    readers agree with each other ("source": "percent-agreement"), a lower, human-level bar. A model
    scored against these readers' labels cannot be shown to be more accurate than they are.
    Returns {"accuracy", "source", "n_multi_read"}."""
    from aldesk.app.review import agreement

    report = agreement(project, n_boot=0)
    n_multi = int(report["consensus"]["n_multi_read"])
    if n_multi < MIN_CEILING_READS:
        return None
    readers = [r for r in report["readers"] if r.get("reads") and r.get("accuracy") is not None]
    if readers:
        total = sum(r["reads"] for r in readers)
        acc, source = sum(r["accuracy"] * r["reads"] for r in readers) / total, "readers-vs-consensus"
    elif report.get("percent_agreement") is not None:
        acc, source = report["percent_agreement"], "percent-agreement"
    else:
        return None
    return {"accuracy": round(float(acc), 4), "source": source, "n_multi_read": n_multi}


def progress_report(project: Project, *, extractor: str | None = None, model: str | None = None,
                    more: int = PROJECT_MORE, n_boot: int = 200, progress: Progress = no_progress,
                    should_stop: ShouldStop = never_stop) -> dict:
    """Everything ``aldesk progress --json`` says: labels, audit_accuracy, audit_ci, audit (details),
    stability_kappa, stability (details), projected, ceiling, queue_vs_random, recommendation, stop.

    Refits the project's model a few dozen times (the audit learning curve); no model is stored. The
    model and features are the newest trained model's unless given."""
    from aldesk.app.features import load_features
    from aldesk.app.labelling import training_labels
    from aldesk.app.modelling import load_dataset, stored_C
    from aldesk.learning.models import fit_model
    from aldesk.learning.stopping import audit_evidence, queue_vs_random, recommend

    if isinstance(more, bool) or not isinstance(more, int) or more < 1:
        raise ProjectError(f"more == {more!r}, must be a whole number of labels >= 1")
    latest = project.models.latest()
    model = model or (latest["estimator"] if latest else "logistic")
    extractor = extractor or (latest["extractor"] if latest else "default")
    progress(0, 4, "features")
    data = None
    if project.scans.count():  # the standardised pool and labels train cached (and its C, below)
        data = load_dataset(project, extractor, progress=progress, should_stop=should_stop)
        ids, X, y, weights = data.ids, data.X, data.y, data.weights
    else:
        ids, X = load_features(project, extractor, progress=progress, should_stop=should_stop)
        y, weights = training_labels(project, ids)
    check_stop(should_stop, "progress report")
    n_classes = len(project.classes)
    labels = int((y != UNLABELLED).sum())
    state = audit_state(project, ids, y)
    stab = model_stability(project)
    report = {"labels": labels, "audit_accuracy": None, "audit_ci": None, "stability_kappa": stab.mean_kappa,
              "projected": None, "ceiling": None, "queue_vs_random": None,
              "audit": {"fraction": audit_fraction(project), "drawn": state["drawn"], "pending": state["pending"],
                        "n": 0},
              "stability": stab.to_json()}
    progress(1, 4, "audit learning curve")
    class_weight = _class_weight(project)
    C = stored_C(project, model, data, labels, class_weight)[0] if data is not None else None
    if C is None and labels:  # train has not chosen a C for these features and about these many labels
        try:
            C = getattr(fit_model(X[state["order"]], y[state["order"]], n_classes=n_classes, name=model,
                                  sample_weight=weights[state["order"]], calibrate=False,
                                  class_names=project.classes, class_weight=class_weight), "C_", None)
        except NotEnoughLabelsError:
            pass
    fit = _fitter(X, y, weights, n_classes, model, C, project.classes, class_weight)
    members = state["members"]
    audit = None
    if len(members) >= 2 and labels:
        ev = audit_evidence(X, y, state["order"], members, n_classes=n_classes, fit=fit, more=more, n_boot=n_boot,
                            should_stop=should_stop)
        audit = ev["audit"]
        report.update(audit_accuracy=audit["accuracy"], audit_ci=audit["ci"], projected=ev["projected"])
        report["audit"].update(audit)
        check_stop(should_stop, "progress report")
        progress(2, 4, "queue against random")
        is_member = np.zeros(len(ids), dtype=bool)
        is_member[members] = True
        queue = state["order"][~is_member[state["order"]]]
        report["queue_vs_random"] = queue_vs_random(X, y, queue, members, fit=fit, n_boot=max(n_boot, 200))
    check_stop(should_stop, "progress report")
    progress(3, 4, "readers' agreement")
    report["ceiling"] = readers_ceiling(project)
    advice = recommend(labels=labels, stab=stab, audit=audit, projected=report["projected"],
                       ceiling=report["ceiling"]["accuracy"] if report["ceiling"] else None)
    report["recommendation"] = advice.text
    report["stop"] = advice.stop
    report["reasons"] = advice.reasons
    progress(4, 4, "done")
    return report


def _interval(pair) -> str:
    return "" if not pair else f" (95 % CI {pair[0]:.3f}–{pair[1]:.3f})"


def describe(report: dict) -> list[tuple[str, str]]:
    """The figures of a :func:`progress_report` as (name, text) lines, for the CLI and the dashboard."""
    audit, stab = report["audit"], report["stability"]
    lines = [("labels", str(report["labels"]))]
    if report["audit_accuracy"] is not None:
        lines.append(("audit accuracy", f"{report['audit_accuracy']:.3f}{_interval(report['audit_ci'])}, "
                                        f"{audit['n']} audit scans"))
        lines.append(("audit balanced acc.", f"{audit['balanced_accuracy']:.3f}{_interval(audit['balanced_ci'])}"))
    else:
        lines.append(("audit accuracy", f"- ({audit['n']} audit scans read; {audit['drawn']} drawn; "
                                        f"audit share of the queue {audit['fraction']:.0%})"))
    if report["stability_kappa"] is not None:
        lines.append(("stability", f"κ {report['stability_kappa']:.4f} over the last {stab['window']} model pairs "
                                   f"({100 * stab['agreement']:.1f} % same prediction on the stop set)"))
    else:
        lines.append(("stability", f"- ({stab['n_models']} models so far, {stab['window'] + 1} needed)"))
    proj = report["projected"]
    if proj:
        lines.append(("projected", f"{proj['accuracy']:.3f}{_interval(proj['ci'])} at {proj['labels']} labels "
                                   f"(gain {proj['gain']:+.3f}{_interval(proj['gain_ci'])})"))
    qr = report["queue_vs_random"]
    if qr:
        lines.append(("queue against random", f"with {qr['labels']} labels: queue {qr['queue_accuracy']:.3f}, random "
                                              f"{qr['random_accuracy']:.3f} (difference {qr['difference']:+.3f}"
                                              f"{_interval(qr['difference_ci'])}, on {qr['n']} audit scans)"))
    ceiling = report["ceiling"]
    if ceiling:
        how = ("readers against the others' consensus" if ceiling["source"] == "readers-vs-consensus"
               else "how often readers agree with each other")
        lines.append(("readers' ceiling", f"{ceiling['accuracy']:.3f} ({how}, {ceiling['n_multi_read']} scans "
                                          f"read by several readers)"))
    return lines
