"""Soak: SIGKILL at random moments of every writing command, many times (issue 16 point 6; not collected
by pytest). Prints the counts and every invariant that broke; writes them with ``--json FILE``.

Commands killed, chosen at random each round: ``label`` (a CSV of 150 rows), ``import`` (a folder that
grows every round; a third of them, "import2", with 2 worker processes), ``package import`` (packages from
hand-outs), ``backup``, ``backup --restore latest`` and ``export --format folders --include-identifiers``.
Each runs in a process forked from a warm helper (tests/faults/zygote.py) and is killed after a random
delay within its measured duration. After every kill:

* the project opens (no "damaged", no "committed changes are missing", never "no project here");
* every label id ever seen committed is still in the project or in a kept-aside ``.replaced-*`` copy;
* every listed backup is complete and passes ``integrity_check``, and finds every preview and feature
  vector it names in ``backups/previews.sqlite``;
* no ``.OUT.partial-*`` export folder survives (5 s for the watcher), an export is whole or absent;
* no import worker outlives the killed import (WORKER_GRACE_S; the time each took to die is reported),
  and no import row stays ``running``;
* every 25 kills, and at the end, a full ``integrity_check`` of the project.

    python tests/benchmarks/bench_kills.py --kills 1000 --json kills.json [--max-minutes 90] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tests.faults.procs import alive, worker_children  # noqa: E402

COMMANDS = ("label", "import", "package", "backup", "restore", "export")
# a worker killed while still starting up exits when its start-up reaches the parent check: seconds
# on a loaded machine; one still there after this long is a failure
WORKER_GRACE_S = 30.0


def _write_png(path: Path, seed: int, size: int = 32) -> None:
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)).save(path)


class Soak:
    def __init__(self, work: Path, seed: int):
        from tests.faults.conftest import Zygote

        self.work = work
        self.rng = random.Random(seed)
        self.project = work / "p"
        self.scans = work / "scans"
        self.outs = work / "exports"
        self.outs.mkdir()
        self.n_files = 0
        self.ever: set[str] = set()
        self.aside_ids: dict[str, set[str]] = {}
        self.verified: set[tuple[str, float]] = set()
        self.failures: list[dict] = []
        self.counts: Counter = Counter()
        self.killed: Counter = Counter()
        self.exit_codes: Counter = Counter()
        self.durations: dict[str, float] = {}
        self.worker_death_s: list[float] = []
        self.workers_checked = 0
        os.environ["ALDESK_NO_BACKGROUND_BACKUP"] = "1"
        os.environ.setdefault("ALDESK_LOG_DIR", str(work / "logs"))
        self.zygote = Zygote()

    # ------------------------------------------------------------ set-up
    def setup(self) -> None:
        from aldesk.app.labelling import record_label
        from aldesk.cli import main
        from aldesk.store import Project

        self._add_files(300)
        assert main(["init", str(self.project), "--classes", "normal,pneumonia"]) == 0
        assert main(["import", str(self.project), str(self.scans), "--jobs", "1", "--quiet"]) == 0
        with Project.open(self.project) as p:
            self.paths = [path for _sid, path in ((s, os.path.join(r, rel)) for s, r, rel in p.scans.iter_paths())]
        self.packages = []
        for k in range(4):
            copy = self.work / f"handout{k}"
            code = main(["package", "handout", str(self.project), str(copy), "--annotator", f"dr_pkg{k}",
                         "--scans", "120", "--identified", "--json"])
            if code != 0:
                raise SystemExit(f"hand-out failed (exit {code}); cannot build packages for the soak")
            with Project.open(copy) as c:
                for sid, _root, _rel in list(c.scans.iter_paths())[:120]:
                    record_label(c, sid, f"dr_pkg{k}", self.rng.choice(("normal", "pneumonia")))
            pkg = self.work / f"reader{k}.aldpkg"
            assert main(["package", "export", str(copy), str(pkg)]) == 0
            self.packages.append(pkg)
        for cmd in COMMANDS + ("import2",):  # one unkilled run each: how long to wait before killing
            t = time.perf_counter()
            status = self._run(cmd)
            self.durations[cmd] = time.perf_counter() - t
            if status["exit"] != 0:
                raise SystemExit(f"an unkilled `{cmd}` failed (exit {status['exit']}); fix that first")
        self._observe()

    def _add_files(self, k: int) -> None:
        for _ in range(k):
            _write_png(self.scans / f"{self.n_files // 100:03d}" / f"img_{self.n_files:05d}.png", seed=self.n_files)
            self.n_files += 1

    # ------------------------------------------------------------ one command
    def _argv(self, cmd: str) -> list[str]:
        p = str(self.project)
        if cmd == "label":
            csv = self.work / "labels.csv"
            rows = self.rng.sample(self.paths, min(150, len(self.paths)))
            csv.write_text("path,label\n" + "".join(f"{r},{self.rng.choice(('normal', 'pneumonia'))}\n" for r in rows))
            return ["label", p, "--csv", str(csv), "--annotator", f"dr_soak{self.rng.randrange(3)}"]
        if cmd in ("import", "import2"):  # import2: with 2 worker processes (a third of the import rounds)
            self._add_files(10)
            return ["import", p, str(self.scans), "--jobs", "2" if cmd == "import2" else "1", "--quiet"]
        if cmd == "package":
            return ["package", "import", p, str(self.rng.choice(self.packages))]
        if cmd == "backup":
            return ["backup", p]
        if cmd == "restore":
            return ["backup", p, "--restore", "latest"]
        self.export_out = self.outs / f"out{self.counts['export']}"
        return ["export", p, str(self.export_out), "--format", "folders", "--include-identifiers", "--quiet"]

    def _run(self, cmd: str) -> dict:
        pid = self.zygote.start(run="cli", argv=self._argv(cmd))
        return self.zygote.wait(pid)

    def round(self, i: int) -> None:
        cmd = self.rng.choice(COMMANDS)
        if cmd == "import" and self.rng.random() < 1 / 3:
            cmd = "import2"
        self.counts[cmd] += 1
        argv = self._argv(cmd)
        pid = self.zygote.start(run="cli", argv=argv)
        delay = self.rng.uniform(0.0, self.durations[cmd] * 1.2)
        workers: list[int] = []
        end = time.perf_counter() + delay
        while time.perf_counter() < end:
            if cmd == "import2":
                workers = worker_children(pid) or workers
            time.sleep(min(0.01, max(0.0, end - time.perf_counter())))
        status = self.zygote.kill_and_wait(pid)
        if status["killed"]:
            self.killed[cmd] += 1
        else:
            self.exit_codes[f"{cmd}:{status['exit']}"] += 1
        self._check(i, cmd, workers)

    # ------------------------------------------------------------ invariants
    def _fail(self, i: int, cmd: str, what: str) -> None:
        self.failures.append({"round": i, "command": cmd, "failure": what})
        print(f"  FAILURE round {i} ({cmd}): {what}", flush=True)

    def _check(self, i: int, cmd: str, workers: list[int]) -> None:
        from aldesk.errors import AldeskError
        from aldesk.store.backups import list_backups, verify_backup
        from aldesk.store.preview_store import missing_rows

        if workers:
            self.workers_checked += len(workers)
            t0 = time.time()
            while time.time() < t0 + WORKER_GRACE_S and any(alive(w) for w in workers):
                time.sleep(0.02)
            self.worker_death_s.append(time.time() - t0)
            survivors = [w for w in workers if alive(w)]
            if survivors:
                self._fail(i, cmd, f"import workers {survivors} outlived the killed import by {WORKER_GRACE_S:.0f} s")
        if cmd == "export":
            deadline = time.time() + 5
            while time.time() < deadline and list(self.outs.glob(".*partial*")):
                time.sleep(0.05)
            left = list(self.outs.glob(".*partial*"))
            if left:
                self._fail(i, cmd, f"partial export folders survived: {[p.name for p in left]}")
            if self.export_out.exists():
                if not (self.export_out / "manifest.json").is_file():
                    self._fail(i, cmd, "an export folder is in place without its manifest (half an export)")
                shutil.rmtree(self.export_out, ignore_errors=True)
        for b in list_backups(self.project):
            # every round: pruning may remove side-store rows, never those of a listed backup
            lacks = {t: n for t, n in missing_rows(b, b.parent).items() if n}
            if lacks:
                self._fail(i, cmd, f"a listed backup lacks rows of backups/previews.sqlite: {b.name} {lacks}")
            key = (b.name, b.stat().st_mtime)
            if key in self.verified:
                continue
            try:
                verify_backup(b)
                self.verified.add(key)
            except AldeskError as exc:
                self._fail(i, cmd, f"a listed backup is not complete and verified: {exc}")
        try:
            self._observe(full=(i % 25 == 24))
        except (AldeskError, sqlite3.DatabaseError) as exc:
            self._fail(i, cmd, f"the project does not open cleanly: {exc}")

    def _observe(self, full: bool = False) -> None:
        """Open the project (its own checks run), record its label ids, check none ever seen is gone."""
        from aldesk.store import PROJECT_DB_NAME, Project

        with Project.open(self.project) as p:
            ids = {r[0] for r in p.conn.execute("SELECT id FROM labels")}
            running = p.conn.execute("SELECT COUNT(*) FROM imports WHERE status = 'running'").fetchone()[0]
            if full:
                verdict = p.integrity_check()
                if verdict != "ok":
                    raise sqlite3.DatabaseError(f"integrity_check: {verdict}")
        if running:
            raise sqlite3.DatabaseError(f"{running} import rows still 'running' after a lone open")
        kept = set(ids)
        for aside in self.project.glob(PROJECT_DB_NAME + ".replaced-*"):
            if aside.name.endswith(("-wal", "-shm")):
                continue
            if aside.name not in self.aside_ids:
                self.aside_ids[aside.name] = _label_ids(aside)
            kept |= self.aside_ids[aside.name]
        lost = self.ever - kept
        if lost:
            raise sqlite3.DatabaseError(f"{len(lost)} committed labels are neither in the project nor kept aside")
        self.ever |= ids

    def close(self) -> None:
        self.zygote.close()


def _label_ids(db: Path) -> set[str]:
    uri = db.resolve().as_uri() + ("?mode=ro" if Path(str(db) + "-wal").exists() else "?mode=ro&immutable=1")
    conn = sqlite3.connect(uri, uri=True)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM labels")}
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=1000, help="rounds (each kills one command; default 1000)")
    parser.add_argument("--max-minutes", type=float, default=120.0, help="stop early after this long")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", help="folder to work in (default: a temporary one, removed at the end)")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = parser.parse_args(argv)
    if args.kills < 1:
        parser.error(f"--kills == {args.kills}, must be >= 1")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="aldesk-kills-"))
    work.mkdir(parents=True, exist_ok=True)
    soak = Soak(work, args.seed)
    started = time.perf_counter()
    rounds = 0
    try:
        soak.setup()
        print(f"set up in {time.perf_counter() - started:.1f} s; unkilled durations (s): "
              + ", ".join(f"{k} {v:.2f}" for k, v in soak.durations.items()), flush=True)
        deadline = started + args.max_minutes * 60
        for i in range(args.kills):
            if time.perf_counter() > deadline:
                print(f"stopped at the time limit after {i} rounds", flush=True)
                break
            soak.round(i)
            rounds += 1
            if (i + 1) % 50 == 0:
                print(f"{i + 1} rounds, {sum(soak.killed.values())} killed mid-run, {len(soak.failures)} failures, "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
        soak._observe(full=True)
    finally:
        soak.close()
    elapsed = time.perf_counter() - started
    result = {
        "rounds": rounds, "killed_mid_run": sum(soak.killed.values()), "killed_by_command": dict(soak.killed),
        "rounds_by_command": dict(soak.counts), "finished_before_kill": dict(soak.exit_codes),
        "failures": soak.failures, "labels_ever_committed": len(soak.ever), "kept_aside_copies": len(soak.aside_ids),
        "unkilled_duration_s": {k: round(v, 3) for k, v in soak.durations.items()},
        "import_workers_checked": soak.workers_checked,
        "worker_death_after_kill_s": {"n": len(soak.worker_death_s),
                                      "max": round(max(soak.worker_death_s, default=0.0), 3),
                                      "median": round(sorted(soak.worker_death_s)[len(soak.worker_death_s) // 2], 3)
                                      if soak.worker_death_s else None},
        "elapsed_s": round(elapsed, 1), "seed": args.seed,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if soak.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
