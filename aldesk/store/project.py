"""Create and open a project: one SQLite database (WAL, foreign keys, versioned schema) in a folder.

Everything a project owns lives under its folder, so copying the folder moves the project. Opening
never changes a database it cannot fully understand: a newer schema or a foreign file is refused
before anything is written, and a migration runs only after a backup copy was made.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from aldesk.errors import (NotAProjectError, ProjectBusyError, ProjectDamagedError, ProjectError, ProjectVersionError,
                           StorageError, storage_error)
from aldesk.store.backups import (BACKUP_DIR_NAME, BACKUPS_KEPT, backup_database, commits_of, list_backups,
                                  newest_backup, prune_backups, restore_backup)
from aldesk.store.openlock import LOCK_NAME, ProjectLock
from aldesk.store.preview_store import collect_garbage
from aldesk.store.schema import APPLICATION_ID, CREATE_SCRIPTS, MIGRATIONS, SCHEMA_VERSION

__all__ = ["BACKUP_DIR_NAME", "BACKUPS_KEPT", "OpenStatus", "Project", "backup_database", "list_backups",
           "newest_backup", "restore_backup", "utc_now"]

PROJECT_DB_NAME = "project.sqlite"
CACHE_DIR_NAME = "cache"
# Below this size the whole database is quick-checked on open (about 0.3 s at 256 MB); above it only
# the tables people made (labels, reviews, scans, settings), not the rebuildable previews and features.
FULL_QUICK_CHECK_BYTES = 256 * 2**20
REBUILDABLE_TABLES = ("previews", "features")
WAITING_FOR_RESTORE_S = 30.0
SCHEDULED_MIN_AGE_H = 1.0   # a scheduled backup at most this often (taken after writes, see backup_due)
_COUNT_COMMIT = ("INSERT INTO meta(key, value) VALUES ('commits', '1') ON CONFLICT(key) "
                 "DO UPDATE SET value = CAST(value AS INTEGER) + 1 RETURNING value")
SPECIAL_LABELS = ("unsure", "skip")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class OpenStatus:
    """What opening did, for the UI to show: nothing special, a migration (with its backup), read-only."""

    created: bool = False
    migrated_from: int | None = None
    backup: Path | None = None
    readonly: bool = False
    damaged: str | None = None          # why writes are refused (opened with allow_damaged=True only)
    interrupted_imports: int = 0        # imports found still "running" from a process that is gone

    def describe(self) -> str:
        if self.damaged:
            return f"DAMAGED, writes refused: {self.damaged}"
        if self.created:
            return "new project created"
        if self.migrated_from is not None:
            return f"project upgraded from schema {self.migrated_from} to {SCHEMA_VERSION}; backup at {self.backup}"
        if self.readonly:
            return "project opened read-only (the folder cannot be written)"
        if self.interrupted_imports:
            return (f"project opened; {self.interrupted_imports} import(s) had been interrupted (killed or crashed): "
                    "what they saved is kept, import the same folder again to finish")
        return "project opened"


def _on_readonly_medium(path: Path) -> bool:
    """True when the folder cannot be written: a read-only mount (CD, write-protected share) or no permission."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return True
    except (AttributeError, OSError):  # statvfs is POSIX-only
        pass
    return not os.access(path, os.W_OK) or not os.access(path / PROJECT_DB_NAME, os.W_OK)


# How long a write waits for another process's write transaction before giving up as busy. Long writers
# commit in short transactions (import batches, label files in chunks), so this is rarely reached; the
# reading screen waits far less and journals the label instead (aldesk.store.journal).
BUSY_TIMEOUT_MS = 10_000


