"""Issue 16 points 1 and 3: backups and restore never lose a committed label; damage is reported.

Each test re-plays one attack of the hostile audit (restore deleting the WAL, partial backups listed as
newest, the daily backup taken before the day's writes, a lost or damaged WAL, a garbage page, a
read-only project ignoring its WAL) and fails on the code before the fix.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from aldesk.errors import ProjectBusyError, ProjectDamagedError, ProjectError
from aldesk.store import PROJECT_DB_NAME, Project
from aldesk.store.backups import (BACKUP_DIR_NAME, commits_of, is_complete_backup, list_backups, newest_backup,
                                  restore_backup)
from tests.store.test_faults import _add_scans

# Labels N scans in a child process that then dies without closing: the labels are committed and
# still in the -wal file, as after a crash or while the app is open.
CRASHING_LABELLER = textwrap.dedent("""
    import os, sys
    from aldesk.store import Project
    from aldesk.app.labelling import record_label
    project = Project.open(sys.argv[1])
    project.conn.execute("PRAGMA wal_autocheckpoint = 0")
    for i, scan_id in enumerate(int(x) for x in sys.argv[3].split(",")):
        record_label(project, scan_id, sys.argv[2], ("a", "b")[i % 2])
    sys.stdout.write("done\\n"); sys.stdout.flush()
    os._exit(0)
