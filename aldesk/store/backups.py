"""Backups of a project database and restoring one, safe against kills at any moment.

A backup is written from one read snapshot under a hidden temporary name in PROJECT/backups/: every
table but the previews and feature vectors, which it only names and keeps once for all backups in
``backups/previews.sqlite`` (:mod:`aldesk.store.preview_store`; a second backup adds only what changed).
It is checked with ``PRAGMA integrity_check``, flushed to disk and only then renamed to
``project-*.sqlite``: a name of that form is a complete, verified copy whose side-store rows are on
disk, and nothing else is ever listed or restored. A temporary left by a killed backup is removed by
the next one. Backups made before the side store hold everything and restore as they always did.

A restore never loses what is committed: it refuses while any process has the project open (the
lock in :mod:`aldesk.store.openlock`), checkpoints the live WAL into the database it keeps aside, puts
the verified backup, its previews and vectors back in, in place with one atomic rename, and says which
labels (and previews) the restored copy lacks.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from aldesk.errors import NotAProjectError, ProjectBusyError, ProjectError, ProjectVersionError, storage_error
from aldesk.store.openlock import ProjectLock
from aldesk.store.preview_store import (PREVIEW_STORE_NAME, SIDE_TABLES, missing_rows, put_back, store_side_rows,
                                        writing_lock)
from aldesk.store.schema import APPLICATION_ID, SCHEMA_VERSION

BACKUP_DIR_NAME = "backups"
BACKUPS_KEPT = 5          # newest backups kept per kind (manual, scheduled, before a migration)
DAILY_KEPT = 7            # ... plus the newest scheduled backup of each of the last few days
_PARTIAL = ".partial-"    # prefix of a backup being written
_HEADER = b"SQLite format 3\x00"


def fsync_path(path: Path) -> None:
    """Flush a file (or a folder's entries, after a rename) to disk."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        return  # folders cannot be opened on some platforms; the rename is then as durable as it gets
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (names of temporaries end in their writer's pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temporaries(folder: Path) -> list[Path]:
    """Remove backups left half-written by a process that is gone (its pid ends the name)."""
    removed = []
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(_PARTIAL + "*"):
        stem = tmp.name.split(".sqlite")[0]
        try:
            pid = int(stem.rsplit("-", 1)[1])
        except (IndexError, ValueError):
            pid = -1
        if pid == os.getpid() or (pid > 0 and pid_alive(pid)):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def backup_database(conn: sqlite3.Connection, project_dir: Path, tag: str) -> Path:
    """Copy the live database (consistent even while others write) into PROJECT/backups/.

    Every table but the previews and feature vectors is copied; their rows are named in the copy and
    stored once in the side store (:mod:`aldesk.store.preview_store`), committed before the copy gets
    its final name. The
    copy appears under that name only once complete and verified; a damaged database raises
    ProjectError and leaves the existing backups as they were."""
    folder = Path(project_dir) / BACKUP_DIR_NAME
    folder.mkdir(exist_ok=True)
    clean_stale_temporaries(folder)
    stamp = _stamp()
    tmp = folder / f"{_PARTIAL}{tag}-{stamp}-{os.getpid()}.sqlite"
    dest = folder / f"project-{tag}-{stamp}.sqlite"
    source = _main_file(conn)
    try:
        with writing_lock(folder):  # the previews this copy names stay in the side store until it is listed
            verdict = _copy_without_side_rows(source, tmp, folder) if source else _copy_whole(conn, tmp)
            if verdict != ["ok"]:
                from aldesk.errors import ProjectDamagedError

                raise ProjectDamagedError(
                    f"{project_dir}: not backed up: the project database is damaged ({'; '.join(verdict[:3])}). "
                    f"The existing backups were left as they are; run `aldesk doctor {project_dir}`")
            fsync_path(tmp)
            os.replace(tmp, dest)
            fsync_path(folder)
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + "-journal").unlink(missing_ok=True)
    return dest


def _main_file(conn: sqlite3.Connection) -> Path | None:
    """The file behind a connection's main database (None in memory)."""
    name = next((r[2] for r in conn.execute("PRAGMA database_list") if r[1] == "main"), "")
    return Path(name) if name else None


def _copy_whole(conn: sqlite3.Connection, tmp: Path) -> list[str]:
    """Page by page with SQLite's backup API, previews included (a database with no file)."""
    target = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.backup(target)
        target.execute("PRAGMA journal_mode = DELETE")
        return [r[0] for r in target.execute("PRAGMA integrity_check(20)")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        target.close()


def _copy_without_side_rows(source: Path, tmp: Path, folder: Path) -> list[str]:
    """Rebuild the database in ``tmp`` from one read snapshot of ``source``: same schema (tables,
    indexes, rowids, header fields), every row but the previews and feature vectors, which are named
    in ``tmp`` and kept in the side store. Checks the source's pages first (``quick_check`` of every
    other table; those two are read whole anyway) and the copy's after. Returns ``integrity_check``'s
    verdict (["ok"] when fine).

    Cheaper than a page copy then DELETE + VACUUM (measured in tests/benchmarks/bench_backups.py): the
    2 GB of previews and vectors of 100,000 scans are read once (to name them) and written only when
    new, instead of written, read, freed and vacuumed."""
    target = sqlite3.connect(tmp, isolation_level=None)
    try:
        # nothing to roll back: a failed or killed copy is deleted, and fsynced once before its rename
        target.execute("PRAGMA journal_mode = OFF")
        target.execute("PRAGMA synchronous = OFF")
        target.execute("ATTACH DATABASE ? AS src", (f"{source.resolve().as_uri()}?mode=ro",))
        for pragma in ("page_size", "application_id", "user_version"):
            target.execute(f"PRAGMA main.{pragma} = {int(target.execute(f'PRAGMA src.{pragma}').fetchone()[0])}")
        target.execute("BEGIN")  # one read snapshot of src from the first read to the commit
        objects = target.execute("SELECT type, name, sql FROM src.sqlite_master WHERE sql IS NOT NULL "
                                 "AND name NOT LIKE 'sqlite_%' ORDER BY rowid").fetchall()
        tables = [name for kind, name, _ in objects if kind == "table"]
        verdict = []
        for table in tables:
            if table not in SIDE_TABLES:  # those are read whole below, which finds a broken b-tree too
                verdict += [r[0] for r in target.execute(f'PRAGMA src.quick_check("{table}")') if r[0] != "ok"]
        if verdict:
            target.execute("ROLLBACK")
            return verdict
        for kind, _, sql in objects:
            if kind == "table":
                target.execute(sql)
        store_side_rows(target, folder, "src")
        for table in tables:
            if table not in SIDE_TABLES:
                _copy_rows(target, table)
        if target.execute("SELECT 1 FROM src.sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
            target.execute("INSERT INTO main.sqlite_sequence SELECT * FROM src.sqlite_sequence")
        for kind, _, sql in objects:  # indexes after the rows: built once, in order
            if kind != "table":
                target.execute(sql)
        target.execute("COMMIT")
        target.execute("DETACH DATABASE src")
        target.execute("PRAGMA journal_mode = DELETE")  # reading it later (list, restore) creates no -wal/-shm
        return [r[0] for r in target.execute("PRAGMA integrity_check(20)")]
    except sqlite3.DatabaseError as exc:
        full = storage_error(exc, folder.resolve())  # the backups' disk is full or read-only: not a damaged project
        if full is not None:
            raise full from exc
        return [str(exc)]
    finally:
        target.close()


def _copy_rows(conn: sqlite3.Connection, table: str) -> None:
    columns = ", ".join(f'"{r[1]}"' for r in conn.execute(f'PRAGMA src.table_info("{table}")'))
    try:
        conn.execute(f'SELECT rowid FROM src."{table}" LIMIT 0')
        columns = "rowid, " + columns  # rowids kept as they are (a table without an INTEGER PRIMARY KEY)
    except sqlite3.OperationalError:
        pass  # WITHOUT ROWID
    conn.execute(f'INSERT INTO main."{table}" ({columns}) SELECT {columns} FROM src."{table}"')


def is_complete_backup(path: Path) -> bool:
    """Cheap check that a file is a whole aldesk database (header, size), not a torn copy."""
    try:
        if Path(str(path) + "-journal").exists():
            return False  # a rollback in waiting: the file is mid-write
        with open(path, "rb") as fh:
            head = fh.read(100)
        size = path.stat().st_size
    except OSError:
        return False
    if len(head) < 100 or not head.startswith(_HEADER):
        return False
    if int.from_bytes(head[68:72], "big") != APPLICATION_ID:
        return False
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    if head[24:28] == head[92:96] and pages:  # the in-header size is valid
        return size == pages * page_size
    return size > 0 and size % page_size == 0


def list_backups(project_dir: str | os.PathLike) -> list[Path]:
    """Complete backups of a project, newest first (half-written or foreign files are never listed)."""
    folder = Path(project_dir) / BACKUP_DIR_NAME
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("project-*.sqlite") if is_complete_backup(p)]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name), reverse=True)


