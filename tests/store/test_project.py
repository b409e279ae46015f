"""Project create/open: the safety rules of the store."""

import sqlite3

import pytest

from aldesk.errors import NotAProjectError, ProjectError, ProjectVersionError
from aldesk.store import PROJECT_DB_NAME, SCHEMA_VERSION, Project
from aldesk.store import schema


def test_create_sets_up_wal_foreign_keys_and_version(tmp_path):
    with Project.create(tmp_path / "p", ["normal", "pneumonia"]) as p:
        assert p.status.created
        assert p.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert p.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert p.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert p.classes == ["normal", "pneumonia"]
        assert len(p.patient_salt) == 64
    # everything lives under the folder
    assert (tmp_path / "p" / PROJECT_DB_NAME).is_file()


def test_project_survives_being_copied(tmp_path):
    import shutil

    with Project.create(tmp_path / "a", ["x", "y"]) as p:
        pid = p.project_id
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    with Project.open(tmp_path / "b") as p:
        assert p.project_id == pid and p.classes == ["x", "y"]


@pytest.mark.parametrize("classes, match", [
    (["only"], "at least two classes"),
    (["a", "A"], "unique"),
    (["a", "unsure"], "reserved"),
])
def test_bad_classes_rejected(tmp_path, classes, match):
    with pytest.raises(ProjectError, match=match):
        Project.create(tmp_path / "p", classes)
    assert not (tmp_path / "p" / PROJECT_DB_NAME).exists()


def test_create_refuses_existing_project(tmp_path):
    Project.create(tmp_path / "p", ["a", "b"]).close()
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(tmp_path / "p", ["a", "b"])


def test_open_missing_folder_is_not_a_project(tmp_path):
    with pytest.raises(NotAProjectError, match="no aldesk project here.*aldesk init"):
        Project.open(tmp_path / "nowhere")