""")


def _crash_after_labelling(tmp_path, project, annotator: str, scan_ids: list[int]) -> None:
    script = tmp_path / "crashing_labeller.py"
    script.write_text(CRASHING_LABELLER)
    out = subprocess.run([sys.executable, str(script), str(project), annotator, ",".join(map(str, scan_ids))],
                         capture_output=True, text=True, timeout=120, env=os.environ | {"PYTHONPATH": os.getcwd()})
    assert out.stdout == "done\n", out.stderr
    wal = project / (PROJECT_DB_NAME + "-wal")
    assert wal.stat().st_size > 0, "the labels should still be in the WAL"


def _labels_in(db) -> int:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def proj(tmp_path):
    path = tmp_path / "p"
    with Project.create(path, ["a", "b"]) as p:
        ids = _add_scans(p, 60)
        p.backup("manual")
    return path, ids


# ------------------------------------------------------------------ Critical 1: restore
def test_restore_keeps_the_labels_still_in_the_wal_and_names_them(tmp_path, proj):
    """The audit: 40 labels reported saved, then `--restore latest`: 0 recoverable. Now the kept-aside
    copy has all 40 and the restore says the backup lacks exactly those 40."""
    path, ids = proj
    _crash_after_labelling(tmp_path, path, "dr_wal", ids[:40])
    result = restore_backup(path)
    assert result.checkpointed
    assert _labels_in(result.aside) == 40
    assert result.gap.count == 40 and result.gap.by_annotator == {"dr_wal": 40}
    assert result.gap.first <= result.gap.last
    assert "lacks 40 labels" in result.gap.describe() and "dr_wal" in result.gap.describe()
    with Project.open(path) as p:  # the restored project opens cleanly (no false "commits missing")
        assert p.labels.count() == 0 and p.integrity_check() == "ok"
    assert not (path / (PROJECT_DB_NAME + "-wal")).exists() or (path / (PROJECT_DB_NAME + "-wal")).stat().st_size == 0


def test_restore_is_refused_while_the_project_is_open(proj):
    path, ids = proj
    with Project.open(path) as p:
        p.labels.add_many([{"scan_id": ids[0], "annotator_id": p.labels.annotator_id("dr_open"), "value": "a"}],
                          source="gui")
        with pytest.raises(ProjectBusyError, match="open in another aldesk process.*Nothing was changed"):
            restore_backup(path)
        # the session goes on saving into the real database, not a replaced file
        p.labels.add_many([{"scan_id": ids[1], "annotator_id": p.labels.annotator_id("dr_open"), "value": "b"}],
                          source="gui")
    with Project.open(path) as p:
        assert p.labels.count() == 2
    assert not list(path.glob(PROJECT_DB_NAME + ".replaced-*"))


def test_restore_is_refused_while_another_process_has_it_open(tmp_path, proj):
    path, _ = proj
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from aldesk.store import Project
        p = Project.open({str(path)!r})
        print("open", flush=True)
        sys.stdin.readline()
        p.close()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ | {"PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout.readline() == "open\n"
        with pytest.raises(ProjectBusyError, match="open in another aldesk process"):
            restore_backup(path)
    finally:
        holder.communicate("\n", timeout=30)
    restore_backup(path)  # once it is closed


def test_restore_from_the_cli_says_what_the_backup_lacks(tmp_path, proj, capsys):
    from aldesk.cli import main

    path, ids = proj
    _crash_after_labelling(tmp_path, path, "dr_cli", ids[:5])
    assert main(["backup", str(path), "--restore", "latest", "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["missing_labels"]["count"] == 5 and out["missing_labels"]["by_annotator"] == {"dr_cli": 5}
    assert out["kept_aside"].startswith(str(path)) and out["checkpointed"] is True


def test_a_damaged_backup_is_refused_by_restore(proj):
    path, _ = proj
    bad = newest_backup(path)
    _garbage_page(bad, table="scans")
    with pytest.raises(ProjectError, match="backup is damaged.*choose another.*Nothing was changed"):
        restore_backup(path, bad)
    assert not list(path.glob(PROJECT_DB_NAME + ".replaced-*"))


# ------------------------------------------------------------------ Also 3: partial backups
def test_a_half_written_backup_is_never_listed_nor_restored(proj):
    """The audit: a killed backup left a partial file listed as newest and picked by --restore latest."""
    path, _ = proj
    good = newest_backup(path)
    time.sleep(0.01)
    # what the old code left: a torn copy under the final name, and a temporary of the new code
    torn = path / BACKUP_DIR_NAME / "project-manual-29991231T000000000000Z.sqlite"
    torn.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    temp = path / BACKUP_DIR_NAME / ".partial-manual-29991231T000000000000Z-999999999.sqlite"
    temp.write_bytes(good.read_bytes())
    assert not is_complete_backup(torn)
    assert list_backups(path) == [good]
    assert restore_backup(path).source == good
    with Project.open(path) as p:
        p.backup("manual")  # the next backup removes the dead process's temporary
    assert not temp.exists()


def test_backup_of_a_damaged_database_is_refused_and_keeps_the_good_ones(proj):
    path, _ = proj
    before = list_backups(path)
    _garbage_page(path / PROJECT_DB_NAME, table="scans")
    with Project.open(path, allow_damaged=True) as p:
        assert p.status.damaged
        from aldesk.store.backups import backup_database

        with pytest.raises(ProjectDamagedError, match="not backed up.*damaged.*existing backups were left"):
            backup_database(p.conn, path, "manual")
    assert list_backups(path) == before
    assert not list((path / BACKUP_DIR_NAME).glob(".partial-*"))


# ------------------------------------------------------------------ Also 4: the scheduled backup
def test_scheduled_backup_comes_after_the_days_writes(tmp_path, proj, monkeypatch):
    """The audit: the daily backup was taken at open, before the day's first write; `--restore latest`
    then lacked all of that day's labels. Now it is taken after the command's writes, in the background."""
    from aldesk.cli import main

    path, ids = proj
    for b in list_backups(path):  # yesterday's backup
        os.utime(b, (time.time() - 86400, time.time() - 86400))
    monkeypatch.delenv("ALDESK_NO_BACKGROUND_BACKUP", raising=False)
    csv = tmp_path / "labels.csv"
    with Project.open(path) as p:
        rows = [p.scans.get(i).path for i in ids[:30]]
    csv.write_text("path,label\n" + "".join(f"{r},a\n" for r in rows))
    assert main(["label", str(path), "--csv", str(csv), "--annotator", "dr_day"]) == 0
    deadline = time.time() + 60
    while time.time() < deadline and "scheduled" not in newest_backup(path).name:
        time.sleep(0.1)
    latest = newest_backup(path)
    assert "scheduled" in latest.name
    assert _labels_in(latest) == 30  # the day's labels are in "latest"
    with Project.open(path) as p:
        assert commits_of(latest) == p.commits()


def test_opening_a_project_never_copies_it(proj, monkeypatch):
    from aldesk.cli.common import open_project

    path, _ = proj
    for b in list_backups(path):
        os.utime(b, (time.time() - 86400, time.time() - 86400))
    monkeypatch.delenv("ALDESK_NO_BACKGROUND_BACKUP", raising=False)
    n = len(list_backups(path))
    with open_project(str(path)) as p:  # reads only: no backup is due
        p.scans.count()
    time.sleep(0.5)
    assert len(list_backups(path)) == n


# ------------------------------------------------------------------ Also 5: corruption
def _garbage_page(db, table: str) -> None:
    """Overwrite one page of ``table``'s b-tree (not its root) with random bytes."""
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = ? ORDER BY pageno", (table,))]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    target = pages[len(pages) // 2]
    with open(db, "r+b") as fh:
        fh.seek((target - 1) * page_size)
        fh.write(os.urandom(page_size))


