"""Import: every file accounted for, nothing imported twice, bad files named, resumable."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from aldesk.app.importer import import_paths
from aldesk.store import PROJECT_DB_NAME, Project
from tests.app.conftest import write_dicom, write_png


def _scan_count(project):
    return project.scans.count()


def test_import_counts_every_file_and_is_incremental(project, scan_folder):
    s = import_paths(project, [scan_folder], jobs=1)
    assert (s.imported, s.duplicates, s.skipped, s.failed) == (12, 0, 0, 0)
    assert s.files == 12
    again = import_paths(project, [scan_folder], jobs=1)
    assert (again.imported, again.unchanged) == (0, 12)
    assert _scan_count(project) == 12
    write_png(scan_folder / "png" / "new.png", seed=1234)
    third = import_paths(project, [scan_folder], jobs=1)
    assert (third.imported, third.unchanged) == (1, 12)


def test_import_with_worker_processes_matches_in_process(tmp_path, scan_folder):
    a = Project.create(tmp_path / "a", ["x", "y"])
    b = Project.create(tmp_path / "b", ["x", "y"])
    sa = import_paths(a, [scan_folder], jobs=1)
    sb = import_paths(b, [scan_folder], jobs=2)
    assert sa.to_json()["imported"] == sb.to_json()["imported"] == 12
    hashes = lambda p: sorted(r[0] for r in p.conn.execute("SELECT pixel_hash FROM scans"))
    assert hashes(a) == hashes(b)


def test_duplicates_by_pixels_and_by_uid_are_reported_not_imported(project, tmp_path):
    folder = tmp_path / "d"
    write_png(folder / "a.png", seed=1)
    shutil.copy(folder / "a.png", folder / "copy_of_a.png")
    px = np.arange(64, dtype=np.uint16).reshape(8, 8)
    write_dicom(folder / "one.dcm", px, uid="1.2.3.4.5")
    write_dicom(folder / "same_uid.dcm", px + 1, uid="1.2.3.4.5")
    s = import_paths(project, [folder], jobs=1)
    assert (s.imported, s.duplicates) == (2, 2)
    reasons = {os.path.basename(p["path"]): p["reason"] for p in s.problems}
    assert "same pixels" in reasons["copy_of_a.png"] and "a.png" in reasons["copy_of_a.png"]
    assert "same SOP Instance UID" in reasons["same_uid.dcm"]


def test_bad_files_are_skipped_with_reasons_and_the_import_goes_on(project, tmp_path):
    folder = tmp_path / "bad"
    write_png(folder / "good.png", seed=5)
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "notes.txt").write_text("not a scan")
    trunc = write_dicom(folder / "trunc.dcm", np.ones((64, 64)))
    trunc.write_bytes(trunc.read_bytes()[:-3000])
    (folder / "sub").mkdir()
    os.symlink(folder, folder / "sub" / "loop")
    bad_name = os.fsencode(str(folder)) + b"/caf\xe9.png"
    with open(bad_name, "wb") as fh:
        fh.write((folder / "good.png").read_bytes())
    s = import_paths(project, [folder], jobs=1)
    by_name = {os.path.basename(p["path"]): p for p in s.problems}
    assert s.imported == 1
    assert by_name["empty.dcm"]["code"] == "empty"
    assert by_name["notes.txt"]["code"] == "not-a-scan"
    assert by_name["trunc.dcm"]["kind"] == "failed"
    assert by_name["loop"]["code"] == "link-loop"
    assert any(p["code"] == "bad-name" and "UTF-8" in p["reason"] for p in s.problems)
    assert s.files == 6
    assert all(p["path"] and p["reason"] for p in s.problems)
    # problems are stored in the project too, and re-reported without re-reading
    assert len(project.scans.problems()) == 5
    again = import_paths(project, [folder], jobs=1)
    assert (again.imported, again.unchanged, again.skipped + again.failed) == (0, 1, 5)


def test_patient_identifiers_never_stored(project, tmp_path):
    folder = tmp_path / "pat"
    write_dicom(folder / "a.dcm", np.ones((8, 8)) * 3, patient_id="MRN-SECRET-991", patient_name="Secretname^Ann")
    write_dicom(folder / "b.dcm", np.ones((8, 8)) * 4, patient_id="MRN-SECRET-991", patient_name="Secretname^Ann")
    import_paths(project, [folder], jobs=1)
    keys = {r.patient_key for r in project.scans.rows()}
    assert len(keys) == 1 and None not in keys
    assert "MRN-SECRET-991" not in next(iter(keys))
    project.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = (project.path / PROJECT_DB_NAME).read_bytes()
    assert b"MRN-SECRET-991" not in raw and b"Secretname" not in raw and b"19700101" not in raw


def test_cancel_keeps_a_consistent_project_and_rerun_finishes(project, tmp_path):
    folder = tmp_path / "many"
    for i in range(40):
        write_png(folder / f"{i:03d}.png", seed=i)
    calls = {"n": 0}

    def stop_soon():
        calls["n"] += 1
        return calls["n"] > 2

    first = import_paths(project, [folder], jobs=1, should_stop=stop_soon)
    assert first.status == "cancelled" and 0 < first.imported < 40
    assert project.integrity_check() == "ok"
    second = import_paths(project, [folder], jobs=1)
    assert second.imported + second.unchanged == 40
    assert project.scans.count() == 40


def test_kill_9_mid_import_then_rerun_finishes(tmp_path):
    folder = tmp_path / "many"
    for i in range(300):
        write_png(folder / f"{i:03d}.png", seed=i, size=64)
    Project.create(tmp_path / "p", ["a", "b"]).close()
    proc = subprocess.Popen([sys.executable, "-m", "aldesk", "import", str(tmp_path / "p"), str(folder), "--jobs", "1", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "p" / PROJECT_DB_NAME
    import time

    deadline = time.time() + 30
    while time.time() < deadline:  # wait until some scans are committed
        c = sqlite3.connect(db)
        n = c.execute("SELECT COUNT(*) FROM scans").fetchone()[0]
        c.close()
        if n > 0:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    with Project.open(tmp_path / "p") as p:
        assert p.integrity_check() == "ok"
        before = p.scans.count()
        s = import_paths(p, [folder], jobs=1)
        assert s.imported + s.unchanged == 300
        assert p.scans.count() == 300
        assert before <= 300


def test_relink_after_the_data_moved(project, scan_folder, tmp_path):
    from aldesk.app.projects import missing_scans, relink

    import_paths(project, [scan_folder], jobs=1)
    assert missing_scans(project) == []
    moved = tmp_path / "elsewhere" / "scans"
    moved.parent.mkdir()
    shutil.move(scan_folder, moved)
    assert len(missing_scans(project)) == 12
    results = relink(project, tmp_path / "elsewhere")
    assert results[0].new == str(moved)
    assert missing_scans(project) == []


def test_cli_import_json_has_the_contract_keys(tmp_path, scan_folder):
    from aldesk.cli import main

    assert main(["init", str(tmp_path / "p"), "--classes", "normal,pneumonia"]) == 0
    (scan_folder / "junk.bin").write_bytes(b"\x00\x01garbage")
    out = subprocess.run([sys.executable, "-m", "aldesk", "import", str(tmp_path / "p"), str(scan_folder), "--json", "--jobs", "1"],
                         capture_output=True, text=True, check=True).stdout
    summary = json.loads(out)
    for key in ("imported", "duplicates", "skipped", "failed", "problems"):
        assert key in summary
    assert summary["imported"] == 12 and summary["skipped"] == 1
    assert summary["problems"][0]["path"].endswith("junk.bin") and summary["problems"][0]["reason"]


def test_import_missing_path_is_a_clear_error(project, tmp_path):
    from aldesk.errors import ProjectError

    with pytest.raises(ProjectError, match="does not exist"):
        import_paths(project, [tmp_path / "nope"], jobs=1)


def test_a_label_for_a_duplicate_file_labels_the_original_scan(project, tmp_path):
    from aldesk.app.answers import read_labelled_csv
    from aldesk.errors import InputFileError

    folder = tmp_path / "d"
    write_png(folder / "a.png", seed=1)
    shutil.copy(folder / "a.png", folder / "copy.png")
    write_png(folder / "b.png", seed=2)
    import_paths(project, [folder], jobs=1)
    key = tmp_path / "answers.csv"
    key.write_text("path,label,split\na.png,normal,pool\ncopy.png,normal,test\nb.png,pneumonia,pool\n")
    read = read_labelled_csv(project, key)
    rows = read.rows
    assert len(rows) == 2 and rows[0].split == "test"  # the copy's test split wins: no leakage
    assert read.held_out_of_pool == [{"file": "answers.csv", "line": 2, "test_line": 3}]  # and it is reported
    key.write_text("path,label\na.png,normal\ncopy.png,pneumonia\n")
    with pytest.raises(InputFileError, match="line 3: 'copy.png' is the same image as line 2"):
        read_labelled_csv(project, key, on_conflict="refuse")
