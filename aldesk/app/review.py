"""Several readers on one project: assignment, blind reading, agreement, adjudication, consensus.

Use cases shared by the GUI's reading and review screens and by the CLI (``aldesk settings``,
``annotator``, ``queue``, ``agreement``, ``review``). Each returns plain data; the statistics are the
pure functions of aldesk.review, the rows come from aldesk.store. Never imports Qt.

The training label of a scan is, in order: the reviewer's adjudicated label (weight 1); else the
Dawid–Skene consensus (weight = its posterior probability) once at least ``MIN_OVERLAP`` scans were
read twice; else the majority vote (weight = its vote share; ties give no label). 'unsure' and
'skip' reads never vote.
"""

from __future__ import annotations

import hashlib
import socket
import weakref
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real

import numpy as np

from aldesk.app.callbacks import Progress, ShouldStop, check_stop, never_stop, no_progress
from aldesk.errors import NotEnoughLabelsError, ProjectError
from aldesk.review.agreement import agreement_report
from aldesk.review.consensus import MIN_OVERLAP, consensus
from aldesk.review.ratings import MISSING
from aldesk.store import Project
from aldesk.store.annotations import ReadRow
from aldesk.store.reviews import AdjudicationRow, ReadRequestRow, SuspectRow

REVIEW_DEFAULTS = {"reads_per_scan": 1, "double_read_fraction": 0.0, "blind_reading": True, "ordered_classes": False}
MAX_READS_PER_SCAN = 5
REVIEWER_ROLES = ("reviewer", "lead")
NOT_A_READ = "skip"  # a skip is not a read: the scan still needs one


# ====================================================================================== settings
def review_settings(project: Project) -> dict:
    """reads_per_scan (1..5), double_read_fraction (0..1), blind_reading, ordered_classes; defaults filled in."""
    stored = project.settings()
    return {key: stored.get(key, default) for key, default in REVIEW_DEFAULTS.items()}


def update_review_settings(project: Project, *, reads_per_scan: int | None = None,
                           double_read_fraction: float | None = None, blind_reading: bool | None = None,
                           ordered_classes: bool | None = None) -> dict:
    """Check and store the given settings (None = leave as is); returns every review setting."""
    values: dict = {}
    if reads_per_scan is not None:
        if isinstance(reads_per_scan, bool) or not isinstance(reads_per_scan, Integral) \
                or not 1 <= reads_per_scan <= MAX_READS_PER_SCAN:
            raise ProjectError(f"reads_per_scan == {reads_per_scan!r}, must be a whole number from 1 to "
                               f"{MAX_READS_PER_SCAN} (independent reads every scan gets)")
        values["reads_per_scan"] = int(reads_per_scan)
    if double_read_fraction is not None:
        if isinstance(double_read_fraction, bool) or not isinstance(double_read_fraction, Real) \
                or not 0.0 <= float(double_read_fraction) <= 1.0:
            raise ProjectError(f"double_read_fraction == {double_read_fraction!r}, must be between 0 and 1 "
                               "(e.g. 0.2: one scan in five gets a second independent read)")
        values["double_read_fraction"] = float(double_read_fraction)
    for key, value in (("blind_reading", blind_reading), ("ordered_classes", ordered_classes)):
        if value is not None:
            if not isinstance(value, bool):
                raise ProjectError(f"{key} == {value!r}, must be true or false")
            values[key] = value
    if values:
        project.update_settings(**values)
    return review_settings(project)


# ====================================================================================== readers
def set_role(project: Project, annotator: str, role: str) -> dict:
    """Add a reader or change their role (annotator, reviewer, lead); returns {name, role, reads}."""
    project.labels.set_role(annotator, role)
    name = annotator.strip()
    return {"name": name, "role": project.labels.role(name), "reads": project.labels.read_counts().get(name, 0)}


def readers(project: Project) -> list[dict]:
    """Every reader: {name, role, reads} (reads = current labels, unsure and skip included)."""
    counts = project.labels.read_counts()
    return [{"name": n, "role": r, "reads": counts.get(n, 0)} for n, r in project.labels.annotators()]


