"""The previews and feature vectors of every backup, kept once: PROJECT/backups/previews.sqlite.

They are most of a project database (at 100,000 scans 1.6 GB of previews and 0.47 GB of feature pages
of 2.2 GB) and change rarely (a series' thumbnail when slices are added, vectors when re-extracted),
yet cannot simply be left out of a backup: previews are the only pixels left when the source files are
gone (moved disks, hand-outs), and vectors take minutes to compute again. So a backup copies every
other table and only *names* these rows (``preview_refs`` / ``feature_refs``: the row's key and the
SHA-256 of its values); the values go here, keyed by (key, digest) and added with INSERT OR IGNORE: a
second backup adds only rows that are new or changed. They are committed (fsynced) before the backup
naming them gets its final name, so a listed backup always finds its rows here; rows a killed backup
added are reused by the next one.

Rows are never changed. Rows no listed backup names any more are removed by ``collect_garbage``, only
while no backup is being written (``writing_lock``). This module never decodes a preview.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

PREVIEW_STORE_NAME = "previews.sqlite"
CHUNK = 1024                         # rows per side-store transaction (16 MB of 128 x 128 previews)
_LOCK_NAME = ".previews.lock"
_BUSY_MS = 60_000


@dataclass(frozen=True)
class Kind:
    """A project table whose rows a backup names instead of copying."""

    table: str                   # in the project, and in the side store (plus a digest column)
    refs: str                    # in a backup file only: the rows it needs, by key and digest
    keys: tuple[str, ...]        # INTEGER columns: the project table's primary key
    values: tuple[str, ...]      # the rest; the last is the BLOB

    def digest_sql(self, alias: str) -> str:
        return f"side_digest({', '.join(f'{alias}.{v}' for v in self.values)})"


PREVIEWS = Kind("previews", "preview_refs", ("scan_id",), ("height", "width", "channels", "data"))
FEATURES = Kind("features", "feature_refs", ("set_id", "scan_id"), ("vector",))
KINDS = (PREVIEWS, FEATURES)
SIDE_TABLES = tuple(k.table for k in KINDS)
REFS_TABLE = PREVIEWS.refs


def side_digest(*values) -> bytes:
    """SHA-256 of a row's values: the leading numbers (a preview's shape) then the bytes."""
    h = hashlib.sha256((",".join(str(v) for v in values[:-1]) + ":").encode())
    h.update(values[-1])
    return h.digest()


def preview_digest(height: int, width: int, channels: int, data: bytes) -> bytes:
    """A preview's digest (same bytes in another shape is another preview)."""
    return side_digest(height, width, channels, data)


def _ddl(kind: Kind) -> str:
    cols = [f"{k} INTEGER NOT NULL" for k in kind.keys] + ["digest BLOB NOT NULL"]
    cols += [f"{v} {'BLOB' if v == kind.values[-1] else 'INTEGER'} NOT NULL" for v in kind.values]
    return (f"CREATE TABLE IF NOT EXISTS {kind.table} ({', '.join(cols)}, "
            f"PRIMARY KEY ({', '.join(kind.keys)}, digest))")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=_BUSY_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    # one self-contained file (a user may copy backups/ elsewhere), every commit on disk when it returns
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA synchronous = FULL")
    for kind in KINDS:
        conn.execute(_ddl(kind))
    return conn


