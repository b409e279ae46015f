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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from aldesk.errors import NotAProjectError, ProjectBusyError, ProjectError, ProjectVersionError
from aldesk.store.schema import APPLICATION_ID, CREATE_SCRIPTS, MIGRATIONS, SCHEMA_VERSION

PROJECT_DB_NAME = "project.sqlite"
BACKUP_DIR_NAME = "backups"
CACHE_DIR_NAME = "cache"
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

    def describe(self) -> str:
        if self.created:
            return "new project created"
        if self.migrated_from is not None:
            return f"project upgraded from schema {self.migrated_from} to {SCHEMA_VERSION}; backup at {self.backup}"
        if self.readonly:
            return "project opened read-only (the folder cannot be written)"
        return "project opened"


def _on_readonly_medium(path: Path) -> bool:
    """True when the folder cannot be written: a read-only mount (CD, write-protected share) or no permission."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return True
    except (AttributeError, OSError):  # statvfs is POSIX-only
        pass
    return not os.access(path, os.W_OK) or not os.access(path / PROJECT_DB_NAME, os.W_OK)


def _connect(db: Path, *, readonly: bool = False) -> sqlite3.Connection:
    # immutable: on a read-only medium SQLite could not create the WAL index, and nothing can change there
    mode = "ro&immutable=1" if readonly else "rw"
    uri = f"{db.resolve().as_uri()}?mode={mode}"
    conn = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


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


def backup_database(conn: sqlite3.Connection, project_dir: Path, tag: str) -> Path:
    """Copy the live database (consistent even under WAL) into PROJECT/backups/ and return the copy."""
    folder = project_dir / BACKUP_DIR_NAME
    folder.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    dest = folder / f"project-{tag}-{stamp}.sqlite"
    target = sqlite3.connect(dest)
    try:
        conn.backup(target)
    finally:
        target.close()
    return dest


class Project:
    """An open project. Use ``Project.create`` / ``Project.open``; close it (or use ``with``)."""

    def __init__(self, path: Path, conn: sqlite3.Connection, status: OpenStatus):
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
            }
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta.items())
            conn.executemany("INSERT INTO classes(idx, name) VALUES (?, ?)", list(enumerate(classes)))
            conn.execute("COMMIT")
        finally:
            conn.close()
        os.replace(tmp, db)  # the project appears whole or not at all
        (path / CACHE_DIR_NAME).mkdir(exist_ok=True)
        project = cls.open(path)
        return cls(project.path, project.conn, OpenStatus(created=True))

    @classmethod
    def open(cls, path: str | os.PathLike, *, readonly: bool | None = None) -> "Project":
        path = Path(path)
        db = path / PROJECT_DB_NAME
        if path.is_file():
            raise NotAProjectError(f"{path}: is a file, not an aldesk project folder; give the project's folder")
        if not db.is_file():
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
            raise ProjectError(
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
        try:
            conn = _connect(db, readonly=readonly)
            _configure(conn, readonly)
            # touches the schema pages: a damaged database fails here, before anything is shown
            conn.execute("SELECT COUNT(*) FROM meta").fetchone()
        except sqlite3.DatabaseError as exc:
            raise _as_project_error(exc, path) from exc
        status = OpenStatus(readonly=readonly)
        if version < SCHEMA_VERSION:
            if readonly:
                conn.close()
                raise ProjectError(f"{path}: needs an upgrade (schema {version}) but is read-only; copy it somewhere writable")
            status = _migrate(conn, path, version)
        return cls(path, conn, status)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing writes. IMMEDIATE so a second writer waits (busy_timeout) instead of failing late."""
        if self.status.readonly:
            raise ProjectError(f"{self.path}: opened read-only (the folder cannot be written); "
                               "copy the project to a writable place to change it")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise _as_project_error(exc, self.path) from exc
        try:
            yield self.conn
        except sqlite3.DatabaseError as exc:
            self.conn.execute("ROLLBACK")
            raise _as_project_error(exc, self.path) from exc
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    # ---------------------------------------------------------------- backups
    def backup(self, tag: str = "manual") -> Path:
        """A consistent copy of the database in PROJECT/backups/, keeping the newest few of each kind."""
        dest = backup_database(self.conn, self.path, tag)
        _prune_backups(self.path / BACKUP_DIR_NAME, tag, keep=BACKUPS_KEPT)
        return dest

    def backup_if_due(self, max_age_hours: float = 24.0) -> Path | None:
        """Scheduled backup: one a day at most, and only if the project changed since the last one.

        Not part of ``open``: copying a large project takes seconds, so the GUI runs this in a worker after
        the window shows and the CLI after opening."""
        newest = newest_backup(self.path)
        db = self.path / PROJECT_DB_NAME
        if newest is not None:
            age_h = (datetime.now().timestamp() - newest.stat().st_mtime) / 3600
            if age_h < max_age_hours or db.stat().st_mtime <= newest.stat().st_mtime:
                return None
        if self.status.readonly or self.scans.count() == 0:
            return None  # nothing worth keeping yet
        return self.backup("scheduled")

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


BACKUPS_KEPT = 5


def list_backups(project_dir: str | os.PathLike) -> list[Path]:
    """Backups of a project, newest first."""
    folder = Path(project_dir) / BACKUP_DIR_NAME
    if not folder.is_dir():
        return []
    return sorted(folder.glob("project-*.sqlite"), key=lambda p: p.stat().st_mtime, reverse=True)


def newest_backup(project_dir: str | os.PathLike) -> Path | None:
    backups = list_backups(project_dir)
    return backups[0] if backups else None


def _prune_backups(folder: Path, tag: str, keep: int) -> None:
    mine = sorted(folder.glob(f"project-{tag}-*.sqlite"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in mine[keep:]:
        old.unlink(missing_ok=True)


def restore_backup(project_dir: str | os.PathLike, backup: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Put a backup in place of the project database (the newest when none is named). The current
    database is moved aside, never deleted. Returns (restored from, damaged copy kept at)."""
    project_dir = Path(project_dir)
    source = Path(backup) if backup else newest_backup(project_dir)
    if source is None or not source.is_file():
        raise ProjectError(f"{project_dir}: no backup to restore (looked in {project_dir / BACKUP_DIR_NAME})")
    app_id, version = _read_header(source)
    if app_id != APPLICATION_ID:
        raise NotAProjectError(f"{source}: not an aldesk project backup")
    db = project_dir / PROJECT_DB_NAME
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = project_dir / f"{PROJECT_DB_NAME}.replaced-{stamp}"
    if db.exists():
        os.replace(db, aside)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    tmp = project_dir / (PROJECT_DB_NAME + ".restoring")
    import shutil

    shutil.copyfile(source, tmp)
    os.replace(tmp, db)
    return source, aside


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


def _as_project_error(exc: sqlite3.DatabaseError, path: Path) -> ProjectError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return ProjectBusyError(f"{path}: another aldesk process is writing to this project; try again when it finishes")
    if "readonly" in text or "read-only" in text:
        return ProjectError(f"{path}: the project is read-only here; copy it to a writable place to change it")
    if "not a database" in text or "malformed" in text or "disk image" in text:
        newest = newest_backup(path)
        offer = (f"restore the newest backup ({newest.name}, {datetime.fromtimestamp(newest.stat().st_mtime):%Y-%m-%d %H:%M}) "
                 f"with `aldesk backup {path} --restore latest`") if newest else "no automatic backup exists yet"
        return ProjectError(f"{path}: the project database is damaged ({text}); {offer}")
    return ProjectError(f"{path}: {text}")