def newest_backup(project_dir: str | os.PathLike) -> Path | None:
    backups = list_backups(project_dir)
    return backups[0] if backups else None


def prune_backups(folder: Path, tag: str, keep: int = BACKUPS_KEPT) -> None:
    """Keep the newest ``keep`` backups of a kind, and for scheduled ones also the newest of each day."""
    mine = sorted(folder.glob(f"project-{tag}-*.sqlite"), key=lambda p: p.stat().st_mtime, reverse=True)
    kept_days: set[str] = set()
    for i, old in enumerate(mine):
        day = datetime.fromtimestamp(old.stat().st_mtime).strftime("%Y-%m-%d")
        if i < keep:
            kept_days.add(day)
            continue
        if tag == "scheduled" and day not in kept_days and len(kept_days) < keep + DAILY_KEPT:
            kept_days.add(day)
            continue
        old.unlink(missing_ok=True)


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes beside ``path`` (no -wal/-shm), for files nobody changes."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)


def commits_of(path: Path) -> int:
    """The commit counter stored in a database file (0 for one made before counters existed)."""
    conn = _read_only(path)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'commits'").fetchone()
    finally:
        conn.close()
    return int(row[0]) if row else 0


def verify_backup(path: Path) -> None:
    """Raise a ProjectError naming the file unless it is a complete, undamaged aldesk database."""
    if not path.is_file():
        raise ProjectError(f"{path}: no such backup; list them with `aldesk backup PROJECT --list`")
    if not is_complete_backup(path):
        raise NotAProjectError(f"{path}: not a complete aldesk project backup; choose another "
                               "(`aldesk backup PROJECT --list`)")
    try:
        conn = _read_only(path)
        try:
            verdict = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        verdict = [str(exc)]
    if verdict != ["ok"]:
        raise ProjectError(f"{path}: this backup is damaged ({'; '.join(verdict[:3])}); choose another "
                           "(`aldesk backup PROJECT --list`). Nothing was changed")


