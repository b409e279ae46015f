"""What the safety checks cost on a large project (issue 16 point 3; not collected by pytest).

Times, on a project built by tests/benchmarks/synthetic_project.py (or an existing one):
  open_alone_s     ``Project.open`` + close when nobody else has it open (the bounded quick_check runs)
  open_shared_s    the same while another connection holds it (no page check: the first opener did it)
  quick_check_full_s   ``PRAGMA quick_check`` of every page (what open would cost without the bound)
  doctor_s         ``aldesk doctor`` (full integrity_check, foreign keys, counters)
  backup_s         a verified backup (online copy + integrity_check of the copy + rename)
Medians of ``--repeat`` runs (page cache warm after the first).

    python tests/benchmarks/bench_open_checks.py /tmp/big --scans 100000 --json open_checks.json
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project")
    parser.add_argument("--scans", type=int, default=100_000, help="build this many scans if PROJECT does not exist")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    from aldesk.app.doctor import diagnose
    from aldesk.store import PROJECT_DB_NAME, Project

    path = Path(args.project)
    if not (path / PROJECT_DB_NAME).exists():
        from tests.benchmarks.synthetic_project import build

        build(path, args.scans)
    db = path / PROJECT_DB_NAME

    def open_close():
        Project.open(path).close()

    results = {"scans": None, "db_mib": round(db.stat().st_size / 2**20, 1)}
    with Project.open(path) as p:
        results["scans"] = p.scans.count()
    results["open_alone_s"] = _median(open_close, args.repeat)
    with Project.open(path):
        results["open_shared_s"] = _median(open_close, args.repeat)

    def full_quick():
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("PRAGMA quick_check").fetchall()
        conn.close()

    results["quick_check_full_s"] = _median(full_quick, args.repeat)
    results["doctor_s"] = _median(lambda: diagnose(path), 1)

    def backup():
        with Project.open(path) as p:
            made = p.backup("bench")
        made.unlink()

    results["backup_s"] = _median(backup, 1)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
