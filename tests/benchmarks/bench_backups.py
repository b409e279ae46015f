"""Backup size and time, old (whole database, previews inside) against new (previews once in
backups/previews.sqlite), on synthetic projects (tests/benchmarks/synthetic_project.py: 128 x 128 previews,
a 361-float feature vector per scan, as after a real import + extraction).

Per size: two old-style backups (SQLite's backup API page copy + integrity_check, as before the side
store) and their restore; two new backups (the second after 200 more labels), a third after 1 % of the
previews changed, a restore of the newest; bytes of the backup folder after each; and the alternative
the new one was chosen over (page copy, then DELETE FROM previews and VACUUM INTO).

    python tests/benchmarks/bench_backups.py --scans 20000 100000 --workdir /tmp/bkb --json backups.json

Projects are built under --workdir (p<N>, reused when there: its backups/ is emptied first). Page cache
is warm (the project was just built or read): figures are for a machine that has the project open.

Measured 2026-11-26 on the shared 2-core machine (three runs at 100k; times vary ±50 % with the load):
at 100,000 scans (2,195 MB database, 1,638 MB previews) an old backup is 2,195 MB in 4.7-7.1 s; a new
one is 46 MB in 4.7-7.3 s (the first also writes the 1,922 MB side store: 11-21 s); the folder grows
by 46 MB per backup instead of 2,195 MB; restore 9.0-9.3 s (old 3.3-8.8 s); page copy + DELETE +
VACUUM INTO 18.5-19.1 s. At 20,000 scans: 9 MB per backup instead of 439 MB, 0.9-1.3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _du(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else 0


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _old_backup(conn: sqlite3.Connection, dest: Path) -> None:
    """What backup_database did before the side store: a page copy, verified, flushed, renamed."""
    from aldesk.store.backups import _copy_whole, fsync_path

    tmp = dest.with_name(".partial-" + dest.name)
    assert _copy_whole(conn, tmp) == ["ok"]
    fsync_path(tmp)
    os.replace(tmp, dest)
    fsync_path(dest.parent)


def _strip_after_copy(conn: sqlite3.Connection, folder: Path) -> None:
    """The alternative: page copy, then drop the previews' rows and VACUUM INTO the final file."""
    from aldesk.store.backups import fsync_path

    tmp, dest = folder / "copy.sqlite", folder / "stripped.sqlite"
    target = sqlite3.connect(tmp, isolation_level=None)
    conn.backup(target)
    target.execute("PRAGMA journal_mode = DELETE")
    target.execute("DELETE FROM previews")
    target.execute("VACUUM INTO ?", (str(dest),))
    assert target.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    target.close()
    fsync_path(dest)
    tmp.unlink()
    dest.unlink()


def bench(n: int, workdir: Path) -> dict:
    from aldesk.store import PROJECT_DB_NAME, Project
    from aldesk.store.backups import BACKUP_DIR_NAME, restore_backup
    from aldesk.store.preview_store import PREVIEW_STORE_NAME
    from tests.benchmarks import synthetic_project

    path = workdir / f"p{n}"
    if not path.is_dir():
        synthetic_project.build(path, n, progress=lambda m: None)
    folder = path / BACKUP_DIR_NAME
    shutil.rmtree(folder, ignore_errors=True)
    for aside in path.glob(PROJECT_DB_NAME + ".replaced-*"):
        aside.unlink()
    old = workdir / f"old-backups-{n}"
    shutil.rmtree(old, ignore_errors=True)
    old.mkdir()
    out: dict = {"scans": n, "db_bytes": (path / PROJECT_DB_NAME).stat().st_size}

    with Project.open(path) as p:
        out["preview_bytes"] = p.conn.execute("SELECT SUM(length(data)) FROM previews").fetchone()[0]
        ids = p.scans.ids()
        for i in (1, 2):
            _, out[f"old_backup_{i}_s"] = _timed(lambda: _old_backup(p.conn, old / f"project-manual-{i}.sqlite"))
            out[f"old_folder_bytes_after_{i}"] = _du(old)
        _, out["alt_copy_strip_vacuum_s"] = _timed(lambda: _strip_after_copy(p.conn, old))

        made, out["new_backup_1_s"] = _timed(lambda: p.backup("manual"))
        out["new_backup_1_bytes"] = made.stat().st_size
        out["new_folder_bytes_after_1"] = _du(folder)
        reader = p.labels.annotator_id("bench_reader")
        p.labels.add_many([{"scan_id": int(s), "annotator_id": reader, "value": "normal"} for s in ids[:200]],
                          source="bench")
        made, out["new_backup_2_s"] = _timed(lambda: p.backup("manual"))
        out["new_backup_2_bytes"] = made.stat().st_size
        out["new_folder_bytes_after_2"] = _du(folder)
        changed = ids[:: 100]
        with p.transaction() as c:
            c.executemany("UPDATE previews SET data = randomblob(length(data)) WHERE scan_id = ?",
                          [(int(s),) for s in changed])
        made, out["new_backup_3_s"] = _timed(lambda: p.backup("manual"))
        out["new_backup_3_changed_previews"] = len(changed)
        out["new_folder_bytes_after_3"] = _du(folder)
        out["side_store_bytes"] = (folder / PREVIEW_STORE_NAME).stat().st_size

    result, out["new_restore_s"] = _timed(lambda: restore_backup(path))
    out["new_restore_previews"] = result.previews_restored
    assert result.previews_missing == 0
    result.aside.unlink()
    result, out["old_restore_s"] = _timed(lambda: restore_backup(path, old / "project-manual-2.sqlite"))
    result.aside.unlink()
    shutil.rmtree(old)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, nargs="+", default=[20000])
    parser.add_argument("--workdir", default="/tmp/aldesk-bench-backups")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    os.environ["ALDESK_NO_BACKGROUND_BACKUP"] = "1"
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.scans:
        r = bench(n, workdir)
        rows.append(r)
        mb = lambda b: f"{b / 1e6:,.0f} MB"  # noqa: E731
        print(f"{n:,} scans: database {mb(r['db_bytes'])} ({mb(r['preview_bytes'])} of previews)")
        print(f"  old: backup 1 {r['old_backup_1_s']:.1f} s, backup 2 {r['old_backup_2_s']:.1f} s; folder "
              f"{mb(r['old_folder_bytes_after_1'])} -> {mb(r['old_folder_bytes_after_2'])}; restore {r['old_restore_s']:.1f} s")
        print(f"  new: backup 1 {r['new_backup_1_s']:.1f} s ({mb(r['new_backup_1_bytes'])} + side store), backup 2 "
              f"{r['new_backup_2_s']:.1f} s ({mb(r['new_backup_2_bytes'])}); folder {mb(r['new_folder_bytes_after_1'])} -> "
              f"{mb(r['new_folder_bytes_after_2'])}; after {r['new_backup_3_changed_previews']} previews changed: "
              f"{r['new_backup_3_s']:.1f} s, folder {mb(r['new_folder_bytes_after_3'])}; restore {r['new_restore_s']:.1f} s")
        print(f"  alternative (page copy + DELETE previews + VACUUM INTO): {r['alt_copy_strip_vacuum_s']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
