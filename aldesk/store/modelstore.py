"""Rows about trained models: when, on what, how good; weights only as plain arrays (no pickles)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from aldesk.store.featurestore import arrays_from_bytes, arrays_to_bytes

if TYPE_CHECKING:
    from aldesk.store.project import Project


class ModelStore:
    def __init__(self, project: "Project"):
        self._p = project

    def add(self, *, extractor: str, estimator: str, n_labels: int, metrics: dict,
            arrays: dict[str, np.ndarray] | None) -> int:
        from aldesk.store.project import utc_now

        with self._p.transaction() as c:
            return c.execute(
                "INSERT INTO models(created_at, extractor, estimator, n_labels, metrics, arrays) VALUES (?, ?, ?, ?, ?, ?)",
                (utc_now(), extractor, estimator, n_labels, json.dumps(metrics), arrays_to_bytes(arrays) if arrays else None),
            ).lastrowid

    def latest(self) -> dict | None:
        row = self._p.conn.execute(
            "SELECT id, created_at, extractor, estimator, n_labels, metrics, arrays FROM models ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return {"id": row[0], "created_at": row[1], "extractor": row[2], "estimator": row[3], "n_labels": row[4],
                "metrics": json.loads(row[5]), "arrays": arrays_from_bytes(row[6]) if row[6] else None}

    def history(self) -> list[dict]:
        """Every trained model, oldest first, without weights: for learning curves."""
        cur = self._p.conn.execute("SELECT id, created_at, extractor, estimator, n_labels, metrics FROM models ORDER BY id")
        return [{"id": r[0], "created_at": r[1], "extractor": r[2], "estimator": r[3], "n_labels": r[4],
                 "metrics": json.loads(r[5])} for r in cur]