def _require_reviewer(project: Project, name: str) -> str:
    name = name.strip()
    role = project.labels.role(name)
    if role is None:
        raise ProjectError(f"no reader named {name!r} in this project; add them with "
                           f"`aldesk annotator {project.path} {name or 'NAME'} --role reviewer`")
    if role not in REVIEWER_ROLES:
        raise ProjectError(f"{name} is an {role}; only a reviewer or lead can adjudicate or ask for reads "
                           f"(`aldesk annotator {project.path} {name} --role reviewer`)")
    return name


def _check_scan(project: Project, scan_id) -> int:
    if isinstance(scan_id, bool) or not isinstance(scan_id, Integral):
        raise ProjectError(f"scan id {scan_id!r} must be a whole number")
    project.scans.get(int(scan_id))  # raises "scan N is not in this project"
    return int(scan_id)


# ====================================================================================== assignment
def double_read_selected(uid: str, fraction: float) -> bool:
    """Whether a scan is one of the ``fraction`` that get a second read: a hash of its uid, so every
    workstation, and every later run, chooses the same scans."""
    if fraction <= 0:
        return False
    h = int.from_bytes(hashlib.sha256(uid.encode("utf-8")).digest()[:8], "big") / 2.0 ** 64
    return h < fraction


@dataclass
class ReadState:
    """How far a scan is from enough reads. ``readers``: everyone with a current label (skips too);
    ``reads``: labels that count (class or unsure); ``target``: reads it should get."""

    scan_id: int
    readers: set[str]
    reads: int
    target: int
    adjudicated: bool
    requested: bool

    @property
    def needs_read(self) -> bool:
        return self.requested or (not self.adjudicated and self.reads < self.target)


def read_states(project: Project) -> dict[int, ReadState]:
    """scan id -> ReadState for every scan (settings: reads_per_scan, double_read_fraction; open
    read requests add a read)."""
    settings = review_settings(project)
    base, fraction = int(settings["reads_per_scan"]), float(settings["double_read_fraction"])
    readers: dict[int, set[str]] = {}
    reads: dict[int, int] = {}
    for l in project.labels.current():
        readers.setdefault(l.scan_id, set()).add(l.annotator)
        if l.value != NOT_A_READ:
            reads[l.scan_id] = reads.get(l.scan_id, 0) + 1
    adjudicated = set(project.reviews.current_adjudications())
    requested = {r.scan_id for r in project.reviews.read_requests(status="open")}
    out = {}
    for row in project.scans.rows():
        target = max(base, 2) if double_read_selected(row.uid, fraction) else base
        out[row.id] = ReadState(row.id, readers.get(row.id, set()), reads.get(row.id, 0), target,
                                row.id in adjudicated, row.id in requested)
    return out


def annotator_queue(project: Project, annotator: str, ranking_scan_ids, *, limit: int | None = None) -> list[int]:
    """Scan ids for ``annotator`` to read next, first first.

    Scans a reviewer asked to be read again come first (oldest request first). Then scans that
    already have a read but need another (double reading, reads_per_scan) alternate one for one with
    unread scans in ``ranking_scan_ids`` order (the active-learning ranking, best first). Scans needing
    another read follow the ranking where it has them, then scan id. Nothing this annotator already
    read (or skipped) is offered, nor a scan that has all its reads or an adjudicated label."""
    annotator = annotator.strip()
    states = read_states(project)
    ranking = [int(s) for s in np.asarray(ranking_scan_ids, dtype=np.int64).tolist()]
    position = {s: i for i, s in enumerate(ranking)}
    mine = {s for s, st in states.items() if annotator in st.readers}
    open_requests = project.reviews.read_requests(status="open")
    requested = list(dict.fromkeys(r.scan_id for r in open_requests if r.scan_id not in mine))
    taken = set(requested)
    pending = sorted((s for s, st in states.items()
                      if s not in mine and s not in taken and st.reads > 0 and st.needs_read),
                     key=lambda s: (position.get(s, len(ranking)), s))
    fresh = [s for s in dict.fromkeys(ranking)
             if s in states and s not in mine and s not in taken and states[s].reads == 0
             and states[s].needs_read]
    mixed: list[int] = []
    for i in range(max(len(pending), len(fresh))):
        mixed.extend(x[i] for x in (pending, fresh) if i < len(x))
    queue = requested + mixed
    return queue if limit is None else queue[:limit]