def test_a_garbage_page_is_found_on_open_and_writes_are_refused(proj):
    path, ids = proj
    _garbage_page(path / PROJECT_DB_NAME, table="previews")
    with pytest.raises(ProjectDamagedError, match="damaged pages.*Writes are refused.*--restore latest.*doctor"):
        Project.open(path)
    with Project.open(path, allow_damaged=True) as p:
        assert "DAMAGED" in p.status.describe()
        with pytest.raises(ProjectDamagedError, match="Writes are refused"):
            p.labels.annotator_id("dr_x")


def test_cli_label_info_and_export_refuse_a_damaged_project(tmp_path, proj, capsys):
    from aldesk.cli import main

    path, ids = proj
    _garbage_page(path / PROJECT_DB_NAME, table="previews")
    csv = tmp_path / "l.csv"
    csv.write_text("path,label\nx.png,a\n")
    assert main(["label", str(path), "--csv", str(csv), "--annotator", "dr_x"]) == 1
    assert main(["info", str(path)]) == 1
    assert main(["export", str(path), str(tmp_path / "out"), "--format", "csv"]) == 1
    err = capsys.readouterr().err
    assert err.count("damaged") >= 3 and "--restore latest" in err
    assert not (tmp_path / "out").exists()
    assert main(["doctor", str(path), "--json"]) == 1
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["integrity"] != "ok" and "--restore latest" in report["advice"][0]


def test_a_deleted_wal_is_reported_not_ignored(tmp_path, proj):
    """The audit: deleting the WAL lost committed labels silently."""
    path, ids = proj
    _crash_after_labelling(tmp_path, path, "dr_lost", ids[:20])
    (path / (PROJECT_DB_NAME + "-wal")).unlink()
    (path / (PROJECT_DB_NAME + "-shm")).unlink(missing_ok=True)
    with pytest.raises(ProjectDamagedError, match=r"committed changes are missing.*-wal.*--accept-loss"):
        Project.open(path)


def test_a_damaged_wal_is_reported_and_kept_for_forensics(tmp_path, proj):
    path, ids = proj
    _crash_after_labelling(tmp_path, path, "dr_lost", ids[:20])
    wal = path / (PROJECT_DB_NAME + "-wal")
    data = bytearray(wal.read_bytes())
    for off in range(32 + 24 + 200, len(data), 997):  # flip bytes in every frame after the first
        data[off] ^= 0xFF
    wal.write_bytes(bytes(data))
    (path / (PROJECT_DB_NAME + "-shm")).unlink(missing_ok=True)
    with pytest.raises(ProjectDamagedError, match="committed changes are missing"):
        Project.open(path)
    assert list(path.glob(PROJECT_DB_NAME + "-wal.suspect-*"))


