"""Import folders of scans into a project: walk, decode in a process pool, write in batches.

Streams: files are read by worker processes a few chunks at a time and written as they arrive, so
memory stays flat however large the folder. Each batch is one transaction, so an import stopped by
Ctrl-C or kill -9 leaves a consistent project, and running it again picks up where it stopped
(files already imported with the same size and time are not read again). Source files are only read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
import os
import signal
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from aldesk.app.callbacks import Progress, ShouldStop, never_stop, no_progress
from aldesk.app.units import file_slice, finalise_units, unit_uids
from aldesk.app.walk import FoundFile, WalkProblem, walk_files
from aldesk.app.worker_life import init_worker
from aldesk.errors import InvalidScanError, ProjectError
from aldesk.store import Project
from aldesk.store.project import utc_now

DEFAULT_MAX_PIXELS = 400_000_000
PREVIEW_SIZE = 128
CHUNK_FILES = 8          # files per task sent to a worker
BATCH_FILES = 64         # files per write transaction (~20 ms: a reader labelling meanwhile waits no longer)
BATCH_SECONDS = 0.5      # ... or this long, whichever comes first


@dataclass
class ImportSummary:
    """What an import did. ``problems`` lists every file not imported, with its reason."""

    imported: int = 0
    duplicates: int = 0
    skipped: int = 0
    failed: int = 0
    unchanged: int = 0
    units: int = 0       # new series/study units (series and study projects)
    series_problems: list[dict] = field(default_factory=list)   # missing / duplicate / uneven slices
    status: str = "done"
    elapsed_s: float = 0.0
    problems: list[dict] = field(default_factory=list)

    @property
    def files(self) -> int:
        return self.imported + self.duplicates + self.skipped + self.failed + self.unchanged

    def to_json(self) -> dict:
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "failed": self.failed,
            "unchanged": self.unchanged,
            "units": self.units,
            "series_problems": self.series_problems,
            "files": self.files,
            "status": self.status,
            "elapsed_s": round(self.elapsed_s, 3),
            "files_per_s": round(self.files / self.elapsed_s, 1) if self.elapsed_s > 0 else None,
            "problems": self.problems,
        }

    def add_problem(self, path: str, kind: str, code: str, reason: str) -> None:
        counter = "duplicates" if kind == "duplicate" else kind
        setattr(self, counter, getattr(self, counter) + 1)
        self.problems.append({"path": path, "kind": kind, "code": code, "reason": reason})


def patient_key(patient_id: str | None, salt: str) -> str | None:
    """Salted HMAC of the Patient ID: groups a patient's scans without revealing who they are."""
    if not patient_id or not patient_id.strip():
        return None
    return hmac.new(bytes.fromhex(salt), patient_id.strip().encode("utf-8"), hashlib.sha256).hexdigest()[:24]


# --------------------------------------------------------------------------- worker side
_WORKER_SALT = ""
_WORKER_MAX_PIXELS = DEFAULT_MAX_PIXELS


def _init_worker(salt: str, max_pixels: int) -> None:
    global _WORKER_SALT, _WORKER_MAX_PIXELS
    _WORKER_SALT, _WORKER_MAX_PIXELS = salt, max_pixels
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop


def _inspect(paths: list[str]) -> list[tuple]:
    """Worker body: read each file. Returns ("ok", info) or ("problem", kind, code, reason) per path."""
    from aldesk.imaging import read_scan_info

    out = []
    for path in paths:
        try:
            info = read_scan_info(path, max_pixels=_WORKER_MAX_PIXELS, preview_size=PREVIEW_SIZE)
        except InvalidScanError as exc:
            out.append(("problem", exc.kind, exc.code, exc.reason))
            continue
        except Exception as exc:  # noqa: BLE001 - one odd file must not stop a 100,000-file import
            out.append(("problem", "failed", "unexpected-error",
                        f"could not be read ({type(exc).__name__}: {exc}); please report this file to the aldesk team"))
            continue
        info.patient_id = patient_key(info.patient_id, _WORKER_SALT)  # the raw ID never leaves the worker
        out.append(("ok", info))
    return out


# --------------------------------------------------------------------------- parent side
@dataclass
class _Task:
    root_id: int
    files: list[FoundFile]
    solo: bool = False  # a retry after a worker crash, run alone so a crash names this file


