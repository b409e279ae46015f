"""Issue 16 points 1, 4 and 6: SIGKILL at random moments of backup, restore, export and import.

After every kill: a listed backup is always complete and verified; the project always opens (never
"create a project with aldesk init"); every label ever committed is in the project or in a kept-aside
copy; no partial export folder (which may hold identified DICOM) survives; import workers die with
the importing process and its import row is marked interrupted on the next open.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from aldesk.store import PROJECT_DB_NAME, Project
from aldesk.store.backups import BACKUP_DIR_NAME, list_backups, verify_backup
from aldesk.store.preview_store import missing_rows
from aldesk.store.project import utc_now
from tests.app.conftest import write_png
from tests.faults.procs import alive, worker_children

KILLS = 15


def _make_project(path: Path, n_scans: int, preview: int = 64) -> list[int]:
    """A project large enough (previews of preview² bytes) that a backup or restore takes a while."""
    rng = np.random.default_rng(0)
    with Project.create(path, ["a", "b"]) as p:
        root_id, _ = p.scans.root_for(path / "data")
        ids = []
        with p.transaction():
            for i in range(n_scans):
                ids.append(p.scans.insert_scan({
                    "uid": f"1.2.826.{i}", "pixel_hash": f"h{i}", "root_id": root_id, "relpath": f"{i}.png",
                    "file_size": 1, "file_mtime": 0.0, "format": "png", "rows": preview, "columns": preview,
                    "frames": 1, "samples": 1, "bits_allocated": 8, "bits_stored": 8, "signed": 0,
                    "photometric": "MONOCHROME2", "windows": "[]", "imported_at": utc_now()},
                    rng.integers(0, 256, (preview, preview), dtype=np.uint8)))
    return ids


def _label(path: Path, ids: list[int], annotator: str) -> set[str]:
    with Project.open(path) as p:
        aid = p.labels.annotator_id(annotator)
        p.labels.add_many([{"scan_id": i, "annotator_id": aid, "value": "a"} for i in ids], source="gui")
        return {r[0] for r in p.conn.execute("SELECT id FROM labels")}


def _change_previews(path: Path, ids: list[int]) -> None:
    """New preview bytes for these scans (as when a series' thumbnail is remade)."""
    with Project.open(path) as p:
        with p.transaction() as c:
            c.executemany("UPDATE previews SET data = randomblob(length(data)) WHERE scan_id = ?", [(i,) for i in ids])


def _label_ids(db: Path) -> set[str]:
    uri = db.resolve().as_uri() + ("?mode=ro" if Path(str(db) + "-wal").exists() else "?mode=ro&immutable=1")
    conn = sqlite3.connect(uri, uri=True)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM labels")}
    finally:
        conn.close()


def _timed(zygote, argv: list[str]) -> float:
    t = time.perf_counter()
    pid = zygote.start(run="cli", argv=argv)
    status = zygote.wait(pid)
    assert status["exit"] == 0, status
    return time.perf_counter() - t


def test_sigkill_during_backup_never_lists_a_partial_backup(tmp_path, zygote):
    rng = random.Random(16)
    path = tmp_path / "p"
    ids = _make_project(path, 2500)
    full = _timed(zygote, ["backup", str(path)])
    killed = 0
    for i in range(KILLS):
        _label(path, ids[i * 10:(i + 1) * 10], "dr_b")
        _change_previews(path, ids[i * 150:(i + 1) * 150])  # so that each backup writes to the side store too
        pid = zygote.start(run="cli", argv=["backup", str(path)])
        time.sleep(rng.uniform(0.0, full * 1.1))
        killed += zygote.kill_and_wait(pid)["killed"]
        for b in list_backups(path):
            verify_backup(b)  # raises if a listed backup is torn or damaged
            lacks = missing_rows(b, path / BACKUP_DIR_NAME)
            assert not any(lacks.values()), f"round {i}: {b.name} lacks side-store rows {lacks}"
        with Project.open(path) as p:
            assert p.integrity_check() == "ok"
    assert killed >= KILLS // 2, f"only {killed} of {KILLS} kills landed during a backup"
    _timed(zygote, ["backup", str(path)])
    assert not list((path / BACKUP_DIR_NAME).glob(".partial-*")), "a dead backup's temporary was not cleaned"


def test_sigkill_during_restore_never_loses_a_committed_label(tmp_path, zygote):
    rng = random.Random(61)
    path = tmp_path / "p"
    ids = _make_project(path, 2500)
    ever = _label(path, ids[:10], "dr_r")
    _timed(zygote, ["backup", str(path)])
    full = _timed(zygote, ["backup", str(path), "--restore", "latest"])
    killed = 0
    for i in range(KILLS):
        ever |= _label(path, ids[10 + i * 5:10 + (i + 1) * 5], "dr_r")  # at stake: not in any backup
        pid = zygote.start(run="cli", argv=["backup", str(path), "--restore", "latest"])
        time.sleep(rng.uniform(0.0, full * 1.1))
        killed += zygote.kill_and_wait(pid)["killed"]
        with Project.open(path) as p:  # never "no aldesk project here", never a false "commits missing"
            assert p.integrity_check() == "ok"
        kept = _label_ids(path / PROJECT_DB_NAME)
        for aside in path.glob(PROJECT_DB_NAME + ".replaced-*"):
            if not aside.name.endswith(("-wal", "-shm")):
                kept |= _label_ids(aside)
        assert ever <= kept, f"round {i}: {len(ever - kept)} committed labels are nowhere"
    assert killed >= KILLS // 2, f"only {killed} of {KILLS} kills landed during a restore"
    assert not (path / (PROJECT_DB_NAME + ".restoring")).exists()  # the last open tidied it


@pytest.fixture
def labelled_study(tmp_path):
    from aldesk.app.importer import import_paths
    from aldesk.app.labelling import record_label
    from tests.export.conftest import make_study

    folder = make_study(tmp_path / "study")
    path = tmp_path / "p"
    with Project.create(path, ["normal", "pneumonia"]) as p:
        import_paths(p, [folder], jobs=1)
        for sid, _root, _rel in p.scans.iter_paths():
            record_label(p, sid, "dr_e", ("normal", "pneumonia")[sid % 2])
    return path


def test_sigkill_during_export_leaves_no_partial_folder(tmp_path, zygote, labelled_study):
    """The audit: a killed export left `.OUT.partial-PID/` with identified DICOM, never cleaned."""
    rng = random.Random(7)
    outs = tmp_path / "exports"
    argv = lambda out: ["export", str(labelled_study), str(out), "--format", "folders",  # noqa: E731
                        "--include-identifiers", "--quiet"]
    full = _timed(zygote, argv(outs / "probe"))
    killed = 0
    for i in range(KILLS):
        out = outs / f"out{i}"
        pid = zygote.start(run="cli", argv=argv(out))
        time.sleep(rng.uniform(0.0, full * 1.1))
        killed += zygote.kill_and_wait(pid)["killed"]
        deadline = time.time() + 10
        while list(outs.glob(".*partial*")) and time.time() < deadline:
            time.sleep(0.05)
        assert not list(outs.glob(".*partial*")), f"round {i}: a partial export folder survived the kill"
        assert not out.exists() or (out / "manifest.json").is_file()  # whole or nothing
    assert killed >= KILLS // 2, f"only {killed} of {KILLS} kills landed during an export"


def test_a_stale_partial_export_folder_is_removed_by_the_next_export(tmp_path, labelled_study):
    """Power loss (no watcher could run): the next export aimed at the same place removes it."""
    from aldesk.app.export import ExportOptions, export_labelled_set

    out = tmp_path / "out"
    stale = out.with_name(f".{out.name}.partial-999999999")
    (stale / "normal").mkdir(parents=True)
    (stale / "normal" / "1.dcm").write_bytes(b"identified")
    with Project.open(labelled_study) as p:
        export_labelled_set(p, out, ExportOptions(format="csv"))
    assert not stale.exists() and (out / "labels.csv").is_file()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
def test_import_workers_die_with_a_killed_import_and_the_row_says_interrupted(tmp_path, zygote):
    """The audit: a killed import left its workers running (still there after 6 minutes) and the
    import row 'running'."""
    folder = tmp_path / "scans"
    for i in range(400):
        write_png(folder / f"{i // 100}" / f"img_{i:04d}.png", seed=i, size=64)
    path = tmp_path / "p"
    Project.create(path, ["a", "b"]).close()
    pid = zygote.start(run="import", project=str(path), folder=str(folder), batch_files=4, jobs=2)
    deadline = time.time() + 60
    workers: list[int] = []
    while time.time() < deadline and len(workers) < 2:
        workers = worker_children(pid)
        time.sleep(0.05)
    assert len(workers) == 2, "the import's worker processes did not start"
    time.sleep(0.3)
    assert zygote.kill_and_wait(pid)["killed"]
    deadline = time.time() + 10
    while time.time() < deadline and any(alive(w) for w in workers):
        time.sleep(0.05)
    assert not any(alive(w) for w in workers), "import workers outlived the killed import"
    with Project.open(path) as p:
        statuses = [i["status"] for i in p.scans.imports()]
        assert statuses == ["interrupted"] and p.status.interrupted_imports == 1
        assert "1 import(s) had been interrupted" in p.status.describe()


def test_a_running_import_of_another_process_is_not_marked_interrupted(tmp_path):
    path = tmp_path / "p"
    Project.create(path, ["a", "b"]).close()
    with Project.open(path) as importing:
        importing.scans.start_import(["/data"], utc_now())
        with Project.open(path) as other:  # opened while the import runs: not alone, so it leaves it be
            assert [i["status"] for i in other.scans.imports()] == ["running"]
    with Project.open(path) as later:  # nobody has it open any more: that import was interrupted
        assert [i["status"] for i in later.scans.imports()] == ["interrupted"]
