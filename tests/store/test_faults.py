"""The store under faults: damaged databases, read-only media, crashes, two writers at once."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from aldesk.errors import ProjectError
from aldesk.store import PROJECT_DB_NAME, Project
from aldesk.store.project import list_backups, restore_backup, utc_now
from tests.conftest import kill_rounds


def _add_scans(project: Project, n: int) -> list[int]:
    root_id, _ = project.scans.root_for(project.path / "data")
    ids = []
    with project.transaction():
        for i in range(n):
            ids.append(project.scans.insert_scan({
                "uid": f"1.2.826.{i}", "pixel_hash": f"h{i}", "root_id": root_id, "relpath": f"{i}.png",
                "file_size": 1, "file_mtime": 0.0, "format": "png", "rows": 4, "columns": 4, "frames": 1,
                "samples": 1, "bits_allocated": 8, "bits_stored": 8, "signed": 0, "photometric": "MONOCHROME2",
                "windows": "[]", "imported_at": utc_now()}, np.full((4, 4), i % 256, np.uint8)))
    return ids


def test_truncated_database_names_the_newest_backup_and_restore_works(tmp_path):
    with Project.create(tmp_path / "p", ["a", "b"]) as p:
        _add_scans(p, 5)
        backup = p.backup("manual")
    db = tmp_path / "p" / PROJECT_DB_NAME
    db.write_bytes(db.read_bytes()[:50])
    with pytest.raises(ProjectError, match=f"damaged.*{backup.name}.*--restore latest"):
        Project.open(tmp_path / "p")
    result = restore_backup(tmp_path / "p")
    assert result.source == backup and result.aside.exists() and not result.checkpointed
    assert result.gap.count is None and "cannot be read" in result.gap.describe()
    with Project.open(tmp_path / "p") as p:
        assert p.scans.count() == 5 and p.integrity_check() == "ok"


def test_random_bytes_over_the_database_give_a_clear_error(tmp_path):
    with Project.create(tmp_path / "p", ["a", "b"]) as p:
        _add_scans(p, 50)
        p.backup("manual")
    db = tmp_path / "p" / PROJECT_DB_NAME
    data = bytearray(db.read_bytes())
    rng = random.Random(0)
    for _ in range(len(data) // 8):
        data[rng.randrange(100, len(data))] = rng.randrange(256)
    db.write_bytes(bytes(data))
    with pytest.raises(ProjectError, match="damaged|malformed|not a database"):
        with Project.open(tmp_path / "p") as p:
            p.scans.rows()
            assert p.integrity_check() == "ok"


def test_read_only_medium_opens_read_only_with_a_clear_message(tmp_path, monkeypatch):
    import aldesk.store.project as project_module

    with Project.create(tmp_path / "p", ["a", "b"]) as p:
        _add_scans(p, 3)
    monkeypatch.setattr(project_module, "_on_readonly_medium", lambda path: True)
    with Project.open(tmp_path / "p") as p:
        assert p.status.readonly and "read-only" in p.status.describe()
        assert p.scans.count() == 3
        with pytest.raises(ProjectError, match="read-only.*copy the project"):
            p.labels.annotator_id("dr_a")


def test_scheduled_backup_made_when_due(tmp_path):
    with Project.create(tmp_path / "p", ["a", "b"]) as p:
        _add_scans(p, 2)
    from aldesk.app.projects import scheduled_backup

    with Project.open(tmp_path / "p"):
        pass
    assert list_backups(tmp_path / "p") == []  # opening stays fast: never copies the database
    made = scheduled_backup(tmp_path / "p")
    backups = list_backups(tmp_path / "p")
    assert backups == [made] and "scheduled" in made.name
    assert scheduled_backup(tmp_path / "p") is None  # not due again within a day
    assert len(list_backups(tmp_path / "p")) == 1


LABELLER = textwrap.dedent("""
    import sys
    from aldesk.store import Project
    from aldesk.app.labelling import record_label
    project = Project.open(sys.argv[1])
    annotator = sys.argv[2]
    ids = [int(x) for x in sys.argv[3].split(",")]
    for i, scan_id in enumerate(ids):
        value = ("a", "b")[i % 2]
        record_label(project, scan_id, annotator, value)
        print(f"ACK {scan_id} {value}", flush=True)
""")


@pytest.mark.parametrize("kills", kill_rounds(12, 50))
def test_acknowledged_labels_survive_sigkill(tmp_path, kills):
    """Every label the child acknowledged before SIGKILL is in the project afterwards."""
    with Project.create(tmp_path / "p", ["a", "b"]) as p:
        ids = _add_scans(p, 400)
    acked: dict[int, str] = {}
    rng = random.Random(1)
    script = tmp_path / "labeller.py"
    script.write_text(LABELLER)
    for round_ in range(kills):
        todo = [i for i in ids if i not in acked][:40] or ids[:40]
        proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "p"), "dr_kill", ",".join(map(str, todo))],
                                stdout=subprocess.PIPE, text=True)
        # kill after a random number of acknowledgements (0..10), mid-write as often as not
        want = rng.randrange(0, 10)
        got = 0
        while got < want:
            line = proc.stdout.readline()
            if not line:
                break
            _, sid, value = line.split()
            acked[int(sid)] = value
            got += 1
        time.sleep(rng.random() * 0.01)
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate()
        for line in rest.splitlines():  # acknowledged between our last read and the kill
            _, sid, value = line.split()
            acked[int(sid)] = value
    with Project.open(tmp_path / "p") as p:
        assert p.integrity_check() == "ok"
        stored = {l.scan_id: l.value for l in p.labels.current(annotator="dr_kill")}
    missing = {k: v for k, v in acked.items() if stored.get(k) != v}
    assert not missing, f"{len(missing)} acknowledged labels lost"
    assert len(acked) > kills


def test_two_processes_label_the_same_project_at_once(tmp_path):
    with Project.create(tmp_path / "p", ["a", "b"]) as p:
        ids = _add_scans(p, 150)
    script = tmp_path / "labeller.py"
    script.write_text(LABELLER)
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "p"), who, ",".join(map(str, ids))],
                              stdout=subprocess.PIPE, text=True) for who in ("dr_a", "dr_b")]
    outs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert all(len(out.splitlines()) == 150 for out in outs)
    with Project.open(tmp_path / "p") as p:
        current = p.labels.current()
        assert len(current) == 300
        assert len({(l.scan_id, l.annotator) for l in current}) == 300
        assert p.integrity_check() == "ok"


def test_a_writer_blocked_too_long_gets_a_clear_wait_message(tmp_path, monkeypatch):
    with Project.create(tmp_path / "p", ["a", "b"]) as p:
        _add_scans(p, 1)
    holder = sqlite3.connect(tmp_path / "p" / PROJECT_DB_NAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with Project.open(tmp_path / "p") as p:
            p.conn.execute("PRAGMA busy_timeout = 200")
            with pytest.raises(ProjectError, match="another aldesk process is writing.*try again"):
                p.labels.annotator_id("dr_wait")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