@contextlib.contextmanager
def writing_lock(folder: Path, *, exclusive: bool = False) -> Iterator[bool]:
    """Held shared by every backup from its first side-store read to its rename; exclusive (never
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


def store_side_rows(conn: sqlite3.Connection, folder: Path, schema: str = "src") -> dict[str, tuple[int, int]]:
    """Name every row of ``schema``'s previews and features in ``main``'s refs tables and add those the
    side store lacks to it. ``conn`` reads the snapshot being backed up (``schema``) and writes the
    backup (``main``), inside its transaction. Returns {table: (rows named, rows added)}."""
    side = _connect(folder / PREVIEW_STORE_NAME)
    try:
        out = {}
        for kind in KINDS:
            if conn.execute(f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?",
                            (kind.table,)).fetchone():
                out[kind.table] = _store_kind(conn, side, kind, schema)
        return out
    finally:
        side.close()


def _store_kind(conn: sqlite3.Connection, side: sqlite3.Connection, kind: Kind, schema: str) -> tuple[int, int]:
    keys, n_keys = ", ".join(kind.keys), len(kind.keys)
    conn.execute(f"CREATE TABLE main.{kind.refs} ({', '.join(f'{k} INTEGER NOT NULL' for k in kind.keys)}, "
                 f"digest BLOB NOT NULL, PRIMARY KEY ({keys}))")
    # what the side store holds, looked up per batch over the batch's key range (memory stays bounded)
    held = (f"SELECT {keys}, digest FROM {kind.table} WHERE ({keys}) BETWEEN "
            f"({', '.join('?' * n_keys)}) AND ({', '.join('?' * n_keys)})")
    insert_ref = f"INSERT INTO main.{kind.refs} ({keys}, digest) VALUES ({', '.join('?' * (n_keys + 1))})"
    insert_side = (f"INSERT OR IGNORE INTO {kind.table} ({keys}, digest, {', '.join(kind.values)}) "
                   f"VALUES ({', '.join('?' * (n_keys + 1 + len(kind.values)))})")
    named = added = 0
    refs, new = [], []
    cur = conn.execute(f"SELECT {keys}, {', '.join(kind.values)} FROM {schema}.{kind.table} ORDER BY {keys}")
    while batch := cur.fetchmany(CHUNK):
        have = {tuple(r) for r in side.execute(held, batch[0][:n_keys] + batch[-1][:n_keys])}
        for row in batch:
            key, digest = row[:n_keys], side_digest(*row[n_keys:])
            refs.append(key + (digest,))
            if key + (digest,) not in have:
                new.append(key + (digest,) + row[n_keys:])
        conn.executemany(insert_ref, refs)
        named += len(refs)
        refs.clear()
        if len(new) >= CHUNK:
            added += _insert(side, insert_side, new)
    added += _insert(side, insert_side, new)
    return named, added


def _insert(side: sqlite3.Connection, sql: str, rows: list) -> int:
    """Commit a chunk (kept even if the backup is killed later: the next one reuses it)."""
    if not rows:
        return 0
    side.execute("BEGIN IMMEDIATE")
    try:
        side.executemany(sql, rows)
    except BaseException:
        side.execute("ROLLBACK")
        raise
    side.execute("COMMIT")
    n = len(rows)
    rows.clear()
    return n


def _refs_in(conn: sqlite3.Connection, schema: str = "main") -> list[Kind]:
    names = {r[0] for r in conn.execute(f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table'")}
    return [k for k in KINDS if k.refs in names]


def has_refs(conn: sqlite3.Connection, schema: str = "main") -> bool:
    """Whether a database is a backup whose previews live in the side store (made by this module)."""
    return bool(_refs_in(conn, schema))


def _match(kind: Kind, refs: str = "r", side: str = "s") -> str:
    return " AND ".join(f"{side}.{c} = {refs}.{c}" for c in kind.keys + ("digest",))


def missing_rows(backup: Path, folder: Path) -> dict[str, int]:
    """{table: rows a backup names that the side store does not hold}; empty for a full, old-style backup."""
    conn = sqlite3.connect(f"{backup.resolve().as_uri()}?mode=ro&immutable=1", uri=True, timeout=_BUSY_MS / 1000)
    try:
        kinds = _refs_in(conn)
        side = folder / PREVIEW_STORE_NAME
        if kinds and side.is_file():
            # read-write: a killed backup's hot journal is rolled back (a read-only reader would fail on it)
            conn.execute("ATTACH DATABASE ? AS side", (f"{side.resolve().as_uri()}?mode=rw",))
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            return {k.table: conn.execute(f"SELECT COUNT(*) FROM {k.refs} r WHERE NOT EXISTS "
                                          f"(SELECT 1 FROM side.{k.table} s WHERE {_match(k)})").fetchone()[0]
                    for k in kinds}
        return {k.table: conn.execute(f"SELECT COUNT(*) FROM {k.refs}").fetchone()[0] for k in kinds}
    finally:
        conn.close()


def missing_previews(backup: Path, folder: Path) -> int:
    """How many previews a backup names that the side store does not hold (0 for an old-style backup)."""
    return missing_rows(backup, folder).get(PREVIEWS.table, 0)


def put_back(db: Path, folder: Path) -> dict[str, tuple[int, int]]:
    """Fill a restored copy's previews and features from the side store and drop its refs tables, in one
    transaction. A row whose values no longer match its digest counts as missing. ``db`` is a private
    copy (deleted if this fails or is killed): no rollback journal. Returns {table: (put back, missing)}."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        kinds = _refs_in(conn)
        if not kinds:
            return {}
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")  # the caller fsyncs the file before using it
        side = folder / PREVIEW_STORE_NAME
        if side.is_file():
            conn.create_function("side_digest", -1, side_digest, deterministic=True)
            # read-write: a hot journal left by a killed backup is rolled back, not an error (no backup
            # runs now: the restore holds the project's exclusive lock)
            conn.execute("ATTACH DATABASE ? AS side", (f"{side.resolve().as_uri()}?mode=rw",))
        out = {}
        conn.execute("BEGIN")
        for kind in kinds:
            total = conn.execute(f"SELECT COUNT(*) FROM main.{kind.refs}").fetchone()[0]
            put = 0
            if side.is_file():
                cols = ", ".join(kind.keys + kind.values)
                picked = ", ".join([f"r.{k}" for k in kind.keys] + [f"s.{v}" for v in kind.values])
                put = conn.execute(
                    f"INSERT INTO main.{kind.table} ({cols}) SELECT {picked} FROM main.{kind.refs} r "
                    f"JOIN side.{kind.table} s ON {_match(kind)} WHERE {kind.digest_sql('s')} = s.digest").rowcount
            conn.execute(f"DROP TABLE main.{kind.refs}")
            out[kind.table] = (put, total - put)
        conn.execute("COMMIT")
        return out
    finally:
        conn.close()


