"""Issue 14 point 1: backups keep previews once, in a content-addressed side store.

A backup copies every table but the previews' bytes (1.6 of 2.1 GB at 100,000 scans), which go once
into PROJECT/backups/previews.sqlite; a second backup adds none; a restore puts them back byte for byte;
a backup killed while writing the side store leaves every listed backup whole; old full backups restore.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from aldesk.store import PROJECT_DB_NAME, Project
from aldesk.store.backups import (BACKUP_DIR_NAME, _copy_whole, list_backups, prune_backups,
                                  restore_backup, verify_backup)
from aldesk.store.preview_store import (PREVIEW_STORE_NAME, REFS_TABLE, SIDE_TABLES, collect_garbage,
                                        missing_previews, missing_rows, writing_lock)
from aldesk.store.project import utc_now
from tests.store.test_disk_full import small_disk  # noqa: F401  (fixture)

N = 300


def _add_scans(project: Project, n: int, start: int = 0) -> list[int]:
    """Scans with distinct 24 x 20 previews (some RGB), so every preview has its own digest."""
    rng = np.random.default_rng(start)
    root_id, _ = project.scans.root_for(project.path / "data")
    ids = []
    with project.transaction():
        for i in range(start, start + n):
            shape = (24, 20, 3) if i % 7 == 0 else (24, 20)
            ids.append(project.scans.insert_scan({
                "uid": f"1.2.826.{i}", "pixel_hash": f"h{i}", "root_id": root_id, "relpath": f"{i}.png",
                "file_size": 1, "file_mtime": 0.0, "format": "png", "rows": 24, "columns": 20, "frames": 1,
                "samples": 1, "bits_allocated": 8, "bits_stored": 8, "signed": 0, "photometric": "MONOCHROME2",
                "windows": "[]", "imported_at": utc_now()}, rng.integers(0, 256, shape, dtype=np.uint8)))
    return ids


def _rows(db: Path, table: str) -> list[tuple]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        try:
            return conn.execute(f"SELECT rowid, * FROM {table} ORDER BY rowid").fetchall()
        except sqlite3.OperationalError:  # WITHOUT ROWID
            return sorted(conn.execute(f"SELECT * FROM {table}").fetchall())
    finally:
        conn.close()


def _schema(db: Path) -> list[tuple]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                                   "WHERE tbl_name NOT IN ('preview_refs', 'feature_refs')").fetchall())
    finally:
        conn.close()


def _tables(db: Path) -> list[str]:
    return [r[1] for r in _schema(db) if r[0] == "table" and not r[1].startswith("sqlite_")]


@pytest.fixture
def proj(tmp_path):
    path = tmp_path / "p"
    with Project.create(path, ["a", "b"]) as p:
        ids = _add_scans(p, N)
        aid = p.labels.annotator_id("dr_a")
        p.labels.add_many([{"scan_id": i, "annotator_id": aid, "value": "a"} for i in ids[:40]], source="gui")
        set_id = p.features.create_set("default", "1", 3, None)
        p.features.put(set_id, np.asarray(ids), np.random.default_rng(1).normal(size=(N, 3)).astype(np.float32))
        # a label changed: a table with plain rowids (labels has a TEXT key) whose rowids must be kept
        p.labels.add_many([{"scan_id": ids[0], "annotator_id": aid, "value": "b"}], source="gui")
    return path, ids


def _side(path: Path) -> Path:
    return path / BACKUP_DIR_NAME / PREVIEW_STORE_NAME


def _side_rows(path: Path, table: str = "previews") -> int:
    conn = sqlite3.connect(_side(path))
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def test_a_backup_holds_no_preview_bytes_and_names_every_preview(proj):
    path, ids = proj
    with Project.open(path) as p:
        made = p.backup("manual")
    db = path / PROJECT_DB_NAME
    assert _rows(made, "previews") == [] and _rows(made, "features") == []
    refs = _rows(made, REFS_TABLE)
    assert [r[1] for r in refs] == ids and all(len(r[2]) == 32 for r in refs)
    assert [r[1:3] for r in _rows(made, "feature_refs")] == [(1, i) for i in ids]
    assert _side_rows(path) == N and _side_rows(path, "features") == N
    assert missing_rows(made, path / BACKUP_DIR_NAME) == {"previews": 0, "features": 0}
    verify_backup(made)
    # the same schema and header fields, and every other row as it was (rowids included)
    assert _schema(made) == _schema(db)
    for table in _tables(db):
        if table not in SIDE_TABLES:
            assert _rows(made, table) == _rows(db, table), table
    conn = sqlite3.connect(made)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == sqlite3.connect(db).execute("PRAGMA user_version").fetchone()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()
    with Project.open(path) as p:
        full = path / "full.sqlite"
        assert _copy_whole(p.conn, full) == ["ok"]  # what a backup was before
        preview_bytes = p.conn.execute("SELECT SUM(length(data)) FROM previews").fetchone()[0]
    assert made.stat().st_size <= full.stat().st_size - 0.8 * preview_bytes


def test_a_second_backup_adds_no_preview_bytes_and_a_changed_preview_is_added_once(proj):
    path, ids = proj
    with Project.open(path) as p:
        p.backup("manual")
        side_bytes = _side(path).stat().st_size
        aid = p.labels.annotator_id("dr_b")
        p.labels.add_many([{"scan_id": ids[50], "annotator_id": aid, "value": "a"}], source="gui")
        second = p.backup("manual")
        assert _side_rows(path) == N and _side(path).stat().st_size == side_bytes
        assert len(_rows(second, "labels")) == 42
        # a unit's thumbnail is replaced when slices are added: the new preview is a new row, the old one stays
        with p.transaction() as c:
            c.execute("UPDATE previews SET data = zeroblob(length(data)) WHERE scan_id = ?", (ids[3],))
        set_id = p.features.find_set("default", "1")
        p.features.put(set_id, np.asarray(ids[:2]), np.zeros((2, 3), np.float32))  # vectors extracted again
        third = p.backup("manual")
    assert _side_rows(path) == N + 1 and _side_rows(path, "features") == N + 2
    assert missing_previews(second, path / BACKUP_DIR_NAME) == 0 and missing_previews(third, path / BACKUP_DIR_NAME) == 0


def test_restore_puts_the_previews_back_byte_identical(proj):
    path, ids = proj
    db = path / PROJECT_DB_NAME
    before = {t: _rows(db, t) for t in _tables(db)}
    with Project.open(path) as p:
        made = p.backup("manual")
        with p.transaction() as c:  # what the restore must undo
            c.execute("DELETE FROM previews WHERE scan_id < ?", (ids[100],))
            c.execute("UPDATE previews SET data = zeroblob(length(data))")
        c.execute("DELETE FROM features")
    result = restore_backup(path, made)
    assert (result.previews_restored, result.previews_missing, result.features_missing) == (N, 0, 0)
    assert result.to_json()["previews_restored"] == N and result.describe_previews() is None
    assert {t: _rows(db, t) for t in _tables(db)} == before
    assert REFS_TABLE not in _tables(db) and "feature_refs" not in _tables(db)
    with Project.open(path) as p:
        assert p.integrity_check() == "ok"
        assert np.array_equal(p.scans.preview(ids[7]).shape, (24, 20, 3))


def test_an_old_full_backup_lists_verifies_and_restores(proj):
    """Backups made before the side store hold their previews inside; they restore as they always did."""
    path, ids = proj
    db = path / PROJECT_DB_NAME
    before = _rows(db, "previews")
    with Project.open(path) as p:
        old = path / BACKUP_DIR_NAME / "project-manual-20260101T000000000000Z.sqlite"
        old.parent.mkdir(exist_ok=True)
        assert _copy_whole(p.conn, old) == ["ok"]  # the format of every backup made before
        os.utime(old, (1e9, 1e9))
        p.backup("manual")  # a new one beside it, and a side store the old one does not use
    assert old in list_backups(path)
    verify_backup(old)
    assert missing_rows(old, path / BACKUP_DIR_NAME) == {}
    features = _rows(db, "features")
    with Project.open(path) as p:
        with p.transaction() as c:
            c.execute("DELETE FROM previews")
            c.execute("DELETE FROM features")
    _side(path).unlink()  # not needed by a full backup
    result = restore_backup(path, old)
    assert (result.previews_restored, result.previews_missing) == (0, 0)
    assert _rows(db, "previews") == before and _rows(db, "features") == features


def test_restore_says_which_previews_the_side_store_lacks(proj):
    path, ids = proj
    with Project.open(path) as p:
        made = p.backup("manual")
    conn = sqlite3.connect(_side(path))
    conn.execute("DELETE FROM previews WHERE scan_id IN (?, ?)", (ids[0], ids[1]))
    conn.execute("UPDATE previews SET data = zeroblob(length(data)) WHERE scan_id = ?", (ids[2],))  # damaged bytes
    conn.commit()
    conn.close()
    assert missing_previews(made, path / BACKUP_DIR_NAME) == 2
    result = restore_backup(path, made)
    assert (result.previews_restored, result.previews_missing) == (N - 3, 3)
    assert "3 previews were not in backups/previews.sqlite" in result.describe_previews()
    with Project.open(path) as p:
        assert p.scans.count() == N and p.integrity_check() == "ok"
        with pytest.raises(Exception, match="has no preview"):
            p.scans.preview(ids[2])


# A backup killed while it writes the side store: after two committed chunks, in the middle of the third
# (its rows written, not committed), the process dies without any cleanup, as under SIGKILL.
KILLED_BACKUP = textwrap.dedent("""
    import os, sys
    import aldesk.store.preview_store as ps
    from aldesk.store import Project
    ps.CHUNK = 16
    calls = []
    real = ps._insert
    def dying_insert(side, sql, rows):
        calls.append(1)
        if len(calls) == 3:
            side.execute("BEGIN IMMEDIATE")
            side.executemany(sql, rows)
            os._exit(9)
        return real(side, sql, rows)
    ps._insert = dying_insert
    with Project.open(sys.argv[1]) as p:
        p.backup("manual")
