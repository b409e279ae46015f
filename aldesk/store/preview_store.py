"""The previews of every backup, kept once: PROJECT/backups/previews.sqlite, content-addressed.

Previews are most of a project database (≈16 KB per scan: 1.6 of 2.1 GB at 100,000 scans) and change
rarely (a series' thumbnail when slices are added), yet cannot simply be left out of a backup: the
source files may be gone (moved disks, hand-outs). So a backup copies every other table and only
*names* its previews (``preview_refs``: scan id + SHA-256 of shape and bytes); the bytes go here, keyed
by (scan id, digest) and added with INSERT OR IGNORE: a second backup adds only previews that are new
or changed. Rows are committed (fsynced) before the backup that names them gets its final name, so a
listed backup always finds its previews here; rows a killed backup added are reused by the next one.

Rows are never changed. Rows no listed backup names any more are removed by ``collect_garbage``, only
while no backup is being written (``writing_lock``). This module never decodes a preview.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

PREVIEW_STORE_NAME = "previews.sqlite"
REFS_TABLE = "preview_refs"          # in a backup file only: the previews it needs, by digest
CHUNK = 512                          # previews per side-store transaction (≈8 MB of 128 x 128)
_LOCK_NAME = ".previews.lock"
_BUSY_MS = 60_000

_DDL = """
CREATE TABLE IF NOT EXISTS previews (
    scan_id  INTEGER NOT NULL,
    digest   BLOB NOT NULL,              -- sha256 of "h,w,c:" + data (see preview_digest)
    height   INTEGER NOT NULL,
    width    INTEGER NOT NULL,
    channels INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (scan_id, digest)
)"""


def preview_digest(height: int, width: int, channels: int, data: bytes) -> bytes:
    """SHA-256 of a preview's shape and bytes (same bytes in another shape is another preview)."""
    h = hashlib.sha256(f"{height},{width},{channels}:".encode())
    h.update(data)
    return h.digest()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=_BUSY_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    # one self-contained file (a user may copy backups/ elsewhere), every commit on disk when it returns
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(_DDL)
    return conn