# ====================================================================================== blind reading
@dataclass
class ReaderView:
    """What a reader may see beside a scan. While ``blind`` the other readers' labels, the
    adjudicated label and the model's guess are withheld (empty / None), whatever the caller passed."""

    scan_id: int
    annotator: str
    blind: bool
    own: ReadRow | None
    other_reads: list[ReadRow] = field(default_factory=list)
    model_guess: tuple[str, float] | None = None
    final_label: str | None = None


def reader_view(project: Project, scan_id: int, annotator: str, *,
                model_guess: tuple[str, float] | None = None) -> ReaderView:
    """Blind reading: with the ``blind_reading`` setting on (default), a reader sees nothing of other
    readers nor of the model until their own read (a class or 'unsure'; a skip is not a read) is saved."""
    scan_id = _check_scan(project, scan_id)
    annotator = annotator.strip()
    reads = project.labels.reads(scan_id=scan_id)
    own = next((r for r in reads if r.annotator == annotator), None)
    blind = bool(review_settings(project)["blind_reading"]) and (own is None or own.value == NOT_A_READ)
    if blind:
        return ReaderView(scan_id, annotator, True, own)
    decision = project.reviews.adjudications(scan_id)
    return ReaderView(scan_id, annotator, False, own, [r for r in reads if r.annotator != annotator],
                      model_guess, decision[-1].value if decision else None)


# ====================================================================================== consensus
@dataclass(frozen=True)
class FinalLabel:
    """The label training uses. source: adjudicated | dawid-skene | majority; weight in (0, 1]."""

    scan_id: int
    label: str
    weight: float
    source: str
    posterior: tuple[float, ...]


@dataclass
class ProjectConsensus:
    """classes; final: scan id -> FinalLabel; method: 'dawid-skene' or 'majority';
    readers: names in confusion order; confusion: (n_readers, C, C) rows = true class (None under
    majority vote); posterior: scan id -> class probabilities for every scan with a class vote;
    ratings: (n_scans, n_readers) int64 class index or MISSING, scan_ids: its row order."""

    classes: list[str]
    final: dict[int, FinalLabel]
    method: str
    readers: list[str]
    confusion: np.ndarray | None
    posterior: dict[int, np.ndarray]
    ratings: np.ndarray
    scan_ids: list[int]
    n_multi_read: int
    n_adjudicated: int


_CONSENSUS_CACHE: "weakref.WeakKeyDictionary[Project, tuple[tuple, ProjectConsensus]]" = weakref.WeakKeyDictionary()


def project_consensus(project: Project, *, min_overlap: int = MIN_OVERLAP) -> ProjectConsensus:
    """Every scan's training label: adjudicated > Dawid–Skene > majority vote (see the module docstring).

    Kept per open project until a label or an adjudication changes (keyed by the store's versions), so
    train, rank and the GUI's predictions of one retrain share one computation. Treat it as read-only."""
    key = (project.labels.version(), project.reviews.version(), min_overlap)
    hit = _CONSENSUS_CACHE.get(project)
    if hit is not None and hit[0] == key:
        return hit[1]
    result = _project_consensus(project, min_overlap)
    _CONSENSUS_CACHE[project] = (key, result)
    return result