def test_open_a_file_that_is_not_sqlite_changes_nothing(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    db = folder / PROJECT_DB_NAME
    db.write_bytes(b"hello, I am a text file" * 10)
    before = db.read_bytes()
    with pytest.raises(NotAProjectError, match="not an SQLite database"):
        Project.open(folder)
    assert db.read_bytes() == before
    assert sorted(x.name for x in folder.iterdir()) == [PROJECT_DB_NAME]


def test_open_a_foreign_sqlite_database_changes_nothing(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    db = folder / PROJECT_DB_NAME
    c = sqlite3.connect(db)
    c.execute("CREATE TABLE t(x)")
    c.commit()
    c.close()
    before = db.read_bytes()
    with pytest.raises(NotAProjectError, match="not an aldesk project"):
        Project.open(folder)
    assert db.read_bytes() == before


def test_open_newer_project_refused_and_unchanged(tmp_path):
    Project.create(tmp_path / "p", ["a", "b"]).close()
    db = tmp_path / "p" / PROJECT_DB_NAME
    c = sqlite3.connect(db)
    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    c.commit()
    c.close()
    before = db.read_bytes()
    with pytest.raises(ProjectVersionError, match="newer aldesk.*nothing was changed"):
        Project.open(tmp_path / "p")
    assert db.read_bytes() == before


def test_migration_backs_up_first(tmp_path, monkeypatch):
    """A fake v0 -> v1 step: the backup holds the old database, the project is upgraded."""
    Project.create(tmp_path / "p", ["a", "b"]).close()
    db = tmp_path / "p" / PROJECT_DB_NAME
    c = sqlite3.connect(db)
    c.execute("PRAGMA user_version = 0")
    c.commit()
    c.close()
    calls = []
    monkeypatch.setitem(schema.MIGRATIONS, 0, lambda conn: calls.append(conn.execute("SELECT COUNT(*) FROM classes").fetchone()[0]))
    with Project.open(tmp_path / "p") as p:
        assert calls == [2]
        assert p.status.migrated_from == 0
        backup = p.status.backup
        assert backup.is_file() and backup.parent.name == "backups"
        assert p.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    old = sqlite3.connect(backup)
    assert old.execute("PRAGMA user_version").fetchone()[0] == 0
    old.close()


def test_failed_migration_leaves_database_as_it_was(tmp_path, monkeypatch):
    Project.create(tmp_path / "p", ["a", "b"]).close()
    db = tmp_path / "p" / PROJECT_DB_NAME
    c = sqlite3.connect(db)
    c.execute("PRAGMA user_version = 0")
    c.commit()
    c.close()

    def broken(conn):
        conn.execute("DELETE FROM classes")
        raise RuntimeError("boom")

    monkeypatch.setitem(schema.MIGRATIONS, 0, broken)
    with pytest.raises(RuntimeError):
        Project.open(tmp_path / "p")
    c = sqlite3.connect(db)
    assert c.execute("SELECT COUNT(*) FROM classes").fetchone()[0] == 2
    assert c.execute("PRAGMA user_version").fetchone()[0] == 0


def test_labels_keep_history_and_are_idempotent(project):
    from aldesk.store.project import utc_now

    root_id, _ = project.scans.root_for(project.path)
    import numpy as np

    with project.transaction():
        sid = project.scans.insert_scan({
            "uid": "1.2.3", "pixel_hash": "abc", "root_id": root_id, "relpath": "a.dcm", "file_size": 1,
            "file_mtime": 0.0, "format": "dicom", "rows": 4, "columns": 4, "frames": 1, "samples": 1,
            "bits_allocated": 16, "bits_stored": 12, "signed": 0, "photometric": "MONOCHROME2",
            "windows": "[]", "imported_at": utc_now()}, np.zeros((4, 4), np.uint8))
    ann = project.labels.annotator_id("dr_a")
    assert project.labels.add_many([{"scan_id": sid, "annotator_id": ann, "value": "normal"}], source="csv") == {"added": 1, "changed": 0, "unchanged": 0}
    assert project.labels.add_many([{"scan_id": sid, "annotator_id": ann, "value": "normal"}], source="csv")["unchanged"] == 1
    assert project.labels.add_many([{"scan_id": sid, "annotator_id": ann, "value": "pneumonia"}], source="csv")["changed"] == 1
    assert [l.value for l in project.labels.current()] == ["pneumonia"]
    assert [l.value for l in project.labels.history(sid)] == ["normal", "pneumonia"]
    with pytest.raises(ProjectError, match="not a class of this project"):
        project.labels.add_many([{"scan_id": sid, "annotator_id": ann, "value": "tumour"}], source="csv")
    assert [l.value for l in project.labels.current()] == ["pneumonia"]


def test_undo_restores_previous_value_or_unreads(project):
    import numpy as np

    from aldesk.app.labelling import record_label, undo_label
    from aldesk.store.project import utc_now

    root_id, _ = project.scans.root_for(project.path)
    with project.transaction():
        sid = project.scans.insert_scan({
            "uid": "9.9", "pixel_hash": "h", "root_id": root_id, "relpath": "b.png", "file_size": 1,
            "file_mtime": 0.0, "format": "png", "rows": 4, "columns": 4, "frames": 1, "samples": 1,
            "bits_allocated": 8, "bits_stored": 8, "signed": 0, "photometric": "MONOCHROME2",
            "windows": "[]", "imported_at": utc_now()}, np.zeros((4, 4), np.uint8))
    first = record_label(project, sid, "dr_a", "normal")
    second = record_label(project, sid, "dr_a", "pneumonia")
    third = record_label(project, sid, "dr_a", "unsure")
    assert len({first, second, third}) == 3
    back = undo_label(project, third)
    assert [l.value for l in project.labels.current()] == ["pneumonia"]
    back = undo_label(project, back)
    assert [l.value for l in project.labels.current()] == ["normal"]
    assert undo_label(project, back) is None
    assert project.labels.current() == []
    assert len(project.labels.history(sid)) == 5  # nothing deleted
    with pytest.raises(ProjectError, match="already changed or undone"):
        undo_label(project, second)
