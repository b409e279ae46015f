"""Big package merges (issue 14 point 3, issue 16 point 5): time and peak memory of writing and merging
a package of N labels, each step in a fresh process (not a pytest test).

A lead's project ("hub") of N / readers scans already holding 10 % of the reads, and a raw copy of it
(a workstation: same project key) where ``--readers`` readers read every scan, 5 % of them twice (the
first read kept as history). The workstation's package is written, merged into the hub, and merged
again (idempotent: nothing added). Reports, each from its own process:

* export_s, export_maxrss_mib — ``aldesk.app.packages.export_package`` of the workstation;
* merge_s, merge_maxrss_mib — ``import_package`` into the hub (targets: < 300 s, < 1 GiB; issue 16
  asks < 500 MB whatever the size);
* merge_again_s, merge_again_maxrss_mib — the same package a second time (must add nothing);
* package_mib, labels (rows in the package), added, current_added, scans;
* *_cpu_s: the child's user + system CPU seconds, and load_average_1min: on a shared machine wall time
  is mostly waiting for a core, so CPU seconds say what the step costs on an idle one.

    python tests/benchmarks/bench_merge.py --labels 1000000 --json merge.json [--readers 5] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGETS = {"merge_s": 300.0, "merge_maxrss_mib": 500.0}


def _build(work: Path, n_labels: int, readers: int) -> tuple[Path, Path, int, int]:
    """(hub, workstation, scans, label rows in the workstation's package). Rows written with plain SQL
    in one transaction each: building through the per-label API would dwarf what is measured."""
    sys.path.insert(0, str(REPO))
    from aldesk.store import PROJECT_DB_NAME, Project
    from aldesk.store.project import utc_now

    history = n_labels // 21                      # 5 % of reads changed once: rows = reads + history
    n_scans = max(1, (n_labels - history) // readers)
    hub, ws = work / "hub", work / "workstation"
    now = utc_now()
    with Project.create(hub, ["normal", "pneumonia"]) as p:
        c = p.conn
        c.execute("BEGIN")
        root = c.execute("INSERT INTO roots(path) VALUES (?)", (str(work / "data"),)).lastrowid
        c.executemany(
            "INSERT INTO scans(uid, pixel_hash, root_id, relpath, file_size, file_mtime, format, rows, columns, frames, "
            "samples, bits_allocated, bits_stored, signed, photometric, imported_at) "
            "VALUES (?, ?, ?, ?, 1, 0, 'png', 1, 1, 1, 1, 8, 8, 0, 'MONOCHROME2', ?)",
            ((f"1.2.826.0.1.3680043.{i}", hashlib.sha256(str(i).encode()).hexdigest(), root, f"s{i}.png", now)
             for i in range(n_scans)))
        hub_reader = c.execute("INSERT INTO annotators(name, role, created_at) VALUES ('hub_reader', 'annotator', ?)",
                               (now,)).lastrowid
        c.executemany("INSERT INTO labels(id, scan_id, annotator_id, value, created_at, source) VALUES (?, ?, ?, ?, ?, 'gui')",
                      ((str(uuid.uuid4()), s + 1, hub_reader, "normal", now) for s in range(0, n_scans, 2)))
        c.execute("COMMIT")
    (ws).mkdir()
    shutil.copyfile(hub / PROJECT_DB_NAME, ws / PROJECT_DB_NAME)   # a raw copy: the same project key
    rows = 0
    with Project.open(ws) as p:
        c = p.conn
        c.execute("BEGIN")
        for r in range(readers):
            ann = c.execute("INSERT INTO annotators(name, role, created_at) VALUES (?, 'annotator', ?)",
                            (f"reader_{r}", now)).lastrowid
            batch = []
            for s in range(1, n_scans + 1):
                new = str(uuid.uuid4())
                if rows < history and s % 20 == r % 20:
                    batch.append((str(uuid.uuid4()), s, ann, "pneumonia", "2026-01-01T00:00:00.000+00:00", new))
                    rows += 1
                batch.append((new, s, ann, "normal" if (s + r) % 3 else "pneumonia", now, None))
                if len(batch) >= 50_000:
                    c.executemany("INSERT INTO labels(id, scan_id, annotator_id, value, created_at, source, replaced_by) "
                                  "VALUES (?, ?, ?, ?, ?, 'gui', ?)", batch)
                    batch = []
            c.executemany("INSERT INTO labels(id, scan_id, annotator_id, value, created_at, source, replaced_by) "
                          "VALUES (?, ?, ?, ?, ?, 'gui', ?)", batch)
        c.execute("COMMIT")
        total = c.execute("SELECT COUNT(*) FROM labels l JOIN annotators a ON a.id = l.annotator_id "
                          "WHERE a.name LIKE 'reader_%'").fetchone()[0]
    return hub, ws, n_scans, total


_CHILD = r"""
import json, sys, time
from aldesk.store import Project
from aldesk.app import packages
what, project, package = sys.argv[1:4]
t = time.perf_counter()
with Project.open(project) as p:
    if what == "export":
        s = packages.export_package(p, package, annotator=None)
        out = {"labels": s.labels, "scans": s.scans}
    else:
        r = packages.import_package(p, package)
        out = {"added": r.counts.added, "unchanged": r.counts.unchanged, "current_added": r.counts.current_added,
               "rejected": len(r.rejected), "quick_check": p.conn.execute("PRAGMA quick_check").fetchone()[0]}
out["seconds"] = time.perf_counter() - t
print(json.dumps(out))
"""


def _child(what: str, project: Path, package: Path) -> dict:
    """Run one step in a fresh interpreter; its own wall time and peak RSS (wait4)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, what, str(project), str(package)], env=env,
                            stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{what} failed (exit {proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - t
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["maxrss_mib"] = usage.ru_maxrss / 1024
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=int, default=100_000, help="label rows in the package (default 100,000)")
    ap.add_argument("--readers", type=int, default=5)
    ap.add_argument("--workdir", type=Path, help="build here (kept) instead of a temporary folder")
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-merge-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        hub, ws, n_scans, rows = _build(work, args.labels, args.readers)
        build_s = time.perf_counter() - t
        package = work / "ws.aldpkg"
        export = _child("export", ws, package)
        merge = _child("import", hub, package)
        again = _child("import", hub, package)
        figures = {
            "labels": rows, "readers": args.readers, "scans": n_scans, "build_s": round(build_s, 1),
            "export_s": round(export["seconds"], 2), "export_cpu_s": round(export["cpu_s"], 2),
            "export_maxrss_mib": round(export["maxrss_mib"], 1),
            "package_mib": round(package.stat().st_size / 2**20, 1),
            "merge_s": round(merge["seconds"], 2), "merge_process_s": round(merge["process_s"], 2),
            "merge_cpu_s": round(merge["cpu_s"], 2),
            "merge_maxrss_mib": round(merge["maxrss_mib"], 1),
            "added": merge["added"], "current_added": merge["current_added"], "rejected": merge["rejected"],
            "merge_again_s": round(again["seconds"], 2), "merge_again_cpu_s": round(again["cpu_s"], 2),
            "merge_again_maxrss_mib": round(again["maxrss_mib"], 1),
            "load_average_1min": round(os.getloadavg()[0], 1),
            "again_added": again["added"], "again_unchanged": again["unchanged"],
            "quick_check": merge["quick_check"], "targets": TARGETS,
        }
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    for k, v in figures.items():
        print(f"{k:24} {v}")
    ok = figures["added"] == rows and figures["again_added"] == 0 and figures["quick_check"] == "ok"
    print("merge complete and idempotent" if ok else "MERGE WRONG: see added / again_added")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
