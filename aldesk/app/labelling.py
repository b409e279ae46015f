"""Record labels and build the training set from them."""

from __future__ import annotations

import os
import socket

import numpy as np

from aldesk.app.answers import read_labelled_csv
from aldesk.review.consensus import majority_labels
from aldesk.store import Project
from aldesk.learning.base import UNLABELLED


def workstation_name() -> str:
    return socket.gethostname()


def label_from_csv(project: Project, csv_path: str | os.PathLike, annotator: str) -> dict[str, int]:
    """Record one reader's labels from a ``path,label`` CSV, all or nothing. Returns added/changed/unchanged."""
    rows = read_labelled_csv(project, csv_path)
    annotator_id = project.labels.annotator_id(annotator)
    host = workstation_name()
    return project.labels.add_many(
        [{"scan_id": r.scan_id, "annotator_id": annotator_id, "value": r.label, "workstation": host} for r in rows],
        source="csv",
    )


def final_labels(project: Project) -> dict[int, str]:
    """scan id -> the label training uses (majority of readers; disputed scans excluded)."""
    return majority_labels(((l.scan_id, l.value) for l in project.labels.current()), project.classes)


def label_vector(project: Project, scan_ids: np.ndarray) -> np.ndarray:
    """(n,) int64 class index per scan in ``scan_ids`` order, UNLABELLED where no final label."""
    classes = {c: i for i, c in enumerate(project.classes)}
    final = final_labels(project)
    return np.array([classes[final[s]] if s in final else UNLABELLED for s in scan_ids.tolist()], dtype=np.int64)


def read_scan_ids(project: Project) -> set[int]:
    """Scans that have any current read (class, unsure or skip): not offered again to rank."""
    return {l.scan_id for l in project.labels.current()}


def record_label(project: Project, scan_id: int, annotator: str, value: str, *, note: str = "",
                 duration_ms: int | None = None) -> str:
    """Record one read. When this returns the label is committed (synchronous=FULL): durable before the
    UI says it is saved. Returns the id of the reader's current label for the scan."""
    annotator_id = project.labels.annotator_id(annotator)
    project.labels.add_many([{"scan_id": scan_id, "annotator_id": annotator_id, "value": value, "note": note,
                              "duration_ms": duration_ms, "workstation": workstation_name()}], source="gui")
    current = [l for l in project.labels.current_for_scan(scan_id) if l.annotator == annotator]
    return current[0].id


def undo_label(project: Project, label_id: str) -> str | None:
    """Undo a read (Ctrl+Z): the previous value comes back, or the scan is unread again. History is kept."""
    return project.labels.undo(label_id)