def _project_consensus(project: Project, min_overlap: int) -> ProjectConsensus:
    classes = project.classes
    index = {c: i for i, c in enumerate(classes)}
    reads = project.labels.current_matrix(classes)  # (n, 3): scan id, reader id, class index or -1
    decisions = project.reviews.current_adjudications()
    read_ids, row = np.unique(reads[:, 0], return_inverse=True)
    seen = set(read_ids.tolist())
    scan_ids = read_ids.tolist() + sorted(s for s in decisions if s not in seen)
    readers = dict(project.labels.reader_names())  # reader id -> name
    names = sorted({readers[a] for a in np.unique(reads[:, 1]).tolist()})
    col_of = {n: j for j, n in enumerate(names)}
    col = np.array([col_of[readers[a]] for a in reads[:, 1].tolist()], dtype=np.int64).reshape(-1)
    R = np.full((len(scan_ids), len(names)), MISSING, dtype=np.int64)
    voted = reads[:, 2] != MISSING
    R[row.reshape(-1)[voted], col[voted]] = reads[voted, 2]
    truth = np.array([index.get(decisions[s].value, MISSING) if s in decisions else MISSING for s in scan_ids],
                     dtype=np.int64)
    final: dict[int, FinalLabel] = {}
    posterior: dict[int, np.ndarray] = {}
    confusion, method, n_multi = None, "majority", 0
    if len(scan_ids) and len(names) and (R != MISSING).any():
        result = consensus(R, len(classes), truth=truth, min_overlap=min_overlap)
        confusion, method, n_multi = result.confusion, result.method, result.n_multi_read
        has_read = (R != MISSING).any(axis=1)
        labels, weights = result.labels.tolist(), result.weights.tolist()
        post_rows = result.posterior.tolist()
        for i, s in enumerate(scan_ids):
            if labels[i] != MISSING:
                posterior[s] = result.posterior[i]
                final[s] = FinalLabel(s, classes[labels[i]], weights[i], result.method, tuple(post_rows[i]))
            elif has_read[i]:
                posterior[s] = result.posterior[i]
    for s, d in decisions.items():
        if d.value in index:
            onehot = tuple(float(k == index[d.value]) for k in range(len(classes)))
            final[s] = FinalLabel(s, d.value, 1.0, "adjudicated", onehot)
    return ProjectConsensus(classes, final, method, names, confusion, posterior, R, scan_ids, n_multi,
                            len(decisions))


# ====================================================================================== agreement
def agreement(project: Project, *, n_boot: int = 1000, confidence: float = 0.95, random_state: int = 0) -> dict:
    """The ``aldesk agreement --json`` report: agreement_report's keys (pairs, fleiss_kappa,
    krippendorff_alpha, ... with CIs and n), plus ``consensus`` {method, n_multi_read, n_final,
    n_adjudicated} and ``readers``: [{name, role, reads, unsure, skipped, confusion (rows = the
    other readers' consensus class or the adjudicated class, columns = class given, rows sum to 1),
    confusion_source ('others-dawid-skene' or 'others-majority'; None when it cannot be estimated),
    accuracy (estimated against the others, never against a consensus holding the reader's own
    read; None when it cannot be estimated), why (None or the plain reason)}]."""
    if not isinstance(n_boot, Integral) or n_boot < 0:
        raise ProjectError(f"bootstrap == {n_boot!r}, must be a whole number >= 0 (0 = no intervals)")
    cons = project_consensus(project)
    classes = cons.classes
    k = len(classes)
    decisions = project.reviews.current_adjudications()
    truth = np.array([classes.index(decisions[s].value) if s in decisions and decisions[s].value in classes
                      else MISSING for s in cons.scan_ids], dtype=np.int64)
    settings = review_settings(project)
    report = agreement_report(cons.ratings.reshape(len(cons.scan_ids), len(cons.readers)), cons.readers, classes,
                              ordered=bool(settings["ordered_classes"]), truth=truth, n_boot=n_boot,
                              confidence=confidence, random_state=random_state)
    report["consensus"] = {"method": cons.method, "min_overlap": MIN_OVERLAP, "n_multi_read": cons.n_multi_read,
                           "n_final": len(cons.final), "n_adjudicated": cons.n_adjudicated}
    roles = dict(project.labels.annotators())
    tallies: dict[str, dict[str, int]] = {}
    for l in project.labels.current():
        t = tallies.setdefault(l.annotator, {"reads": 0, "unsure": 0, "skipped": 0})
        t["reads"] += 1
        t["unsure"] += l.value == "unsure"
        t["skipped"] += l.value == "skip"
    vs = {v["reader"]: v for v in report["vs_consensus"]}
    rows = []
    for name in cons.readers:
        v = vs.get(name)
        why = v["why"] if v else "only one reader so far: there is no one to compare with"
        rows.append({"name": name, "role": roles.get(name, "annotator"), **tallies.get(name, {}),
                     "confusion": v["confusion"] if v and why is None else [[None] * k for _ in range(k)],
                     "confusion_source": f"others-{v['reference']}" if v and why is None else None,
                     "accuracy": v["accuracy"] if v and why is None else None, "why": why})
    report["readers"] = rows
    return report