@dataclass
class LabelGap:
    """Labels in the replaced database that the restored one lacks (None when it could not be read)."""

    count: int | None = 0
    first: str | None = None            # created_at of the oldest missing label
    last: str | None = None             # ... and of the newest
    by_annotator: dict[str, int] = field(default_factory=dict)
    adjudications: int | None = 0
    error: str | None = None

    def to_json(self) -> dict:
        return {"count": self.count, "first": self.first, "last": self.last, "by_annotator": self.by_annotator,
                "adjudications": self.adjudications, "error": self.error}

    def describe(self) -> str:
        if self.count is None:
            return f"which labels the restored copy lacks is unknown: the replaced database cannot be read ({self.error})"
        if not self.count and not self.adjudications:
            return "the restored copy has every label and adjudication of the replaced database"
        who = ", ".join(f"{n} by {a}" for a, n in sorted(self.by_annotator.items()))
        text = (f"the restored copy lacks {self.count} labels of the replaced database"
                + (f", made between {self.first} and {self.last} ({who})" if self.count else ""))
        if self.adjudications:
            text += f", and {self.adjudications} adjudications"
        return text


def label_gap(replaced: Path, restored: Path) -> LabelGap:
    """Compare label ids: those in ``replaced`` but not in ``restored``."""
    wal = Path(str(replaced) + "-wal")
    uri = replaced.resolve().as_uri() + ("?mode=ro" if wal.exists() else "?mode=ro&immutable=1")
    try:
        conn = sqlite3.connect(restored, isolation_level=None)
        try:
            conn.execute("ATTACH DATABASE ? AS old", (uri,))
            rows = conn.execute(
                "SELECT a.name, COUNT(*), MIN(l.created_at), MAX(l.created_at) FROM old.labels l "
                "JOIN old.annotators a ON a.id = l.annotator_id "
                "WHERE l.id NOT IN (SELECT id FROM main.labels) GROUP BY a.name").fetchall()
            adj = conn.execute("SELECT COUNT(*) FROM old.adjudications "
                               "WHERE id NOT IN (SELECT id FROM main.adjudications)").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return LabelGap(count=None, adjudications=None, error=str(exc))
    return LabelGap(count=sum(r[1] for r in rows), first=min((r[2] for r in rows), default=None),
                    last=max((r[3] for r in rows), default=None), by_annotator={r[0]: r[1] for r in rows},
                    adjudications=adj)