class _Writer:
    """Collects worker results and writes them in batched transactions."""

    def __init__(self, project: Project, import_id: int, summary: ImportSummary):
        self.project = project
        self.import_id = import_id
        self.summary = summary
        self.pending: list[tuple[int, FoundFile, tuple]] = []
        self.last_flush = time.monotonic()
        self.unit = project.units.kind()

    def add(self, root_id: int, found: FoundFile, outcome: tuple) -> None:
        self.pending.append((root_id, found, outcome))
        if len(self.pending) >= BATCH_FILES or time.monotonic() - self.last_flush > BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        scans = self.project.scans
        now = utc_now()
        with self.project.transaction():
            for root_id, found, outcome in self.pending:
                if outcome[0] == "problem":
                    _, kind, code, reason = outcome
                    scans.record_problem(root_id, found.relpath, found.size, found.mtime, kind, code, reason, self.import_id)
                    self.summary.add_problem(found.abspath, kind, code, reason)
                    continue
                info = outcome[1]
                if self.unit != "image" and self._add_slice(root_id, found, info, now):
                    continue
                uid = info.sop_instance_uid or f"sha:{info.pixel_hash}"
                existing = scans.find_existing(uid, info.pixel_hash)
                if existing is not None:
                    scan_id, matched = existing
                    original = scans.get(scan_id)
                    if matched == "uid" and uid.startswith("sha:"):
                        matched = "pixels"  # raster images are identified by their pixels
                    what = "same SOP Instance UID" if matched == "uid" else "same pixels"
                    reason = f"duplicate of {original.path} ({what}); not imported twice"
                    scans.record_problem(root_id, found.relpath, found.size, found.mtime, "duplicate", matched,
                                         reason, self.import_id, scan_id=scan_id)
                    self.summary.add_problem(found.abspath, "duplicate", matched, reason)
                    continue
                scans.insert_scan(_scan_values(info, uid, root_id, found, self.import_id, now), info.preview)
                self.summary.imported += 1
        self.pending.clear()
        self.last_flush = time.monotonic()

    def _add_slice(self, root_id: int, found: FoundFile, info, now: str) -> bool:
        """File a DICOM slice under its series/study unit; False when it stays an image of its own.
        Slices of a series are told apart by SOP Instance UID only: equal pixels (blank slices) are normal."""
        if unit_uids(self.unit, info) is None:
            return False
        other = self.project.units.find_slice(info.sop_instance_uid, root_id, found.relpath)
        if other is not None:
            reason = f"duplicate of {other[1]} (same SOP Instance UID); not imported twice"
            self.project.scans.record_problem(root_id, found.relpath, found.size, found.mtime, "duplicate", "uid",
                                              reason, self.import_id, scan_id=other[0])
            self.summary.add_problem(found.abspath, "duplicate", "uid", reason)
            return True
        values = _scan_values(info, info.sop_instance_uid, root_id, found, self.import_id, now)
        _, created = file_slice(self.project, self.unit, info, values, {
            "pixel_hash": info.pixel_hash, "root_id": root_id, "relpath": found.relpath, "file_size": found.size,
            "file_mtime": found.mtime, "import_id": self.import_id})
        self.summary.imported += 1
        self.summary.units += int(created)
        return True


def _scan_values(info, uid: str, root_id: int, found: FoundFile, import_id: int, now: str) -> dict:
    spacing = info.pixel_spacing or (None, None)
    return {
        "uid": uid, "pixel_hash": info.pixel_hash, "root_id": root_id, "relpath": found.relpath,
        "file_size": found.size, "file_mtime": found.mtime, "format": info.format,
        "study_uid": info.study_uid, "series_uid": info.series_uid, "patient_key": info.patient_id,
        "modality": info.modality, "body_part": info.body_part, "view": info.view,
        "rows": info.rows, "columns": info.columns, "frames": info.frames, "samples": info.samples_per_pixel,
        "bits_allocated": info.bits_allocated, "bits_stored": info.bits_stored, "signed": int(info.signed),
        "photometric": info.photometric, "spacing_row": spacing[0], "spacing_col": spacing[1],
        "transfer_syntax": info.transfer_syntax,
        "windows": json.dumps([[w.center, w.width, w.name] for w in info.windows]),
        "import_id": import_id, "imported_at": now,
    }


def _count_files(paths: list[str | os.PathLike]) -> int:
    """How many files the walk will meet, for the progress bar's ETA (a quick pass: names and stat only)."""
    total = 0
    for raw in paths:
        path = os.path.abspath(raw)
        if os.path.exists(path):
            root = path if os.path.isdir(path) else os.path.dirname(path)
            total += sum(1 for _ in walk_files(root, path))
    return total


def _plan(project: Project, paths: list[str | os.PathLike], summary: ImportSummary, writer: _Writer):
    """Yield tasks of new or changed files; report unchanged and walk problems straight away."""
    for raw in paths:
        path = Path(os.path.abspath(raw))
        if not path.exists():
            raise ProjectError(f"{path}: does not exist; check the path to import")
        folder = path if path.is_dir() else path.parent
        root_id, prefix = project.scans.root_for(folder)
        root = project.scans.roots()[root_id]
        known = project.scans.known_files(root_id, prefix)
        known.update(project.units.known_files(root_id, prefix))
        chunk: list[FoundFile] = []
        for item in walk_files(root, str(path)):
            if isinstance(item, WalkProblem):
                kind = "failed" if item.code == "unreadable" else "skipped"
                writer.add(root_id, FoundFile(item.abspath, item.relpath, 0, 0.0), ("problem", kind, item.code, item.reason))
                continue
            seen = known.get(item.relpath)
            if seen and seen.file_size == item.size and seen.file_mtime == item.mtime:
                if seen.kind == "imported":
                    summary.unchanged += 1
                else:
                    summary.add_problem(item.abspath, seen.kind, seen.code, seen.reason)
                continue
            chunk.append(item)
            if len(chunk) >= CHUNK_FILES:
                yield _Task(root_id, chunk)
                chunk = []
        if chunk:
            yield _Task(root_id, chunk)