# ====================================================================================== adjudication
@dataclass
class ReviewItem:
    """One scan as the reviewer sees it.

    reasons : subset of ["disagreement", "unsure", "second opinion suggested"]
    status : "to decide", "awaiting read" (a read request is open) or "decided"
    impact : 0..1, how much the training label is in doubt: 1 - the consensus probability of its
             label, scaled so a coin flip is 1 (no label at all is 1); at least the share of readers
             who said unsure; for a suspected label error at least the model's margin against it
    reads : every reader's current read, side by side (label, note, time spent, when, workstation)
    consensus : the training label now (FinalLabel) or None; posterior: class -> probability
    suspect : the model's flag (SuspectRow) or None
    decisions : adjudications, oldest first (the last stands); requests : read requests, oldest first
    """

    scan_id: int
    path: str
    reasons: list[str]
    status: str
    impact: float
    reads: list[ReadRow]
    consensus: FinalLabel | None
    posterior: dict[str, float]
    suspect: SuspectRow | None
    decisions: list[AdjudicationRow]
    requests: list[ReadRequestRow]

    def summary(self) -> str:
        votes: dict[str, int] = {}
        for r in self.reads:
            votes[r.value] = votes.get(r.value, 0) + 1
        text = ", ".join(f"{v} {n}" for v, n in sorted(votes.items()))
        if self.suspect is not None:
            text += f"; model suggests {self.suspect.suggested} (margin {self.suspect.margin:.2f})"
        return text

    def to_json(self) -> dict:
        return {
            "scan_id": self.scan_id, "path": self.path, "reasons": self.reasons, "status": self.status,
            "impact": round(self.impact, 4), "summary": self.summary(),
            "reads": [{"annotator": r.annotator, "role": r.role, "label": r.value, "note": r.note,
                       "duration_ms": r.duration_ms, "created_at": r.created_at, "workstation": r.workstation}
                      for r in self.reads],
            "consensus": None if self.consensus is None else {
                "label": self.consensus.label, "weight": round(self.consensus.weight, 4),
                "source": self.consensus.source},
            "posterior": {c: round(p, 4) for c, p in self.posterior.items()},
            "suspect": None if self.suspect is None else {
                "given": self.suspect.given, "suggested": self.suspect.suggested,
                "self_confidence": round(self.suspect.self_confidence, 4), "margin": round(self.suspect.margin, 4)},
            "decisions": [asdict(d) for d in self.decisions],
            "requests": [asdict(r) for r in self.requests],
        }


def _uncertainty(posterior: np.ndarray | None, k: int) -> float:
    if posterior is None or not np.isfinite(posterior).all() or posterior.sum() <= 0:
        return 1.0
    return float(np.clip((1.0 - posterior.max()) / (1.0 - 1.0 / k), 0.0, 1.0))