def _connect(db: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if not readonly:
        mode = "rw"
    elif _wal_has_frames(db):
        # committed writes still in the WAL: read them (needs the -shm index), or refuse, saying why
        mode = "ro"
    else:
        # immutable: on a read-only medium SQLite could not create the WAL index, and nothing can change there
        mode = "ro&immutable=1"
    uri = f"{db.resolve().as_uri()}?mode={mode}"
    conn = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if mode == "ro":
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ProjectError(
                f"{db.parent}: read-only here, and {db.name}-wal holds changes that were never folded into the "
                f"database; they cannot be read without writing beside it ({exc}). Copy the whole project folder "
                "to a writable place and open the copy there, so nothing saved is left out") from exc
    return conn


def _wal_has_frames(db: Path) -> bool:
    try:
        return Path(str(db) + "-wal").stat().st_size > 32  # more than the WAL header
    except OSError:
        return False


def _find_damage(conn: sqlite3.Connection, db: Path, lock: ProjectLock, readonly: bool, *, check_pages: bool) -> str | None:
    """Why the database cannot be trusted, or None: lost commits (always checked, it is cheap) and
    damaged pages (``quick_check``; bounded: see FULL_QUICK_CHECK_BYTES)."""
    problems = []
    recorded = lock.recorded_commits()  # read before the database's own counter: it only grows
    row = conn.execute("SELECT value FROM meta WHERE key = 'commits'").fetchone()
    have = int(row[0]) if row else 0
    if recorded is not None and have < recorded:
        problems.append(
            f"{recorded - have} committed changes are missing (the database holds commit {have} of {recorded}: "
            f"its {db.name}-wal file was deleted or damaged, or an older copy was put in its place)")
        _keep_wal(db)
    elif not readonly and (recorded is None or have > recorded):
        lock.record_commits(have)
    if check_pages:
        verdict = quick_check(conn, db)
        if verdict:
            problems.append(f"damaged pages ({verdict})")
    return "; ".join(problems) or None


def quick_check(conn: sqlite3.Connection, db: Path) -> str | None:
    """``PRAGMA quick_check`` of the whole database when small, else of every table but the rebuildable
    previews and features (about 0.3 s for 100,000 scans). None when fine, else SQLite's first findings."""
    try:
        if db.stat().st_size <= FULL_QUICK_CHECK_BYTES:
            verdicts = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
        else:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                      if r[0] not in REBUILDABLE_TABLES]
            verdicts = []
            for table in tables:
                verdicts += [r[0] for r in conn.execute(f'PRAGMA quick_check("{table}")') if r[0] != "ok"]
            verdicts = verdicts or ["ok"]
    except sqlite3.DatabaseError as exc:  # too damaged even to be checked
        verdicts = [str(exc)]
    return None if verdicts == ["ok"] else "; ".join(verdicts[:3])


def _keep_wal(db: Path) -> None:
    """Copy a suspect -wal file aside before SQLite folds in what it can and deletes it (for forensics)."""
    wal = Path(str(db) + "-wal")
    if wal.exists():
        import shutil

        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        try:
            shutil.copyfile(wal, db.with_name(f"{db.name}-wal.suspect-{stamp}"))
        except OSError:
            pass  # a read-only medium: nothing will delete it there either


def damage_message(path: Path, damage: str) -> str:
    newest = newest_backup(path)
    way_out = (f"restore the newest backup ({newest.name}) with `aldesk backup {path} --restore latest` (it says "
               "which labels the backup lacks; the damaged database is kept aside)") if newest else \
        "no backup exists yet: copy the project folder somewhere safe before anything else"
    accept = f", or carry on without them with `aldesk doctor {path} --accept-loss`" if "committed changes are missing" in damage else ""
    return (f"{path}: the project database is damaged: {damage}. Writes are refused. To recover, {way_out}{accept}; "
            f"`aldesk doctor {path}` shows the details")


def _configure(conn: sqlite3.Connection, readonly: bool) -> None:
    conn.execute("PRAGMA foreign_keys = ON")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a label the UI showed as saved survives power loss (0.13 ms per commit, PERF-NOTES).
        conn.execute("PRAGMA synchronous = FULL")


def _read_header(db: Path) -> tuple[int, int]:
    """(application_id, user_version) without writing anything; NotAProjectError if not SQLite."""
    try:
        with open(db, "rb") as fh:
            head = fh.read(100)
    except OSError as exc:
        raise NotAProjectError(f"{db}: cannot be read ({exc.strerror}); check the path and permissions") from exc
    if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
        raise NotAProjectError(
            f"{db}: not an aldesk project (not an SQLite database). "
            "Create a project with `aldesk init PROJECT --classes a,b`"
        )
    user_version = int.from_bytes(head[60:64], "big")
    application_id = int.from_bytes(head[68:72], "big")
    return application_id, user_version


