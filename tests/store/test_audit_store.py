"""Audit draws and stop-set predictions: stored as rows and plain arrays; schema 1 projects gain them."""

from __future__ import annotations

import sqlite3

import numpy as np

from aldesk.store import PROJECT_DB_NAME, Project
from aldesk.store import schema


def _scan(p, i):
    from aldesk.store.project import utc_now

    root_id, _ = p.scans.root_for(p.path)
    return p.scans.insert_scan({"uid": f"u{i}", "pixel_hash": f"h{i}", "root_id": root_id, "relpath": f"{i}.png",
                                "file_size": 1, "file_mtime": 0.0, "format": "png", "rows": 4, "columns": 4,
                                "frames": 1, "samples": 1, "bits_allocated": 8, "bits_stored": 8, "signed": 0,
                                "photometric": "MONOCHROME2", "windows": "[]", "imported_at": utc_now()},
                               np.zeros((4, 4), np.uint8))


def test_schema_1_project_is_migrated_with_a_backup(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    db = folder / PROJECT_DB_NAME
    c = sqlite3.connect(db)
    c.executescript(schema.CREATE_SCRIPTS[1])
    c.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
    c.execute("PRAGMA user_version = 1")
    c.executemany("INSERT INTO meta(key, value) VALUES (?, ?)",
                  [("project_id", "x"), ("name", "old"), ("created_at", "2026"), ("patient_salt", "s"),
                   ("settings", "{}")])
    c.executemany("INSERT INTO classes(idx, name) VALUES (?, ?)", [(0, "a"), (1, "b")])
    c.commit()
    c.close()
    with Project.open(folder) as p:
        assert p.status.migrated_from == 1 and p.status.backup.is_file()
        assert p.audit.draws() == {} and p.audit.stop_history() == []


def test_draws_keep_the_first_draw(project):
    a, b = _scan(project, 1), _scan(project, 2)
    assert project.audit.add_draws([a], annotator="dr_a", n_labels=20) == 1
    assert project.audit.add_draws([a, b], annotator="dr_b", n_labels=30) == 1
    draws = project.audit.draws()
    assert draws[a]["annotator"] == "dr_a" and draws[a]["n_labels"] == 20 and draws[b]["annotator"] == "dr_b"


def test_stop_predictions_round_trip_and_only_the_newest_are_kept(project):
    ids = np.array([5, 7, 9])
    for n in range(1, 5):
        mid = project.models.add(extractor="default", estimator="logistic", n_labels=10 * n, metrics={}, arrays=None)
        project.audit.add_stop_predictions(mid, ids, np.array([0, 1, n % 2]), keep=3)
    history = project.audit.stop_history()
    assert [h["n_labels"] for h in history] == [20, 30, 40]
    assert history[-1]["scan_ids"].tolist() == [5, 7, 9] and history[-1]["predicted"].tolist() == [0, 1, 0]