@dataclass
class RestoreResult:
    source: Path          # the backup put in place
    aside: Path           # the replaced database, kept (with everything it had committed)
    gap: LabelGap
    checkpointed: bool    # False: the replaced database was damaged; its -wal was kept beside it
    previews_restored: int = 0    # previews put back from the side store (0 for a full, old-style backup)
    previews_missing: int = 0     # ... named by the backup but not found there (rebuilt from the files if they exist)
    previews_rebuilt: int = 0     # ... of which were made again from the scans' files (aldesk.app.backups.restore)
    features_missing: int = 0     # feature vectors not found there: computed again when next needed

    def to_json(self) -> dict:
        return {"restored_from": str(self.source), "kept_aside": str(self.aside), "checkpointed": self.checkpointed,
                "missing_labels": self.gap.to_json(), "previews_restored": self.previews_restored,
                "previews_missing": self.previews_missing, "previews_rebuilt": self.previews_rebuilt,
                "features_missing": self.features_missing}

    def describe_previews(self) -> str | None:
        """A sentence when previews (or vectors) were not all found in the side store (None when all were)."""
        if not self.previews_missing:
            return (f"{self.features_missing} feature vectors were not in {BACKUP_DIR_NAME}/{PREVIEW_STORE_NAME}; they "
                    "are computed again when next needed") if self.features_missing else None
        lost = self.previews_missing - self.previews_rebuilt
        text = f"{self.previews_missing} previews were not in {BACKUP_DIR_NAME}/{PREVIEW_STORE_NAME}"
        text += f"; {self.previews_rebuilt} were made again from the scans' files" if self.previews_rebuilt else ""
        if lost:
            text += (f"; {lost} scans have no preview until their files are found again "
                     "(`aldesk relink PROJECT NEW_FOLDER` then makes them)")
        return text


def _checkpoint(db: Path) -> bool:
    """Fold the WAL into the database file; True when nothing is left only in the WAL."""
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None)
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.close()  # the last connection: SQLite removes the emptied WAL
    except sqlite3.DatabaseError:
        return False
    wal = Path(str(db) + "-wal")
    return busy == 0 and (not wal.exists() or wal.stat().st_size == 0)


