"""Rows of the "when can I stop?" evidence: which scans were drawn as audit scans (and when), and each
model's predictions on the stop set as plain arrays (no pickles)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from aldesk.store.project import Project

STOP_HISTORY_KEPT = 8  # models whose stop-set predictions are kept (the stability window needs 4)


class AuditStore:
    def __init__(self, project: "Project"):
        self._p = project

    # ---------------------------------------------------------------- audit draws
    def add_draws(self, scan_ids, *, annotator: str, n_labels: int) -> int:
        """Record scans as drawn for the audit (a scan drawn before keeps its first draw); returns how many
        were new."""
        from aldesk.store.project import utc_now

        now = utc_now()
        rows = [(int(s), now, annotator, int(n_labels)) for s in np.asarray(scan_ids, dtype=np.int64).tolist()]
        with self._p.transaction() as c:
            before = c.total_changes
            c.executemany("INSERT OR IGNORE INTO audit_draws(scan_id, drawn_at, annotator, n_labels) "
                          "VALUES (?, ?, ?, ?)", rows)
            return c.total_changes - before

    def draws(self) -> dict[int, dict]:
        """scan id -> {"drawn_at", "annotator", "n_labels"} for every audit draw."""
        cur = self._p.conn.execute("SELECT scan_id, drawn_at, annotator, n_labels FROM audit_draws ORDER BY drawn_at")
        return {r[0]: {"drawn_at": r[1], "annotator": r[2], "n_labels": r[3]} for r in cur}

    # ---------------------------------------------------------------- stop-set predictions
    def add_stop_predictions(self, model_id: int, scan_ids, predicted, *, keep: int = STOP_HISTORY_KEPT) -> None:
        """Store a model's predicted classes on the stop set; only the newest ``keep`` models keep theirs."""
        ids = np.ascontiguousarray(scan_ids, dtype="<i8")
        pred = np.ascontiguousarray(predicted, dtype="<i2")
        if ids.shape != pred.shape:
            raise ValueError(f"scan_ids has shape {ids.shape} but predicted {pred.shape}")
        with self._p.transaction() as c:
            c.execute("INSERT OR REPLACE INTO stop_predictions(model_id, scan_ids, predicted) VALUES (?, ?, ?)",
                      (int(model_id), ids.tobytes(), pred.tobytes()))
            c.execute("DELETE FROM stop_predictions WHERE model_id NOT IN "
                      "(SELECT model_id FROM stop_predictions ORDER BY model_id DESC LIMIT ?)", (int(keep),))

    def stop_history(self) -> list[dict]:
        """Oldest first: {"model_id", "n_labels", "extractor", "feature_version" (None if the model's report has
        none), "estimator", "created_at", "scan_ids" (m,) int64, "predicted" (m,) int64} for every model with
        stored stop-set predictions."""
        import json

        cur = self._p.conn.execute(
            "SELECT s.model_id, m.n_labels, m.extractor, m.estimator, m.created_at, s.scan_ids, s.predicted, m.metrics "
            "FROM stop_predictions s JOIN models m ON m.id = s.model_id ORDER BY s.model_id")
        return [{"model_id": r[0], "n_labels": r[1], "extractor": r[2], "estimator": r[3], "created_at": r[4],
                 "feature_version": (json.loads(r[7]) if r[7] else {}).get("feature_version"),
                 "scan_ids": np.frombuffer(r[5], dtype="<i8").astype(np.int64),
                 "predicted": np.frombuffer(r[6], dtype="<i2").astype(np.int64)} for r in cur]