def import_paths(
    project: Project,
    paths: list[str | os.PathLike],
    *,
    jobs: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Progress = no_progress,
    should_stop: ShouldStop = never_stop,
) -> ImportSummary:
    """Import every scan under ``paths`` (folders walked recursively, or single files).

    jobs: worker processes (default: all cores; 1 = read in this process).
    Returns the summary; problems are also stored in the project. Stops cleanly when ``should_stop()``.
    """
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs == {jobs}, must be >= 1")
    jobs = jobs or os.cpu_count() or 1
    summary = ImportSummary()
    started = time.monotonic()
    import_id = project.scans.start_import([str(Path(p).absolute()) for p in paths], utc_now())
    writer = _Writer(project, import_id, summary)
    salt = project.patient_salt
    status = "done"
    try:
        total = _count_files(paths)
        progress(0, total, "")
        tasks = _plan(project, paths, summary, writer)

        def report(task: _Task, outcomes: list[tuple]) -> None:
            for found, outcome in zip(task.files, outcomes):
                writer.add(task.root_id, found, outcome)
            done = summary.files + len(writer.pending)
            progress(done, max(total, done), f"{summary.imported} new, {summary.skipped + summary.failed} not imported")

        if jobs == 1:
            _init_in_process(salt, max_pixels)
            for task in tasks:
                if should_stop():
                    status = "cancelled"
                    break
                report(task, _inspect([f.abspath for f in task.files]))
        else:
            status = _run_pool(tasks, jobs, salt, max_pixels, report, should_stop)
        writer.flush()
        summary.series_problems = finalise_units(project, progress=progress)
    except BaseException:
        status = "failed"
        writer.flush()  # keep what was read: each batch is whole, and a re-run skips it
        raise
    finally:
        summary.status = status
        summary.elapsed_s = time.monotonic() - started
        project.scans.finish_import(import_id, status, summary.to_json() | {"problems": len(summary.problems)}, utc_now())
    return summary


def _init_in_process(salt: str, max_pixels: int) -> None:
    global _WORKER_SALT, _WORKER_MAX_PIXELS
    _WORKER_SALT, _WORKER_MAX_PIXELS = salt, max_pixels


def _new_pool(jobs: int, salt: str, max_pixels: int) -> ProcessPoolExecutor:
    # spawn, not fork: the GUI process has threads, and fork would copy their locks.
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               # workers die with this process (aldesk.app.worker_life), armed before any import
                               initializer=init_worker,
                               initargs=(os.getpid(), "aldesk.app.importer:_init_worker", salt, max_pixels))


def _run_pool(tasks, jobs, salt, max_pixels, report, should_stop) -> str:
    """Keep a few chunks in flight per worker. A worker that dies (a decoder segfault) costs only its
    files: they are retried one at a time, alone in the pool, so the culprit is named and the rest import."""
    pool = _new_pool(jobs, salt, max_pixels)
    in_flight: dict[Future, _Task] = {}
    retry: deque[_Task] = deque()
    limit = jobs * 4
    status = "done"
    exhausted = False
    try:
        while True:
            if should_stop():
                status = "cancelled"
                break
            if retry:
                if not in_flight:
                    task = retry.popleft()
                    in_flight[pool.submit(_inspect, [f.abspath for f in task.files])] = task
            else:
                while len(in_flight) < limit and not exhausted:
                    task = next(tasks, None)
                    if task is None:
                        exhausted = True
                        break
                    in_flight[pool.submit(_inspect, [f.abspath for f in task.files])] = task
            if not in_flight:
                break
            done, _ = wait(in_flight, timeout=0.2, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                task = in_flight.pop(fut)
                try:
                    outcomes = fut.result()
                except BrokenProcessPool:
                    broken = True
                    if task.solo:
                        report(task, [("problem", "failed", "decoder-crashed",
                                       "the image decoder crashed on this file; it is probably corrupt")])
                    else:
                        retry.extend(_Task(task.root_id, [f], solo=True) for f in task.files)
                    continue
                report(task, outcomes)
            if broken:
                for task in in_flight.values():
                    retry.extend(_Task(task.root_id, [f], solo=True) for f in task.files)
                in_flight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _new_pool(jobs, salt, max_pixels)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return status
