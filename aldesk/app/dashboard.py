"""Figures for the progress dashboard: labels over time and per reader, class balance, learning curve.

Plain data from the store (no Qt, no plotting), so the GUI and a report can share it.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from aldesk.store import Project


def dashboard_data(project: Project) -> dict:
    """{
    "labels_over_time": {reader: [(datetime, cumulative count), ...]},
    "per_reader": {reader: count of current reads},
    "class_balance": {value: count} over current reads (classes first, then unsure/skip),
    "learning_curve": [(n_labels, accuracy, ece, model id), ...] oldest first,
    "audit_curve": [(n_labels, audit accuracy, CI low, CI high, audit scans), ...] oldest first,
    "scans": total scans, "labelled": scans with a final label,
    }"""
    current = project.labels.current()
    over_time: dict[str, list] = {}
    for reader in sorted({l.annotator for l in current}):
        times = sorted(datetime.fromisoformat(l.created_at) for l in current if l.annotator == reader)
        over_time[reader] = [(t, i + 1) for i, t in enumerate(times)]
    values = Counter(l.value for l in current)
    order = list(project.classes) + ["unsure", "skip"]
    curve, audit_curve = [], []
    for m in project.models.history():
        met = m["metrics"]
        if met.get("accuracy") is not None:
            curve.append((int(m["n_labels"]), float(met["accuracy"]), float(met.get("ece", float("nan"))), m["id"]))
        if met.get("audit_accuracy") is not None and met.get("audit_ci"):
            audit_curve.append((int(m["n_labels"]), float(met["audit_accuracy"]), float(met["audit_ci"][0]),
                                float(met["audit_ci"][1]), int(met.get("audit_n", 0))))
    from aldesk.app.labelling import final_labels

    return {
        "labels_over_time": over_time,
        "per_reader": {r: len(v) for r, v in over_time.items()},
        "class_balance": {k: values.get(k, 0) for k in order},
        "learning_curve": curve,
        "audit_curve": audit_curve,
        "scans": project.scans.count(),
        "labelled": len(final_labels(project)),
    }
