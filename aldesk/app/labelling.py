"""Record labels and build the training set from them."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import numpy as np

from aldesk.app.answers import read_labelled_csv
from aldesk.store import Project
from aldesk.learning.base import UNLABELLED


# Rows per write transaction of a label file: ~25 ms each, so another process's write waits that long.
LABEL_FILE_CHUNK = 250


def workstation_name() -> str:
    return socket.gethostname()


def label_from_csv(project: Project, csv_path: str | os.PathLike, annotator: str, *, strict: bool = False) -> dict:
    """Record one reader's labels from a ``path,label[,note][,duration_ms]`` CSV.

    The whole file is read and checked before anything is written (a bad line changes nothing); the
    labels are then written in transactions of ``LABEL_FILE_CHUNK`` rows, so a reader labelling in the
    GUI meanwhile is never kept waiting. Stopped part way, running the file again completes it (unchanged
    labels are skipped). The same image listed twice with different labels is that reader's latest line (reported in
    "conflicts"); ``strict`` refuses the whole file instead. Returns added/changed/unchanged/conflicts."""
    read = read_labelled_csv(project, csv_path, on_conflict="refuse" if strict else "latest")
    annotator_id = project.labels.annotator_id(annotator)
    host = workstation_name()
    counts = project.labels.add_many(
        [{"scan_id": r.scan_id, "annotator_id": annotator_id, "value": r.label, "note": r.note,
          "duration_ms": r.duration_ms, "workstation": host} for r in read.rows],
        source="csv", chunk=LABEL_FILE_CHUNK,
    )
    return {**counts, "conflicts": [c.to_json() for c in read.conflicts], "warnings": read.warnings()}


def final_labels(project: Project) -> dict[int, str]:
    """scan id -> the label training uses: adjudicated, else Dawid–Skene consensus, else majority vote
    (see aldesk.app.review; a majority tie or only 'unsure' reads give no label)."""
    from aldesk.app.review import project_consensus

    return {s: f.label for s, f in project_consensus(project).final.items()}


def training_labels(project: Project, scan_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y (n,) int64 class index or UNLABELLED, weights (n,) float64) in ``scan_ids`` order.

    weights are the soft labels as sample weights: 1 for an adjudicated label, the Dawid–Skene
    posterior (or majority vote share) of the chosen class otherwise, 0 where unlabelled."""
    from aldesk.app.review import project_consensus

    classes = {c: i for i, c in enumerate(project.classes)}
    final = project_consensus(project).final
    ids = np.asarray(scan_ids).tolist()
    y = np.array([classes[final[s].label] if s in final else UNLABELLED for s in ids], dtype=np.int64)
    w = np.array([final[s].weight if s in final else 0.0 for s in ids], dtype=np.float64)
    return y, w


def label_vector(project: Project, scan_ids: np.ndarray) -> np.ndarray:
    """(n,) int64 class index per scan in ``scan_ids`` order, UNLABELLED where no final label."""
    return training_labels(project, scan_ids)[0]


def read_scan_ids(project: Project) -> set[int]:
    """Scans that have any current read (class, unsure or skip): not offered again to rank."""
    return set(project.labels.read_scan_ids().tolist())


def record_label(project: Project, scan_id: int, annotator: str, value: str, *, note: str = "",
                 duration_ms: int | None = None) -> str:
    """Record one read. When this returns the label is committed (synchronous=FULL): durable before the
    UI says it is saved. Returns the id of the reader's current label for the scan."""
    annotator_id = project.labels.annotator_id(annotator)
    project.labels.add_many([{"scan_id": scan_id, "annotator_id": annotator_id, "value": value, "note": note,
                              "duration_ms": duration_ms, "workstation": workstation_name()}], source="gui")
    current = [l for l in project.labels.current_for_scan(scan_id) if l.annotator == annotator]
    return current[0].id


# The reading screen waits at most this long for another process's write (an import batch, a chunk of a
# label file) before it journals the label instead: the reader never waits longer, and is never refused.
READER_WAIT_MS = 80


@dataclass(frozen=True)
class Recorded:
    """A label from the reading screen: committed, or durably pending in the project's journal."""

    label_id: str
    pending: bool


def record_read(project: Project, scan_id: int, annotator: str, value: str, *, note: str = "",
                duration_ms: int | None = None, wait_ms: int = READER_WAIT_MS) -> Recorded:
    """Record one read for the reading screen: never refused because another process is writing. When
    the project's write lock is not free within ``wait_ms`` the label is fsynced to the project's
    journal and written by the next write (``flush_pending``, or any label write, in any process);
    show it as "saved (pending)" until ``pending_labels`` no longer lists it."""
    label_id, pending = project.labels.record(scan_id, annotator, value, note=note, duration_ms=duration_ms,
                                              workstation=workstation_name(), wait_ms=wait_ms)
    return Recorded(label_id, pending)


def pending_labels(project: Project) -> list[dict]:
    """Labels waiting in the journal, oldest first."""
    return project.labels.pending()


def flush_pending(project: Project, *, wait_ms: int = READER_WAIT_MS) -> int:
    """Write the journal's labels if the lock is free within ``wait_ms``; returns how many were written
    (0 when none waited or the lock is still taken)."""
    return project.labels.flush_pending(wait_ms=wait_ms)


def undo_label(project: Project, label_id: str) -> str | None:
    """Undo a read (Ctrl+Z): the previous value comes back, or the scan is unread again. History is kept.
    A label still waiting in the journal is simply taken out of it."""
    if project.labels.journal.remove(label_id):
        return None
    return project.labels.undo(label_id)
