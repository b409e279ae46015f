"""Recording, changing and undoing a label costs the same however long the label history is.

Cost is counted in SQLite virtual-machine steps (a progress handler called every 100 steps), which is
deterministic: no wall-clock assertion. A whole-table scan per changed label shows as a cost that grows
with the table (before the v5 indexes: ~10x from 400 to 4,000 label rows)."""

from __future__ import annotations

import sqlite3

import pytest

from aldesk.store import Project
from aldesk.store.project import utc_now


def _add_scans(project: Project, n: int) -> list[int]:
    with project.transaction() as c:
        root = c.execute("INSERT INTO roots(path) VALUES ('/data')").lastrowid
        c.executemany(
            "INSERT INTO scans(uid, pixel_hash, root_id, relpath, file_size, file_mtime, format, rows, columns, "
            "frames, samples, bits_allocated, bits_stored, signed, photometric, imported_at) "
            "VALUES (?, ?, ?, ?, 1, 0, 'png', 8, 8, 1, 1, 8, 8, 0, 'MONOCHROME2', ?)",
            [(f"u{i}", f"h{i}", root, f"s{i}.png", utc_now()) for i in range(n)])
    return [r[0] for r in project.conn.execute("SELECT id FROM scans ORDER BY id")]


def _steps(project: Project, fn) -> int:
    ticks = [0]

    def tick():
        ticks[0] += 1
        return 0

    project.conn.set_progress_handler(tick, 100)
    try:
        fn()
    finally:
        project.conn.set_progress_handler(None, 0)
    return ticks[0] * 100


def _cost_of_changes(tmp_path, n_rows: int, n_changes: int = 50) -> tuple[int, int, int]:
    """VM steps to change ``n_changes`` labels, to record one new label and to undo it, with ``n_rows``
    label rows (two readers, every scan read) already in the table."""
    p = Project.create(tmp_path / f"p{n_rows}", ["a", "b"])
    try:
        ids = _add_scans(p, n_rows // 2 + 1)
        r1, r2 = p.labels.annotator_id("r1"), p.labels.annotator_id("r2")
        p.labels.add_many([{"scan_id": s, "annotator_id": r, "value": "a"} for s in ids[:-1] for r in (r1, r2)],
                          source="test")
        changes = [{"scan_id": s, "annotator_id": r1, "value": "b"} for s in ids[:n_changes]]
        change = _steps(p, lambda: p.labels.add_many(changes, source="test"))
        record = _steps(p, lambda: p.labels.add_many([{"scan_id": ids[-1], "annotator_id": r1, "value": "b"}],
                                                      source="test"))
        label_id = p.labels.current_for_scan(ids[0])[0].id
        undo = _steps(p, lambda: p.labels.undo(label_id))
        return change, record, undo
    finally:
        p.close()


def test_changing_a_label_does_not_scan_the_label_table(tmp_path):
    small = _cost_of_changes(tmp_path, 400)
    large = _cost_of_changes(tmp_path, 4000)
    for what, a, b in zip(("change 50 labels", "record a label", "undo a label"), small, large):
        assert b < 1.5 * a + 500, f"{what}: {a} VM steps at 400 label rows, {b} at 4,000 rows"


@pytest.mark.parametrize("sql", [
    "SELECT id FROM labels WHERE replaced_by = 'x'",
    "SELECT id FROM labels WHERE scan_id = 1 ORDER BY created_at",
    "DELETE FROM scans WHERE root_id = 1 AND relpath = 'a' AND NOT EXISTS (SELECT 1 FROM labels WHERE scan_id = scans.id)",
])
def test_label_lookups_use_an_index(project, sql):
    plan = " ".join(r[3] for r in project.conn.execute("EXPLAIN QUERY PLAN " + sql))
    assert "SCAN labels" not in plan, plan


def test_v4_project_gets_the_label_indexes(tmp_path):
    from aldesk.store import schema

    Project.create(tmp_path / "p", ["a", "b"]).close()
    db = tmp_path / "p" / "project.sqlite"
    c = sqlite3.connect(db)
    c.execute("DROP INDEX labels_scan")
    c.execute("DROP INDEX labels_replaced_by")
    c.execute("DROP INDEX features_set_scan")
    c.execute("PRAGMA user_version = 4")
    c.commit()
    c.close()
    with Project.open(tmp_path / "p") as p:
        assert p.status.migrated_from == 4
        names = {r[0] for r in p.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"labels_scan", "labels_replaced_by", "features_set_scan"} <= names
        assert p.conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