""")


def test_a_backup_killed_while_writing_the_side_store_leaves_every_listed_backup_whole(tmp_path, proj):
    path, ids = proj
    with Project.open(path) as p:
        first = p.backup("manual")
        _add_scans(p, 100, start=N)  # new previews for the killed backup to write
    script = tmp_path / "killed_backup.py"
    script.write_text(KILLED_BACKUP)
    out = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120,
                         env=os.environ | {"PYTHONPATH": os.getcwd()})
    assert out.returncode == 9, out.stderr
    folder = path / BACKUP_DIR_NAME
    assert Path(str(_side(path)) + "-journal").exists()  # the third chunk: written, never committed
    assert list(folder.glob(".partial-*"))
    assert list_backups(path) == [first]
    assert missing_rows(first, folder) == {"previews": 0, "features": 0}  # reading rolls the dead chunk back
    assert N < _side_rows(path) < N + 100         # the two committed chunks stay, for the next backup
    with Project.open(path) as p:
        second = p.backup("manual")
    assert not list(folder.glob(".partial-*")) and not Path(str(_side(path)) + "-journal").exists()
    assert _side_rows(path) == N + 100
    for b in list_backups(path):
        verify_backup(b)
        assert missing_rows(b, folder) == {"previews": 0, "features": 0}
    db = path / PROJECT_DB_NAME
    before = _rows(db, "previews")
    result = restore_backup(path, second)
    assert result.previews_missing == 0 and _rows(db, "previews") == before


def test_pruning_removes_only_previews_no_kept_backup_names(proj):
    path, ids = proj
    folder = path / BACKUP_DIR_NAME
    with Project.open(path) as p:
        old = p.backup("manual")
        with p.transaction() as c:
            c.execute("UPDATE previews SET data = zeroblob(length(data)) WHERE scan_id = ?", (ids[5],))
        new = p.backup("manual")
    assert _side_rows(path) == N + 1
    with writing_lock(folder):  # a backup being written: nothing is collected
        assert collect_garbage(folder, lambda: [new]) == 0
    assert _side_rows(path) == N + 1
    assert list_backups(path) == [new, old]
    assert collect_garbage(folder, lambda: list_backups(path)) == 0  # the old preview: named by the older backup
    assert collect_garbage(folder, lambda: [old, new]) == 0
    old.unlink()
    assert collect_garbage(folder, lambda: list_backups(path)) == 1  # the replaced preview only the old one named
    assert _side_rows(path) == N and missing_previews(new, folder) == 0
    # pruning through the project: the kept backups' previews stay
    with Project.open(path) as p:
        for _ in range(3):
            p.backup("scheduled")
    prune_backups(folder, "scheduled", keep=1)
    for b in list_backups(path):
        assert missing_previews(b, folder) == 0


def test_a_backup_onto_a_full_disk_is_a_message_and_keeps_the_backups(small_disk, tmp_path, capsys):
    from aldesk.cli import main

    path = tmp_path / "p"
    with Project.create(path, ["a", "b"]) as p:
        (small_disk / "backups").mkdir()
        (path / BACKUP_DIR_NAME).symlink_to(small_disk / "backups")  # the backups' disk fills, not the project's
        root_id, _ = p.scans.root_for(path / "data")
        rng = np.random.default_rng(0)
        with p.transaction():
            for i in range(40):
                p.scans.insert_scan({
                    "uid": f"1.2.{i}", "pixel_hash": f"h{i}", "root_id": root_id, "relpath": f"{i}.png",
                    "file_size": 1, "file_mtime": 0.0, "format": "png", "rows": 128, "columns": 128, "frames": 1,
                    "samples": 1, "bits_allocated": 8, "bits_stored": 8, "signed": 0, "photometric": "MONOCHROME2",
                    "windows": "[]", "imported_at": utc_now()}, rng.integers(0, 256, (128, 128), dtype=np.uint8))
        first = p.backup("manual")
        with p.transaction():  # more new previews than the disk has room for in the side store
            for i in range(40, 260):
                p.scans.insert_scan({
                    "uid": f"1.2.{i}", "pixel_hash": f"h{i}", "root_id": root_id, "relpath": f"{i}.png",
                    "file_size": 1, "file_mtime": 0.0, "format": "png", "rows": 128, "columns": 128, "frames": 1,
                    "samples": 1, "bits_allocated": 8, "bits_stored": 8, "signed": 0, "photometric": "MONOCHROME2",
                    "windows": "[]", "imported_at": utc_now()}, rng.integers(0, 256, (128, 128), dtype=np.uint8))
    assert main(["backup", str(path)]) == 1
    err = capsys.readouterr().err
    assert "the disk is full" in err and str(small_disk) in err and "damaged" not in err and "Traceback" not in err
    folder = path / BACKUP_DIR_NAME
    assert list_backups(path) == [first] and not list(folder.glob(".partial-*"))
    verify_backup(first)
    assert missing_previews(first, folder) == 0


def test_doctor_says_when_the_newest_backup_lacks_side_store_rows(proj):
    from aldesk.app.doctor import diagnose

    path, ids = proj
    with Project.open(path) as p:
        p.backup("manual")
    report = diagnose(path)
    assert report["backups"]["latest_side_store_missing"] == {"previews": 0, "features": 0}
    assert not any("previews.sqlite" in a for a in report["advice"])
    conn = sqlite3.connect(_side(path))
    conn.execute("DELETE FROM previews WHERE scan_id = ?", (ids[0],))
    conn.commit()
    conn.close()
    report = diagnose(path)
    assert report["backups"]["latest_side_store_missing"] == {"previews": 1, "features": 0}
    assert any("backups/previews.sqlite does not hold" in a and "take a new backup" in a for a in report["advice"])


def test_backup_list_names_the_side_store_and_restore_says_which_vectors_it_lacked(proj, capsys):
    from aldesk.cli import main

    path, ids = proj
    assert main(["backup", str(path)]) == 0
    assert main(["backup", str(path), "--list"]) == 0
    out = capsys.readouterr().out
    assert "previews and feature vectors of these backups, kept once" in out and PREVIEW_STORE_NAME in out
    conn = sqlite3.connect(_side(path))
    conn.execute("DELETE FROM features WHERE scan_id = ?", (ids[0],))
    conn.commit()
    conn.close()
    assert main(["backup", str(path), "--restore", "latest"]) == 0
    assert "1 feature vectors were not in backups/previews.sqlite; they are computed again" in capsys.readouterr().out
    with Project.open(path) as p:
        set_id = p.features.find_set("default", "1")
        assert p.features.missing_scan_ids(set_id).tolist() == [ids[0]]  # extraction fills it when next needed