class Project:
    """An open project. Use ``Project.create`` / ``Project.open``; close it (or use ``with``)."""

    def __init__(self, path: Path, conn: sqlite3.Connection, status: OpenStatus, lock: ProjectLock | None = None):
        from aldesk.store.annotations import LabelStore
        from aldesk.store.audit import AuditStore
        from aldesk.store.featurestore import FeatureStore
        from aldesk.store.modelstore import ModelStore
        from aldesk.store.packages import PackageStore
        from aldesk.store.reviews import ReviewStore
        from aldesk.store.scans import ScanStore
        from aldesk.store.units import UnitStore

        self.path = path
        self.conn = conn
        self.status = status
        self._lock = lock
        self.scans = ScanStore(self)
        self.labels = LabelStore(self)
        self.features = FeatureStore(self)
        self.models = ModelStore(self)
        self.packages = PackageStore(self)
        self.reviews = ReviewStore(self)
        self.units = UnitStore(self)
        self.audit = AuditStore(self)

    # ---------------------------------------------------------------- lifecycle
    @classmethod
    def create(cls, path: str | os.PathLike, classes: list[str], *, name: str | None = None,
               unit: str = "image") -> "Project":
        """unit: what a reader labels, 'image' (each file), 'series' or 'study' (see aldesk.store.units)."""
        from aldesk.store.units import validate_unit

        path = Path(path)
        classes = validate_class_names(classes)
        validate_unit(unit)
        db = path / PROJECT_DB_NAME
        if db.exists():
            raise ProjectError(f"{path}: a project already exists here; open it instead, or choose a new folder")
        if path.exists() and not path.is_dir():
            raise ProjectError(f"{path}: exists and is not a folder; choose a new folder for the project")
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / (PROJECT_DB_NAME + ".creating")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.executescript(
                "BEGIN;\n" + CREATE_SCRIPTS[SCHEMA_VERSION] + "\n"
                f"PRAGMA application_id = {APPLICATION_ID};\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
            )
            now = utc_now()
            meta = {
                "project_id": str(uuid.uuid4()),
                "name": name or path.resolve().name,
                "created_at": now,
                # Private to this project: patient keys cannot be matched across projects.
                "patient_salt": secrets.token_hex(32),
                # Signs this project's annotation packages; never leaves the project (not in hand-outs).
                "package_secret": secrets.token_hex(32),
                "settings": json.dumps({"retrain_every": 10, "reads_per_scan": 1}),
                "unit": unit,
                "commits": "0",
            }
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta.items())
            conn.executemany("INSERT INTO classes(idx, name) VALUES (?, ?)", list(enumerate(classes)))
            conn.execute("COMMIT")
        finally:
            conn.close()
        (path / LOCK_NAME).unlink(missing_ok=True)  # a counter left by an earlier project in this folder
        os.replace(tmp, db)  # the project appears whole or not at all
        (path / CACHE_DIR_NAME).mkdir(exist_ok=True)
        project = cls.open(path)
        project.status = OpenStatus(created=True)
        return project

    @classmethod
    def open(cls, path: str | os.PathLike, *, readonly: bool | None = None, allow_damaged: bool = False) -> "Project":
        """Open a project, checking it first: pages (``quick_check``) and committed writes (the counter).

        A damaged project raises ProjectDamagedError saying how to restore it; ``allow_damaged=True``
        (doctor, info) opens it anyway with writes refused and ``status.damaged`` set."""
        path = Path(path)
        db = path / PROJECT_DB_NAME
        if path.is_file():
            raise NotAProjectError(f"{path}: is a file, not an aldesk project folder; give the project's folder")
        if not db.is_file():
            newest = newest_backup(path) if path.is_dir() else None
            if newest is not None:  # the database went missing, its backups did not
                raise ProjectDamagedError(
                    f"{path}: the project database ({PROJECT_DB_NAME}) is missing, but its backups are here; "
                    f"restore the newest ({newest.name}) with `aldesk backup {path} --restore latest`")
            raise NotAProjectError(
                f"{path}: no aldesk project here (no {PROJECT_DB_NAME}). "
                "Create one with `aldesk init PROJECT --classes a,b`"
            )
        try:
            app_id, version = _read_header(db)
        except NotAProjectError:
            newest = newest_backup(path)
            if newest is None:
                raise
            raise ProjectDamagedError(
                f"{path}: the project database is damaged (it no longer reads as SQLite); restore the newest "
                f"backup ({newest.name}) with `aldesk backup {path} --restore latest`") from None
        if app_id != APPLICATION_ID:
            raise NotAProjectError(f"{db}: an SQLite database, but not an aldesk project; nothing was changed")
        if version > SCHEMA_VERSION:
            raise ProjectVersionError(
                f"{path}: written by a newer aldesk (schema {version}; this program knows up to {SCHEMA_VERSION}). "
                "Update aldesk to open it; nothing was changed"
            )
        if readonly is None:
            readonly = _on_readonly_medium(path)
        # alone (nobody else has it open): the only moment to check every page and tidy up after a crash
        lock = ProjectLock.acquire(path, exclusive=True, writable=not readonly)
        alone = lock is not None
        if lock is None:
            lock = ProjectLock.acquire(path, wait_s=WAITING_FOR_RESTORE_S, writable=not readonly)
            if lock is None:
                raise ProjectBusyError(f"{path}: a backup is being restored into this project; try again when it is done")
        try:
            _, version = _read_header(db)  # again: a restore may have put another schema in place meanwhile
            conn = _connect(db, readonly=readonly)
            try:
                _configure(conn, readonly)
                # touches the schema pages: a damaged database fails here, before anything is shown
                conn.execute("SELECT COUNT(*) FROM meta").fetchone()
                damage = _find_damage(conn, db, lock, readonly, check_pages=alone)
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise _as_project_error(exc, path) from exc
            if damage and not allow_damaged:
                conn.close()
                raise ProjectDamagedError(damage_message(path, damage))
            status = OpenStatus(readonly=readonly, damaged=damage)
            if version < SCHEMA_VERSION:
                if readonly or damage:
                    conn.close()
                    raise ProjectError(f"{path}: needs an upgrade (schema {version}) but is "
                                       f"{'read-only; copy it somewhere writable' if readonly else 'damaged: ' + damage}")
                status = _migrate(conn, path, version)
            project = cls(path, conn, status, lock)
            if alone and not readonly and not damage:
                project._mark_interrupted_imports()
                for leftover in (".creating", ".restoring", ".restoring-journal"):  # a create or restore killed midway
                    (path / (PROJECT_DB_NAME + leftover)).unlink(missing_ok=True)
        except BaseException:
            lock.release()
            raise
        lock.share()
        return project

    def _mark_interrupted_imports(self) -> None:
        """Imports still "running" while nobody else has the project open were stopped by a kill or crash."""
        if self.conn.execute("SELECT 1 FROM imports WHERE status = 'running' LIMIT 1").fetchone() is None:
            return
        with self.transaction() as c:
            n = c.execute("UPDATE imports SET status = 'interrupted', finished_at = ? WHERE status = 'running'",
                          (utc_now(),)).rowcount
        self.status = replace(self.status, interrupted_imports=n)

    def close(self) -> None:
        self.conn.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing writes. IMMEDIATE so a second writer waits (busy_timeout) instead of failing late.

        Every commit also counts itself (meta ``commits``, copied into project.lock once committed), so
        committed writes that later vanish (a deleted or damaged -wal file) are noticed on the next open."""
        if self.status.readonly:
            raise ProjectError(f"{self.path}: opened read-only (the folder cannot be written); "
                               "copy the project to a writable place to change it")
        if self.status.damaged:
            raise ProjectDamagedError(damage_message(self.path, self.status.damaged))
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise _as_project_error(exc, self.path) from exc
        try:
            yield self.conn
            commits = int(self.conn.execute(_COUNT_COMMIT).fetchone()[0])
            self.conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise _as_project_error(exc, self.path) from exc
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        if self._lock is not None:
            self._lock.record_commits(commits)

    def commits(self) -> int:
        """How many write transactions this database has committed (its counter in ``meta``)."""
        return int(self.meta("commits", "0"))

    # ---------------------------------------------------------------- backups
    def backup(self, tag: str = "manual") -> Path:
        """A complete, verified copy of the database in PROJECT/backups/, keeping the newest few of each kind."""
        dest = backup_database(self.conn, self.path, tag)
        prune_backups(self.path / BACKUP_DIR_NAME, tag)
        collect_garbage(self.path / BACKUP_DIR_NAME, lambda: list_backups(self.path))
        return dest

    def backup_due(self, min_age_hours: float = SCHEDULED_MIN_AGE_H) -> bool:
        """A scheduled backup is due when the project changed since its newest backup and that one is
        older than ``min_age_hours``. Asked after a session's writes, so the copy holds them."""
        if self.status.readonly or self.status.damaged or self.scans.count() == 0:
            return False  # nothing worth keeping yet, or nothing that can be trusted
        newest = newest_backup(self.path)
        if newest is None:
            return True
        if (datetime.now().timestamp() - newest.stat().st_mtime) / 3600 < min_age_hours:
            return False
        try:
            return commits_of(newest) != self.commits()
        except sqlite3.DatabaseError:
            return True

    def backup_if_due(self, min_age_hours: float = SCHEDULED_MIN_AGE_H) -> Path | None:
        """The scheduled backup, when due (see ``backup_due``). Seconds on a large project: callers run
        it after their writes and off the path of anything a user waits on."""
        return self.backup("scheduled") if self.backup_due(min_age_hours) else None

    # ---------------------------------------------------------------- project-wide facts
    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    @property
    def project_id(self) -> str:
        return self.meta("project_id")

    @property
    def name(self) -> str:
        return self.meta("name")

    @property
    def patient_salt(self) -> str:
        return self.meta("patient_salt")

    def settings(self) -> dict:
        return json.loads(self.meta("settings", "{}"))

    def update_settings(self, **values) -> dict:
        settings = self.settings() | values
        self.set_meta("settings", json.dumps(settings))
        return settings

    @property
    def classes(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM classes ORDER BY idx")]

    @property
    def cache_dir(self) -> Path:
        folder = self.path / CACHE_DIR_NAME
        folder.mkdir(exist_ok=True)
        return folder

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    def health(self) -> dict:
        """Every page checked (``integrity_check``: seconds on a large project) and the facts ``doctor`` shows."""
        c = self.conn
        try:
            verdict = [r[0] for r in c.execute("PRAGMA integrity_check(20)")]
            fk = len(c.execute("PRAGMA foreign_key_check").fetchall())
            labels = c.execute("SELECT COUNT(*) FROM labels").fetchone()[0]
            interrupted = c.execute("SELECT COUNT(*) FROM imports WHERE status = 'interrupted'").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            verdict, fk, labels, interrupted = [str(exc)], None, None, 0
        return {"integrity": verdict, "foreign_key_errors": fk, "labels": labels, "interrupted_imports": interrupted,
                "commits": self.commits()}


def validate_class_names(classes: list[str]) -> list[str]:
    names = [c.strip() for c in classes if c.strip()]
    if len(names) < 2:
        raise ProjectError(f"classes == {names!r}: give at least two classes, e.g. --classes normal,pneumonia")
    if len(set(n.lower() for n in names)) != len(names):
        raise ProjectError(f"classes == {names!r}: each class name must be unique")
    reserved = [n for n in names if n.lower() in SPECIAL_LABELS]
    if reserved:
        raise ProjectError(f"class name {reserved[0]!r} is reserved for a special label; choose another name")
    return names


def _migrate(conn: sqlite3.Connection, path: Path, version: int) -> OpenStatus:
    backup = backup_database(conn, path, f"v{version}-before-migration")
    start = version
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ProjectError(f"{path}: no migration from schema {version}; backup kept at {backup}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        version += 1
    return OpenStatus(migrated_from=start, backup=backup)


def _as_project_error(exc: sqlite3.DatabaseError, path: Path) -> ProjectError | StorageError:
    text = str(exc)
    disk = storage_error(exc, path)  # "database or disk is full": a message naming the disk, not a traceback
    if disk is not None and disk.reason == "full":
        return disk
    if "locked" in text or "busy" in text:
        return ProjectBusyError(f"{path}: another aldesk process is writing to this project; try again when it finishes")
    if "readonly" in text or "read-only" in text:
        return ProjectError(f"{path}: the project is read-only here; copy it to a writable place to change it")
    if "not a database" in text or "malformed" in text or "disk image" in text:
        newest = newest_backup(path)
        offer = (f"restore the newest backup ({newest.name}, {datetime.fromtimestamp(newest.stat().st_mtime):%Y-%m-%d %H:%M}) "
                 f"with `aldesk backup {path} --restore latest`") if newest else "no automatic backup exists yet"
        return ProjectDamagedError(f"{path}: the project database is damaged ({text}); {offer}")
    return ProjectError(f"{path}: {text}")