def restore_backup(project_dir: str | os.PathLike, backup: str | os.PathLike | None = None,
                   db_name: str = "project.sqlite") -> RestoreResult:
    """Put a backup (the newest when none is named) in place of the project database.

    Refuses while the project is open anywhere. The current database is kept aside with everything it
    committed (its WAL checkpointed into it first, or kept beside it when it is too damaged for that)."""
    project_dir = Path(project_dir)
    if backup is None:
        source = newest_backup(project_dir)
        if source is None:
            raise ProjectError(f"{project_dir}: no complete backup to restore "
                               f"(looked in {project_dir / BACKUP_DIR_NAME}). Nothing was changed")
    else:
        source = Path(backup)
    verify_backup(source)
    with open(source, "rb") as fh:
        version = int.from_bytes(fh.read(100)[60:64], "big")
    if version > SCHEMA_VERSION:
        raise ProjectVersionError(f"{source}: written by a newer aldesk (schema {version}; this program knows up to "
                                  f"{SCHEMA_VERSION}); restore it with that version. Nothing was changed")
    lock = ProjectLock.acquire(project_dir, exclusive=True)
    if lock is None:
        raise ProjectBusyError(
            f"{project_dir}: the project is open in another aldesk process (the app, a command or a "
            "background backup); close it and run the restore again. Nothing was changed")
    try:
        db = project_dir / db_name
        wal, shm = Path(str(db) + "-wal"), Path(str(db) + "-shm")
        aside = project_dir / f"{db_name}.replaced-{_stamp()}"
        tmp = project_dir / (db_name + ".restoring")
        Path(str(tmp) + "-journal").unlink(missing_ok=True)  # a killed restore's, never to be applied to this copy
        shutil.copyfile(source, tmp)
        side = put_back(tmp, source.parent)  # {} for a full backup
        fsync_path(tmp)
        checkpointed = True
        if db.exists():
            checkpointed = _checkpoint(db)
            if checkpointed:
                shm.unlink(missing_ok=True)
                _link_or_copy(db, aside)  # the old file stays whole under its new name until replaced
            else:
                # too damaged to checkpoint: keep the database and its WAL together, as they are
                if wal.exists():
                    os.replace(wal, Path(str(aside) + "-wal"))
                shm.unlink(missing_ok=True)
                _link_or_copy(db, aside)
            fsync_path(project_dir)
        # the counter first: a kill right after it leaves the old database with a higher counter (fine),
        # never the restored one with a lower counter than recorded (a false "commits lost")
        lock.reset_commits(commits_of(tmp))
        os.replace(tmp, db)
        fsync_path(project_dir)
        gap = label_gap(aside, db) if aside.exists() else LabelGap()
    finally:
        lock.release()
        Path(str(project_dir / (db_name + ".restoring"))).unlink(missing_ok=True)
        Path(str(project_dir / (db_name + ".restoring-journal"))).unlink(missing_ok=True)
    previews, features = side.get("previews", (0, 0)), side.get("features", (0, 0))
    return RestoreResult(source, aside, gap, checkpointed, *previews, features_missing=features[1])


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
        fsync_path(dst)


def accept_lost_commits(project_dir: str | os.PathLike, db_name: str = "project.sqlite") -> int:
    """Carry on without lost commits: the recorded counter becomes the database's. Refused while the
    project is open elsewhere or when its pages are damaged (restore instead). Returns commits given up."""
    project_dir = Path(project_dir)
    lock = ProjectLock.acquire(project_dir, exclusive=True)
    if lock is None:
        raise ProjectBusyError(f"{project_dir}: the project is open in another aldesk process; close it and try again")
    try:
        db = project_dir / db_name
        try:
            conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
            try:
                verdict = [r[0] for r in conn.execute("PRAGMA integrity_check(5)")]
                row = conn.execute("SELECT value FROM meta WHERE key = 'commits'").fetchone()
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            verdict, row = [str(exc)], None
        if verdict != ["ok"]:
            raise ProjectError(f"{project_dir}: the database pages are damaged ({'; '.join(verdict[:3])}); accepting "
                               f"the loss cannot fix that: restore a backup with `aldesk backup {project_dir} --restore latest`")
        have = int(row[0]) if row else 0
        given_up = max(0, (lock.recorded_commits() or 0) - have)
        lock.reset_commits(have)
    finally:
        lock.release()
    return given_up


def backup_commits(path: Path) -> int | None:
    """``commits_of`` for a listing: None when the file cannot be read."""
    try:
        return commits_of(path)
    except sqlite3.DatabaseError:
        return None


def backup_side_store_missing(path: Path) -> dict[str, int] | None:
    """``missing_rows`` for a listing: {table: rows the backup names that previews.sqlite lacks}; None
    when either file cannot be read."""
    try:
        return missing_rows(path, path.parent)
    except sqlite3.DatabaseError:
        return None