def collect_garbage(folder: Path, listing: Callable[[], list[Path]]) -> int:
    """Remove side-store rows no backup of ``listing()`` names (after pruning). Skipped (0) while a
    backup is being written or when a backup cannot be read. The backups are listed under the lock: one
    renamed just before is counted. Returns rows removed; the file keeps its size, reusing freed pages.

    Cheap when there is little to collect (0.2 s, not 4 s, at 100,000 scans and 12 backups): the
    candidates are the rows the first backup does not name; only they are looked up in the others."""
    side_path = folder / PREVIEW_STORE_NAME
    if not side_path.is_file():
        return 0
    with writing_lock(folder, exclusive=True) as mine:
        if not mine:
            return 0
        side = _connect(side_path)
        try:
            backups = listing()
            for kind in KINDS:
                cols = ", ".join(f"{k} INTEGER NOT NULL" for k in kind.keys)
                side.execute(f"CREATE TEMP TABLE gone_{kind.table} ({cols}, digest BLOB NOT NULL, "
                             f"PRIMARY KEY ({', '.join(kind.keys)}, digest)) WITHOUT ROWID")
            first = True
            for path in backups:
                try:
                    side.execute("ATTACH DATABASE ? AS b", (f"{path.resolve().as_uri()}?mode=ro&immutable=1",))
                    try:
                        named = _refs_in(side, "b")
                        if not named:
                            continue  # a full, old-style backup names nothing here
                        for kind in named:
                            keys = ", ".join(kind.keys)
                            if first:
                                side.execute(f"INSERT INTO temp.gone_{kind.table} SELECT {keys}, digest FROM "
                                             f"main.{kind.table} s WHERE NOT EXISTS (SELECT 1 FROM b.{kind.refs} r "
                                             f"WHERE {_match(kind)})")
                            else:
                                side.execute(f"DELETE FROM temp.gone_{kind.table} WHERE EXISTS (SELECT 1 FROM "
                                             f"b.{kind.refs} r WHERE {_match(kind, 'r', f'gone_{kind.table}')})")
                        if first:  # a kind this backup names nothing of: every row of it is a candidate
                            for kind in set(KINDS) - set(named):
                                side.execute(f"INSERT INTO temp.gone_{kind.table} SELECT {', '.join(kind.keys)}, "
                                             f"digest FROM main.{kind.table}")
                        first = False
                    finally:
                        side.execute("DETACH DATABASE b")
                except sqlite3.DatabaseError:
                    return 0  # unreadable: keep everything rather than guess what it needs
            if first:  # no backup names anything: every row is garbage
                for kind in KINDS:
                    side.execute(f"INSERT INTO temp.gone_{kind.table} SELECT {', '.join(kind.keys)}, digest "
                                 f"FROM main.{kind.table}")
            side.execute("BEGIN IMMEDIATE")
            removed = 0
            for kind in KINDS:
                removed += side.execute(f"DELETE FROM main.{kind.table} WHERE EXISTS (SELECT 1 FROM "
                                        f"temp.gone_{kind.table} g WHERE {_match(kind, 'g', kind.table)})").rowcount
            side.execute("COMMIT")
            return removed
        finally:
            side.close()