def test_doctor_accept_loss_lets_work_go_on(tmp_path, proj, capsys):
    from aldesk.cli import main

    path, ids = proj
    _crash_after_labelling(tmp_path, path, "dr_lost", ids[:3])
    (path / (PROJECT_DB_NAME + "-wal")).unlink()
    (path / (PROJECT_DB_NAME + "-shm")).unlink(missing_ok=True)
    assert main(["doctor", str(path)]) == 1
    out = capsys.readouterr().out
    assert "committed changes are missing" in out and "--accept-loss" in out
    assert main(["doctor", str(path), "--accept-loss"]) == 0
    with Project.open(path) as p:
        p.labels.annotator_id("dr_after")  # writes allowed again


def test_read_only_project_reads_its_leftover_wal(tmp_path, proj):
    """The audit: a read-only project ignored a leftover WAL and exported 4,000 of 4,500 reads."""
    path, ids = proj
    _crash_after_labelling(tmp_path, path, "dr_ro", ids[:25])
    with Project.open(path, readonly=True) as p:
        assert p.status.readonly and p.labels.count() == 25


def test_read_only_project_reads_its_wal_even_without_a_wal_index(tmp_path, proj):
    """On a read-only medium the -shm index cannot be created; the WAL's labels are still read."""
    path, ids = proj
    _crash_after_labelling(tmp_path, path, "dr_ro", ids[:5])
    shm = path / (PROJECT_DB_NAME + "-shm")
    shm.unlink(missing_ok=True)
    shm.mkdir()  # cannot be created as a file, as on a read-only medium
    with Project.open(path, readonly=True) as p:
        assert p.labels.count() == 5


def test_quick_check_on_a_large_database_skips_only_rebuildable_tables(proj, monkeypatch):
    import aldesk.store.project as project_module

    path, _ = proj
    monkeypatch.setattr(project_module, "FULL_QUICK_CHECK_BYTES", 0)  # take the large-project path
    _garbage_page(path / PROJECT_DB_NAME, table="scans")
    with pytest.raises(ProjectDamagedError, match="damaged pages"):
        Project.open(path)


def test_only_one_background_backup_of_a_project_runs_at_once(proj):
    import aldesk.app.backups as backups

    path, _ = proj
    assert backups._single_flight(path) is True
    try:
        assert backups._single_flight(path) is False  # a second one started meanwhile leaves at once
    finally:
        for fh in backups._FLIGHT:
            fh.close()
        backups._FLIGHT.clear()
    assert backups._single_flight(path) is True
    for fh in backups._FLIGHT:
        fh.close()
    backups._FLIGHT.clear()


def test_a_missing_database_with_backups_offers_the_restore_not_a_new_project(proj):
    """The audit: after a killed restore, the project said "create a project with aldesk init"."""
    path, _ = proj
    (path / PROJECT_DB_NAME).unlink()
    with pytest.raises(ProjectDamagedError, match="missing, but its backups are here.*--restore latest"):
        Project.open(path)
    restore_backup(path)
    with Project.open(path) as p:
        assert p.scans.count() == 60


def test_a_backup_from_a_newer_aldesk_is_not_restored(proj):
    path, _ = proj
    newer = newest_backup(path)
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(ProjectError, match="newer aldesk.*Nothing was changed"):
        restore_backup(path, newer)
    with Project.open(path) as p:
        assert p.scans.count() == 60


def test_backup_if_due_from_the_command_line(proj, capsys):
    from aldesk.cli import main

    path, ids = proj
    for b in list_backups(path):
        os.utime(b, (time.time() - 7200, time.time() - 7200))
    assert main(["backup", str(path), "--if-due"]) == 0
    assert len(list_backups(path)) == 1  # nothing changed since that backup: none due
    with Project.open(path) as p:
        p.labels.annotator_id("dr_new")
    assert main(["backup", str(path), "--if-due"]) == 0
    assert len(list_backups(path)) == 2 and "scheduled" in newest_backup(path).name
    assert main(["backup", str(path), "--if-due"]) == 0
    assert len(list_backups(path)) == 2  # the newest is minutes old