def _item(scan_id: int, cons: ProjectConsensus, reads: list[ReadRow], suspect: SuspectRow | None, path: str,
          decisions: list[AdjudicationRow], requests: list[ReadRequestRow]) -> ReviewItem:
    classes = cons.classes
    values = {r.value for r in reads if r.value in classes}
    reasons = []
    if len(values) > 1:
        reasons.append("disagreement")
    if any(r.value == "unsure" for r in reads):
        reasons.append("unsure")
    final = cons.final.get(scan_id)
    if suspect is not None and final is not None and final.source != "adjudicated" and suspect.given == final.label:
        reasons.append("second opinion suggested")
    else:
        suspect = None
    post = cons.posterior.get(scan_id)
    if final is None:
        impact = 1.0
    elif final.source == "adjudicated":
        impact = 0.0
    else:
        impact = _uncertainty(post, len(classes))
        votes = [r for r in reads if r.value != NOT_A_READ]
        if votes:
            impact = max(impact, sum(r.value == "unsure" for r in votes) / len(votes))
    if suspect is not None:
        impact = max(impact, float(suspect.margin))
    if decisions:
        status = "decided"
    elif any(r.status == "open" for r in requests):
        status = "awaiting read"
    else:
        status = "to decide"
    posterior = {c: float(p) for c, p in zip(classes, post)} if post is not None else {}
    return ReviewItem(scan_id, path, reasons, status, impact, reads, final, posterior, suspect, decisions, requests)


def review_queue(project: Project, *, include_waiting: bool = True) -> list[ReviewItem]:
    """Disputed scans for a reviewer, most in doubt first: readers disagree, a reader said unsure, or
    the model suspects the label ("second opinion suggested"). Adjudicated scans leave the queue.
    Order: "to decide" before "awaiting read", then impact (consensus uncertainty, see ReviewItem),
    then more readers first, then scan id."""
    cons = project_consensus(project)
    classes = set(cons.classes)
    by_scan: dict[int, list[ReadRow]] = {}
    for r in project.labels.reads():
        by_scan.setdefault(r.scan_id, []).append(r)
    decided = set(project.reviews.current_adjudications())
    suspects = {s.scan_id: s for s in project.reviews.suspects()}
    candidates = []
    for s, reads in by_scan.items():
        if s in decided:
            continue
        values = {r.value for r in reads if r.value in classes}
        if len(values) > 1 or any(r.value == "unsure" for r in reads):
            candidates.append(s)
    for s, flag in suspects.items():
        f = cons.final.get(s)
        if s not in decided and s not in candidates and f is not None and f.label == flag.given:
            candidates.append(s)
    paths = {row.id: str(row.path) for row in project.scans.rows(candidates)}
    requests: dict[int, list[ReadRequestRow]] = {}
    for r in project.reviews.read_requests():
        requests.setdefault(r.scan_id, []).append(r)
    items = [_item(s, cons, by_scan.get(s, []), suspects.get(s), paths.get(s, ""), [], requests.get(s, []))
             for s in candidates]
    if not include_waiting:
        items = [i for i in items if i.status != "awaiting read"]
    rank = {"to decide": 0, "awaiting read": 1, "decided": 2}
    items.sort(key=lambda i: (rank[i.status], -i.impact, -len(i.reads), i.scan_id))
    return items


def review_item(project: Project, scan_id: int) -> ReviewItem:
    """Any scan as the reviewer sees it: every reader's label and note side by side, the consensus,
    the model's flag, past decisions and read requests (blind reading does not apply to reviewing)."""
    scan_id = _check_scan(project, scan_id)
    cons = project_consensus(project)
    suspects = {s.scan_id: s for s in project.reviews.suspects()}
    return _item(scan_id, cons, project.labels.reads(scan_id=scan_id), suspects.get(scan_id),
                 str(project.scans.get(scan_id).path), project.reviews.adjudications(scan_id),
                 project.reviews.read_requests(scan_id))


def adjudicate(project: Project, scan_id: int, label: str, reason: str, reviewer: str) -> str:
    """Set a scan's final label (it overrides every reader and trains with weight 1). A reason is
    required; the reviewer must have the reviewer or lead role. Any open read request for the scan is
    met by this decision. Returns the adjudication's id; an earlier decision is kept as history."""
    scan_id = _check_scan(project, scan_id)
    reviewer = _require_reviewer(project, reviewer)
    by_name = {c.lower(): c for c in project.classes}
    value = by_name.get(label.strip().lower())
    if value is None:
        raise ProjectError(f"final label {label!r} is not a class of this project ({', '.join(project.classes)}); "
                           "a final label must be a class, not unsure or skip")
    if not reason.strip():
        raise ProjectError("give a reason for the final label (e.g. --reason 'consolidation visible on lateral view')")
    return project.reviews.add_adjudication(scan_id, project.labels.annotator_id(reviewer, create=False), value,
                                            reason.strip(), workstation=socket.gethostname())