@contextlib.contextmanager
def writing_lock(folder: Path, *, exclusive: bool = False) -> Iterator[bool]:
    """Held shared by every backup from its first preview written to its rename; exclusive (never
    waited for: yields False when busy) by the garbage collector, so it never removes rows a backup
    being written relies on."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: backups go on; garbage is never collected
        yield not exclusive
        return
    fh = open(folder / _LOCK_NAME, "a")
    try:
        if exclusive:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
        else:
            fcntl.flock(fh, fcntl.LOCK_SH)
        yield True
    finally:
        fh.close()


def store_previews(source: sqlite3.Connection, target: sqlite3.Connection, folder: Path,
                   schema: str = "src") -> tuple[int, int]:
    """Name every preview of ``schema``.previews in ``target``'s ``preview_refs`` and add those the side
    store lacks to it. ``source`` and ``target`` are one connection (the snapshot being backed up is
    ``schema``, the backup is ``main``) inside its transaction. Returns (previews named, previews added)."""
    target.execute(f"CREATE TABLE main.{REFS_TABLE} (scan_id INTEGER PRIMARY KEY, digest BLOB NOT NULL)")
    side = _connect(folder / PREVIEW_STORE_NAME)
    try:
        have = {(r[0], r[1]) for r in side.execute("SELECT scan_id, digest FROM previews")}
        named = added = 0
        refs, new = [], []
        cur = source.execute(f"SELECT scan_id, height, width, channels, data FROM {schema}.previews ORDER BY scan_id")
        while batch := cur.fetchmany(CHUNK):
            for scan_id, h, w, c, data in batch:
                digest = preview_digest(h, w, c, data)
                refs.append((scan_id, digest))
                if (scan_id, digest) not in have:
                    new.append((scan_id, digest, h, w, c, data))
            target.executemany(f"INSERT INTO main.{REFS_TABLE}(scan_id, digest) VALUES (?, ?)", refs)
            named += len(refs)
            refs.clear()
            if len(new) >= CHUNK:
                added += _insert(side, new)
        added += _insert(side, new)
    finally:
        side.close()
    return named, added


def _insert(side: sqlite3.Connection, rows: list) -> int:
    """Commit a chunk of previews (kept even if the backup is killed later: the next one reuses them)."""
    if not rows:
        return 0
    side.execute("BEGIN IMMEDIATE")
    try:
        side.executemany("INSERT OR IGNORE INTO previews(scan_id, digest, height, width, channels, data) "
                         "VALUES (?, ?, ?, ?, ?, ?)", rows)
    except BaseException:
        side.execute("ROLLBACK")
        raise
    side.execute("COMMIT")
    n = len(rows)
    rows.clear()
    return n


def has_refs(conn: sqlite3.Connection, schema: str = "main") -> bool:
    """Whether a database is a backup whose previews live in the side store (made by this module)."""
    return conn.execute(f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?",
                        (REFS_TABLE,)).fetchone() is not None


def missing_previews(backup: Path, folder: Path) -> int:
    """How many previews a backup names that the side store does not hold (0 for a full, old-style backup)."""
    conn = sqlite3.connect(f"{backup.resolve().as_uri()}?mode=ro&immutable=1", uri=True, timeout=_BUSY_MS / 1000)
    try:
        if not has_refs(conn):
            return 0
        side = folder / PREVIEW_STORE_NAME
        total = conn.execute(f"SELECT COUNT(*) FROM {REFS_TABLE}").fetchone()[0]
        if not side.is_file():
            return total
        # read-write: a killed backup's hot journal is rolled back (a read-only reader would fail on it)
        conn.execute("ATTACH DATABASE ? AS side", (f"{side.resolve().as_uri()}?mode=rw",))
        return conn.execute(f"SELECT COUNT(*) FROM {REFS_TABLE} r WHERE NOT EXISTS (SELECT 1 FROM side.previews s "
                            "WHERE s.scan_id = r.scan_id AND s.digest = r.digest)").fetchone()[0]
    finally:
        conn.close()


def put_back(db: Path, folder: Path) -> tuple[int, int]:
    """Fill a restored copy's previews from the side store and drop its ``preview_refs``, in one
    transaction. A preview whose bytes no longer match its digest counts as missing. Returns
    (previews put back, previews missing)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        if not has_refs(conn):
            return 0, 0
        total = conn.execute(f"SELECT COUNT(*) FROM {REFS_TABLE}").fetchone()[0]
        side = folder / PREVIEW_STORE_NAME
        conn.execute("BEGIN IMMEDIATE")
        try:
            put = 0
            if side.is_file():
                conn.create_function("preview_digest", 4, preview_digest, deterministic=True)
                # read-write: a hot journal left by a killed backup is rolled back, not an error (no backup
                # runs now: the restore holds the project's exclusive lock)
                conn.execute("ATTACH DATABASE ? AS side", (f"{side.resolve().as_uri()}?mode=rw",))
                put = conn.execute(
                    f"INSERT INTO main.previews(scan_id, height, width, channels, data) "
                    f"SELECT s.scan_id, s.height, s.width, s.channels, s.data FROM main.{REFS_TABLE} r "
                    "JOIN side.previews s ON s.scan_id = r.scan_id AND s.digest = r.digest "
                    "WHERE preview_digest(s.height, s.width, s.channels, s.data) = s.digest").rowcount
            conn.execute(f"DROP TABLE main.{REFS_TABLE}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()
    return put, total - put


def collect_garbage(folder: Path, listing: Callable[[], list[Path]]) -> int:
    """Remove side-store previews no backup of ``listing()`` names (after pruning). Skipped (0) while a
    backup is being written or when a backup cannot be read. The backups are listed under the lock: one
    renamed just before is counted. Returns rows removed; the file keeps its size, reusing freed pages."""
    side_path = folder / PREVIEW_STORE_NAME
    if not side_path.is_file():
        return 0
    with writing_lock(folder, exclusive=True) as mine:
        if not mine:
            return 0
        side = _connect(side_path)
        try:
            side.execute("CREATE TEMP TABLE keep (scan_id INTEGER NOT NULL, digest BLOB NOT NULL, "
                         "PRIMARY KEY (scan_id, digest)) WITHOUT ROWID")
            for path in listing():
                try:
                    side.execute("ATTACH DATABASE ? AS b", (f"{path.resolve().as_uri()}?mode=ro&immutable=1",))
                    try:
                        if has_refs(side, "b"):
                            side.execute(f"INSERT OR IGNORE INTO temp.keep SELECT scan_id, digest FROM b.{REFS_TABLE}")
                    finally:
                        side.execute("DETACH DATABASE b")
                except sqlite3.DatabaseError:
                    return 0  # unreadable: keep everything rather than guess what it needs
            side.execute("BEGIN IMMEDIATE")
            removed = side.execute("DELETE FROM previews WHERE NOT EXISTS (SELECT 1 FROM temp.keep k "
                                   "WHERE k.scan_id = previews.scan_id AND k.digest = previews.digest)").rowcount
            side.execute("COMMIT")
            return removed
        finally:
            side.close()