def request_read(project: Project, scan_id: int, reviewer: str, reason: str = "") -> str:
    """Ask for one more independent read: the scan goes back into the queues of readers who have not
    read it (first in line) until one of them reads it, or the scan is adjudicated. Returns the id."""
    scan_id = _check_scan(project, scan_id)
    reviewer = _require_reviewer(project, reviewer)
    return project.reviews.add_read_request(scan_id, project.labels.annotator_id(reviewer, create=False),
                                            reason.strip(), workstation=socket.gethostname())


# ====================================================================================== suspected label errors
@dataclass
class SuspectReport:
    """Result of a search: labelled scans examined, flags (largest margin first), per-class thresholds."""

    examined: int
    flagged: list[SuspectRow]
    thresholds: dict[str, float]
    extractor: str

    def to_json(self) -> dict:
        return {"examined": self.examined, "extractor": self.extractor, "thresholds": self.thresholds,
                "flagged": [asdict(s) for s in self.flagged]}


def find_suspect_labels(project: Project, *, extractor: str = "default", folds: int = 5, random_state: int = 0,
                        progress: Progress = no_progress, should_stop: ShouldStop = never_stop) -> SuspectReport:
    """Flag training labels a model trained without them confidently disagrees with (confident
    learning on out-of-fold logistic-regression probabilities, weighted by consensus weight). Flags
    replace the previous search's and enter the review queue as "second opinion suggested";
    adjudicated scans are never flagged."""
    from aldesk.app.features import load_features
    from aldesk.app.labelling import training_labels
    from aldesk.learning.base import UNLABELLED, standardize
    from aldesk.review.label_errors import find_label_issues, out_of_fold_proba

    if not isinstance(folds, Integral) or folds < 2:
        raise ProjectError(f"folds == {folds!r}, must be a whole number >= 2")
    ids, X = load_features(project, extractor, progress=progress, should_stop=should_stop)
    check_stop(should_stop, "the search for label errors")
    y, w = training_labels(project, ids)
    labelled = np.flatnonzero(y != UNLABELLED)
    if len(labelled) < 2 * len(project.classes):
        raise NotEnoughLabelsError(f"{len(labelled)} scans have a training label; label at least two scans of "
                                   "every class before looking for label errors")
    progress(0, 1, "out-of-fold predictions")
    proba = out_of_fold_proba(standardize(X)[labelled], y[labelled], len(project.classes), folds=folds,
                              sample_weight=w[labelled], random_state=random_state)
    check_stop(should_stop, "the search for label errors")
    issues = find_label_issues(y[labelled], proba)
    cons_final = project.reviews.current_adjudications()
    classes = project.classes
    rows = []
    for i, k, margin, conf in zip(issues.indices, issues.suggested, issues.margin, issues.self_confidence):
        scan = int(ids[labelled[i]])
        if scan in cons_final:
            continue
        rows.append({"scan_id": scan, "given": classes[int(y[labelled[i]])], "suggested": classes[int(k)],
                     "self_confidence": float(conf), "margin": float(margin)})
    project.reviews.replace_suspects(rows, extractor=extractor)
    progress(1, 1, f"{len(rows)} flagged")
    return SuspectReport(len(labelled), project.reviews.suspects(),
                         {c: round(float(t), 4) for c, t in zip(classes, issues.thresholds)}, extractor)


def find_scan(project: Project, ref: str | int) -> int:
    """A scan named by its id or by its path (absolute, or relative to its imported folder)."""
    from aldesk.app.answers import ScanPathIndex

    text = str(ref).strip()
    if text.isdigit() and project.scans.rows([int(text)]):
        return int(text)
    scan_id, why = ScanPathIndex(project).find(text)
    if scan_id is None:
        raise ProjectError(f"no scan {text!r} in this project: not a scan id, and {why}")
    return scan_id
