"""Rows that travel between copies of a project: label export, the label merge, hand-out copies,
and the keys that say who may send this project labels.

The merge is the one place where labels from another workstation enter a project. Its rule, applied
per (scan, reader) to the union of the rows both sides know, makes a merge idempotent and symmetric:

* a label row is identified by its uuid and never changes, except ``replaced_by``;
* a row retired on either side stays retired (history wins over "current"); if the two sides
  retired it in favour of different rows, the newer target (created_at, then id) is kept;
* if more than one row is still current, the newest (created_at, then id) stays current and the
  others are retired in its favour (history kept).

A package is staged in TEMP tables while it is read (:class:`MergeStaging`), so memory stays flat
whatever its size, and merged in one transaction of set-based SQL plus one streamed pass over the
(scan, reader) groups it touches. Knows rows, not pixels; which rows a package may carry is decided
by the caller (aldesk.app.packages), which rejects the others before they are staged.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from aldesk.errors import ProjectError

if TYPE_CHECKING:
    from aldesk.store.project import Project

#: Review rows that travel in packages (rows never change and carry a uuid ``id``).
#: suspect_labels is derived from the model and is not carried.
REVIEW_TABLES = ("adjudications", "read_requests")

_LABEL_SQL = (
    "SELECT l.id, s.id, s.uid, s.pixel_hash, a.name, a.role, l.value, l.note, l.created_at, "
    "l.duration_ms, l.workstation, l.source, l.replaced_by FROM labels l "
    "JOIN scans s ON s.id = l.scan_id JOIN annotators a ON a.id = l.annotator_id"
)
_LABEL_KEYS = ("id", "scan_id", "scan_uid", "pixel_hash", "annotator", "role", "value", "note", "created_at",
               "duration_ms", "workstation", "source", "replaced_by")
_FLUSH_ROWS = 20_000


def scan_ref(uid: str) -> str:
    """How packages name a scan: a hash of its uid (SOP Instance UID, else "sha:" + pixel hash), so
    no UID or path of the source leaves the project, and two projects holding the same file agree."""
    return hashlib.sha256(b"aldesk-scan-ref-v1\x00" + uid.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def time_key(text: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (naive times count as UTC), for ordering labels."""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=timezone.utc)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def sort_time(text: str) -> str:
    """``time_key`` as fixed-width UTC text, so times with different offsets order as text in SQL."""
    t = time_key(text)
    if t.utcoffset():
        t = t.astimezone(timezone.utc)
    return t.replace(tzinfo=None).isoformat(timespec="microseconds")


@dataclass
class MergeCounts:
    """What a merge really changed. ``added``: label rows inserted (history included);
    ``current_*``: (scan, reader) pairs whose current read appeared, changed value or was retracted;
    ``resolved``: pairs where both sides had a current label; ``annotators_added``: name -> role."""

    added: int = 0
    unchanged: int = 0
    history_updated: int = 0
    resolved: int = 0
    current_added: int = 0
    current_changed: int = 0
    current_retracted: int = 0
    annotators_added: dict[str, str] = field(default_factory=dict)
    adjudications_added: int = 0
    read_requests_added: int = 0

    @property
    def reviews_added(self) -> int:
        return self.adjudications_added + self.read_requests_added

    def changed_anything(self) -> bool:
        return bool(self.added or self.history_updated or self.reviews_added or self.annotators_added)

    def to_json(self) -> dict:
        return {"added": self.added, "unchanged": self.unchanged, "history_updated": self.history_updated,
                "conflicts_resolved": self.resolved, "current_added": self.current_added,
                "current_changed": self.current_changed, "current_retracted": self.current_retracted,
                "annotators_added": sorted(self.annotators_added),
                "annotator_roles_added": dict(sorted(self.annotators_added.items())),
                "adjudications_added": self.adjudications_added, "read_requests_added": self.read_requests_added,
                "reviews_added": self.reviews_added}


class MergeConflictError(ProjectError):
    """A package row contradicts the project (same label id, different content)."""


@dataclass(frozen=True)
class Handout:
    """A hand-out this project issued (see ``PackageStore.issue_handout``)."""

    id: str
    annotator: str
    role: str
    secret: bytes
    issued_at: str
    deidentified: bool


@dataclass(frozen=True)
class PackageKey:
    id: str
    use: str            # 'sign' | 'verify'
    secret: bytes
    project_id: str
    project_name: str
    created_at: str


class PackageStore:
    def __init__(self, project: "Project"):
        self._p = project

    @property
    def _c(self):
        return self._p.conn

    # ------------------------------------------------------------------ reading
    def iter_label_rows(self, annotator: str | None = None) -> Iterator[dict]:
        """Every label row (history included) with its scan's id, uid and pixel hash, oldest first; streamed."""
        sql, params = _LABEL_SQL, ()
        if annotator is not None:
            sql += " WHERE a.name = ?"
            params = (annotator,)
        for r in self._c.execute(sql + " ORDER BY l.created_at, l.id", params):
            yield dict(zip(_LABEL_KEYS, r))

    def label_rows(self, annotator: str | None = None) -> list[dict]:
        return list(self.iter_label_rows(annotator))

    def scan_refs(self, scan_ids: Iterable[int]) -> Iterator[tuple[int, str, str]]:
        """(scan id, package reference, pixel hash) for the given scans that exist, streamed."""
        ids = list(scan_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ", ".join("?" for _ in chunk)
            for sid, uid, ph in self._c.execute(f"SELECT id, uid, pixel_hash FROM scans WHERE id IN ({marks}) "
                                                "ORDER BY id", chunk):
                yield sid, scan_ref(uid), ph

    def export_rows(self) -> list[dict]:
        """Per scan what an export needs: id, uid, root, relpath, format, patient key, modality."""
        cur = self._c.execute(
            "SELECT s.id, s.uid, r.path, s.relpath, s.format, s.patient_key, s.modality, s.frames "
            "FROM scans s JOIN roots r ON r.id = s.root_id ORDER BY s.id")
        keys = ("id", "uid", "root", "relpath", "format", "patient_key", "modality", "frames")
        return [dict(zip(keys, r)) for r in cur]

    def has_table(self, name: str) -> bool:
        return self._c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None

    def iter_review_rows(self) -> Iterator[dict]:
        """Adjudications and read requests with scan id, uid and package reference and reviewer name
        (key ``table`` says which); streamed."""
        for r in self._c.execute(
                "SELECT j.id, j.scan_id, s.uid, a.name, j.value, j.reason, j.created_at, j.workstation FROM adjudications j "
                "JOIN annotators a ON a.id = j.reviewer_id JOIN scans s ON s.id = j.scan_id ORDER BY j.created_at, j.id"):
            row = dict(zip(("id", "scan_id", "scan_uid", "reviewer", "value", "reason", "created_at", "workstation"), r))
            yield row | {"table": "adjudications", "scan_ref": scan_ref(row["scan_uid"])}
        for r in self._c.execute(
                "SELECT q.id, q.scan_id, s.uid, a.name, q.reason, q.created_at, q.workstation FROM read_requests q "
                "JOIN annotators a ON a.id = q.reviewer_id JOIN scans s ON s.id = q.scan_id ORDER BY q.created_at, q.id"):
            row = dict(zip(("id", "scan_id", "scan_uid", "reviewer", "reason", "created_at", "workstation"), r))
            yield row | {"table": "read_requests", "scan_ref": scan_ref(row["scan_uid"])}

    # ------------------------------------------------------------------ keys and hand-outs
    def package_secret(self) -> bytes | None:
        """This project's own signing key (shared by its raw copies and backups, never by hand-outs)."""
        value = self._p.meta("package_secret")
        return bytes.fromhex(value) if value else None

    def keys(self, use: str | None = None) -> list[PackageKey]:
        sql = "SELECT id, use, secret, project_id, project_name, created_at FROM package_keys"
        rows = self._c.execute(sql + (" WHERE use = ?" if use else "") + " ORDER BY created_at, id",
                               (use,) if use else ())
        return [PackageKey(r[0], r[1], bytes.fromhex(r[2]), r[3], r[4], r[5]) for r in rows]

    def key(self, key_id: str) -> PackageKey | None:
        return next((k for k in self.keys() if k.id == key_id), None)

    def add_key(self, key_id: str, use: str, secret: bytes, project_id: str, project_name: str) -> PackageKey:
        """Record a key: 'sign' (made here, given to another project) or 'verify' (another project's)."""
        from aldesk.store.project import utc_now

        if use not in ("sign", "verify"):
            raise ProjectError(f"use == {use!r}, must be 'sign' or 'verify'")
        with self._p.transaction() as c:
            old = c.execute("SELECT use, secret FROM package_keys WHERE id = ?", (key_id,)).fetchone()
            if old is not None:
                if old != (use, secret.hex()):
                    raise ProjectError(f"a different key with id {key_id} is already recorded; nothing was changed")
            else:
                c.execute("INSERT INTO package_keys(id, use, secret, project_id, project_name, created_at) "
                          "VALUES (?, ?, ?, ?, ?, ?)", (key_id, use, secret.hex(), project_id, project_name, utc_now()))
        return self.key(key_id)

    def new_sign_key(self) -> PackageKey:
        return self.add_key(str(uuid.uuid4()), "sign", secrets.token_bytes(32), self._p.project_id, self._p.name)

    def issue_handout(self, annotator: str, role: str, deidentified: bool,
                      scans: Iterable[tuple[str, int]]) -> Handout:
        """Record a hand-out for ``annotator`` (added with ``role`` if new) and the scans it may send
        labels for, as (reference the copy uses, scan id) pairs. Returns it with its fresh secret."""
        from aldesk.store.project import utc_now

        handout_id, secret, now = str(uuid.uuid4()), secrets.token_bytes(32), utc_now()
        ann = self._p.labels.annotator_id(annotator, role=role)
        role = self._p.labels.role(annotator)
        with self._p.transaction() as c:
            c.execute("INSERT INTO handouts(id, annotator_id, role, secret, issued_at, deidentified) "
                      "VALUES (?, ?, ?, ?, ?, ?)", (handout_id, ann, role, secret.hex(), now, int(deidentified)))
            it = iter(scans)
            while chunk := list(itertools.islice(it, 5000)):
                c.executemany("INSERT OR IGNORE INTO handout_scans(handout_id, ref, scan_id) VALUES (?, ?, ?)",
                              ((handout_id, ref, sid) for ref, sid in chunk))
        return Handout(handout_id, annotator.strip(), role, secret, now, deidentified)

    def handout(self, handout_id: str) -> Handout | None:
        row = self._c.execute(
            "SELECT h.id, a.name, h.role, h.secret, h.issued_at, h.deidentified FROM handouts h "
            "JOIN annotators a ON a.id = h.annotator_id WHERE h.id = ?", (handout_id,)).fetchone()
        return Handout(row[0], row[1], row[2], bytes.fromhex(row[3]), row[4], bool(row[5])) if row else None

    def handouts(self) -> list[Handout]:
        return [h for (i,) in self._c.execute("SELECT id FROM handouts ORDER BY issued_at")
                if (h := self.handout(i)) is not None]

    # ------------------------------------------------------------------ merging
    def staging(self) -> "MergeStaging":
        return MergeStaging(self._p)

    # ------------------------------------------------------------------ hand-out copies
    def copy_database(self, dest_folder: str | os.PathLike) -> Path:
        """A consistent copy of the whole database (SQLite backup API, safe while others write) as
        ``dest_folder/project.sqlite``; the folder must not hold a project yet."""
        from aldesk.store.project import PROJECT_DB_NAME

        folder = Path(dest_folder)
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / PROJECT_DB_NAME
        if dest.exists():
            raise ProjectError(f"{folder}: already holds a project; choose a new folder for the hand-out")
        tmp = folder / (PROJECT_DB_NAME + ".copying")
        tmp.unlink(missing_ok=True)
        target = sqlite3.connect(tmp)
        try:
            self._c.backup(target)
        finally:
            target.close()
        os.replace(tmp, dest)
        return dest

    def _referring(self, c: sqlite3.Connection, parent: str) -> list[tuple[str, str, bool]]:
        """(table, column, nullable) of every foreign key pointing at ``parent``."""
        out = []
        for (table,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"):
            notnull = {r[1]: bool(r[3] or r[5]) for r in c.execute(f"PRAGMA table_info({table})")}  # pk: no NULL
            for fk in c.execute(f"PRAGMA foreign_key_list({table})"):
                if fk[2] == parent and table != parent:
                    out.append((table, fk[3], not notnull.get(fk[3], False)))
        return out

    def restrict_copy(self, *, keep_scans: Iterable[int] | None, keep_annotator: str | None,
                      drop_models: bool) -> dict[str, int]:
        """Thin a hand-out copy, in one transaction: only ``keep_scans`` (None: all), only the labels
        of ``keep_annotator`` and no review rows (None: everyone's), and no trained model nor its
        suspected label errors if ``drop_models``. Rows of every table that refers to a removed scan
        go too (found from the schema's foreign keys). Never call this on a lead's project: it deletes
        rows. Returns counts of what was removed."""
        removed = {"scans": 0, "labels": 0, "models": 0}
        with self._p.transaction() as c:
            if keep_scans is not None:
                c.execute("CREATE TEMP TABLE IF NOT EXISTS keep_scans(id INTEGER PRIMARY KEY)")
                c.execute("DELETE FROM keep_scans")
                c.executemany("INSERT OR IGNORE INTO keep_scans(id) VALUES (?)", ((int(s),) for s in keep_scans))
                gone = "(SELECT id FROM scans WHERE id NOT IN (SELECT id FROM temp.keep_scans))"
                for table, column, nullable in self._referring(c, "scans"):
                    if nullable:
                        c.execute(f"UPDATE {table} SET {column} = NULL WHERE {column} IN {gone}")
                    else:
                        n = c.execute(f"DELETE FROM {table} WHERE {column} IN {gone}").rowcount
                        if table == "labels":
                            removed["labels"] += n
                removed["scans"] = c.execute("DELETE FROM scans WHERE id NOT IN (SELECT id FROM temp.keep_scans)").rowcount
                c.execute("DROP TABLE temp.keep_scans")
            if keep_annotator is not None:
                for table in REVIEW_TABLES:
                    if self.has_table(table):
                        c.execute(f"DELETE FROM {table}")
                removed["labels"] += c.execute(
                    "DELETE FROM labels WHERE annotator_id IN (SELECT id FROM annotators WHERE name != ?)",
                    (keep_annotator,)).rowcount
                refs = [f"SELECT {col} FROM {table}" for table, col, _ in self._referring(c, "annotators")]
                c.execute(f"DELETE FROM annotators WHERE name != ? AND id NOT IN ({' UNION '.join(refs)})",
                          (keep_annotator,))
            if drop_models:
                removed["models"] = c.execute("DELETE FROM models").rowcount
                if self.has_table("suspect_labels"):
                    c.execute("DELETE FROM suspect_labels")
        self._c.execute("VACUUM")
        return removed

    def scrub_copy(self) -> None:
        """Make a fresh copy of the database fit to hand out, in one transaction: no key of this project
        (package secret, exchanged keys, other hand-outs and their secrets); no patient-key salt (a fresh
        one, and every patient key re-keyed by HMAC under a random key that is then forgotten, so the
        copy's keys group a patient's scans but cannot be reversed or matched with the master's); no
        source path in the import log or the list of files not imported. Never call this on a lead's
        project. The caller re-points or keeps the scan folders (roots)."""
        import hmac as _hmac

        rekey = secrets.token_bytes(32)

        def fresh_key(old: str | None) -> str | None:
            return None if old is None else _hmac.new(rekey, old.encode(), hashlib.sha256).hexdigest()[:24]

        self._c.create_function("aldesk_rekey", 1, fresh_key, deterministic=True)
        with self._p.transaction() as c:
            for table in ("handout_scans", "handouts", "package_keys", "file_problems"):
                c.execute(f"DELETE FROM {table}")
            c.execute("DELETE FROM meta WHERE key = 'package_secret'")
            c.execute("UPDATE meta SET value = ? WHERE key = 'patient_salt'", (secrets.token_hex(32),))
            c.execute("UPDATE scans SET patient_key = aldesk_rekey(patient_key) WHERE patient_key IS NOT NULL")
            c.execute("UPDATE imports SET paths = '[]', summary = NULL")
        del rekey

    def pseudonymise_scans(self, renames: Iterable[tuple[int, str, str | None, str | None, str | None, int, float]],
                           root: str) -> None:
        """In a hand-out copy whose scan files were copied under new names: one root ``root`` and, per
        scan, (id, new relpath, new uid or None to keep, new study uid, new series uid, file size, mtime)."""
        with self._p.transaction() as c:
            c.execute("INSERT OR IGNORE INTO roots(path) VALUES (?)", (root,))
            rid = c.execute("SELECT id FROM roots WHERE path = ?", (root,)).fetchone()[0]
            it = iter(renames)
            while chunk := list(itertools.islice(it, 5000)):
                c.executemany(
                    "UPDATE scans SET root_id = ?, relpath = ?, uid = COALESCE(?, uid), study_uid = ?, series_uid = ?, "
                    "file_size = ?, file_mtime = ? WHERE id = ?",
                    [(rid, rel, uid, study, series, size, mtime, sid) for sid, rel, uid, study, series, size, mtime in chunk])
            c.execute("DELETE FROM roots WHERE id NOT IN (SELECT root_id FROM scans) "
                      "AND id NOT IN (SELECT root_id FROM slices)")

    def unit_files(self) -> int:
        """How many files belong to series/study units (``slices`` rows); 0 in an image project."""
        return self._c.execute("SELECT COUNT(*) FROM slices").fetchone()[0]

    def scan_identity(self) -> Iterator[tuple[int, str, str | None, str | None]]:
        """(scan id, uid, study uid, series uid) of every scan, streamed."""
        yield from self._c.execute("SELECT id, uid, study_uid, series_uid FROM scans ORDER BY id")


# ---------------------------------------------------------------------------------------- merging
_STAGING_DDL = """
DROP TABLE IF EXISTS temp.pkg_scans;
DROP TABLE IF EXISTS temp.pkg_labels;
DROP TABLE IF EXISTS temp.pkg_reviews;
DROP TABLE IF EXISTS temp.pkg_rejected;
DROP TABLE IF EXISTS temp.pkg_groups;
DROP TABLE IF EXISTS temp.pkg_here;
DROP TABLE IF EXISTS temp.pkg_project_refs;
CREATE TEMP TABLE pkg_scans (ref TEXT PRIMARY KEY, pixel_hash TEXT NOT NULL, line INTEGER NOT NULL, scan_id INTEGER);
CREATE TEMP TABLE pkg_labels (
    id TEXT PRIMARY KEY, line INTEGER NOT NULL, scan TEXT NOT NULL, scan_id INTEGER, annotator TEXT NOT NULL,
    annotator_id INTEGER, value TEXT NOT NULL, note TEXT NOT NULL, created_at TEXT NOT NULL, t TEXT NOT NULL,
    duration_ms INTEGER, workstation TEXT NOT NULL, source TEXT NOT NULL, replaced_by TEXT);
CREATE TEMP TABLE pkg_reviews (
    tbl TEXT NOT NULL, id TEXT NOT NULL, line INTEGER NOT NULL, scan TEXT NOT NULL, scan_id INTEGER,
    reviewer TEXT NOT NULL, reviewer_id INTEGER, value TEXT, reason TEXT NOT NULL, created_at TEXT NOT NULL,
    workstation TEXT NOT NULL, PRIMARY KEY (tbl, id));
CREATE TEMP TABLE pkg_rejected (member TEXT NOT NULL, line INTEGER NOT NULL, id TEXT NOT NULL, reader TEXT NOT NULL,
    scan TEXT NOT NULL, reason TEXT NOT NULL);
"""

LABEL_COLUMNS = ("id", "line", "scan", "annotator", "value", "note", "created_at", "t", "duration_ms",
                 "workstation", "source", "replaced_by")
REVIEW_COLUMNS = ("tbl", "id", "line", "scan", "reviewer", "value", "reason", "created_at", "workstation")
REJECTED_COLUMNS = ("member", "line", "id", "reader", "scan", "reason")


class DuplicateRowError(ProjectError):
    """Two rows of a package share an id: ``first`` and ``second`` are their line numbers."""

    def __init__(self, row_id: str, first: int, second: int):
        super().__init__(f"id {row_id} appears twice (lines {first} and {second})")
        self.row_id, self.first, self.second = row_id, first, second


class MergeStaging:
    """A package being read, in TEMP tables of the project's connection (on disk, not in memory).

    Use as a context manager: ``add_*`` while streaming the package, then ``resolve_scans``,
    ``cascade_rejections`` and ``merge`` (one transaction). The temp tables are dropped on exit.
    """

    def __init__(self, project: "Project"):
        self._p = project
        self._c = project.conn

    def __enter__(self) -> "MergeStaging":
        self._c.executescript(_STAGING_DDL)
        return self

    def __exit__(self, *exc) -> None:
        if self._c.in_transaction:
            return  # the merge's own rollback is under way; temp tables go with the connection
        for table in ("pkg_scans", "pkg_labels", "pkg_reviews", "pkg_rejected", "pkg_groups", "pkg_here",
                      "pkg_project_refs"):
            self._c.execute(f"DROP TABLE IF EXISTS temp.{table}")

    # -------------------------------------------------------------- staging
    def add_scans(self, rows: list[tuple[str, str, int]]) -> None:
        """(reference, pixel hash, line); a reference given twice keeps its first line."""
        self._c.executemany("INSERT OR IGNORE INTO temp.pkg_scans(ref, pixel_hash, line) VALUES (?, ?, ?)", rows)

    def add_labels(self, rows: list[tuple]) -> None:
        """Tuples in LABEL_COLUMNS order. Raises DuplicateRowError for an id given twice."""
        self._add("pkg_labels", LABEL_COLUMNS, rows, key=lambda r: r[0])

    def add_reviews(self, rows: list[tuple]) -> None:
        """Tuples in REVIEW_COLUMNS order."""
        self._add("pkg_reviews", REVIEW_COLUMNS, rows, key=lambda r: (r[0], r[1]))

    def _add(self, table: str, columns: tuple, rows: list[tuple], key) -> None:
        marks = ", ".join("?" for _ in columns)
        before = self._count(table)
        self._c.executemany(f"INSERT OR IGNORE INTO temp.{table}({', '.join(columns)}) VALUES ({marks})", rows)
        if self._count(table) - before == len(rows):
            return
        line_at = columns.index("line")
        where = "id = ?" if table == "pkg_labels" else "tbl = ? AND id = ?"
        for r in rows:
            k = key(r)
            first = self._c.execute(f"SELECT line FROM temp.{table} WHERE {where}", k if isinstance(k, tuple) else (k,)).fetchone()
            if first is not None and first[0] != r[line_at]:
                raise DuplicateRowError(r[columns.index("id")], first[0], r[line_at])

    def _count(self, table: str) -> int:
        return self._c.execute(f"SELECT COUNT(*) FROM temp.{table}").fetchone()[0]

    def reject(self, rows: list[tuple]) -> None:
        """Rows refused by the caller's rules, as tuples in REJECTED_COLUMNS order."""
        self._c.executemany("INSERT INTO temp.pkg_rejected VALUES (?, ?, ?, ?, ?, ?)", rows)

    def rejected_count(self) -> int:
        return self._count("pkg_rejected")

    def rejected(self) -> list[dict]:
        return [dict(zip(REJECTED_COLUMNS, r)) for r in self._c.execute(
            "SELECT * FROM temp.pkg_rejected ORDER BY member, line")]

    def counts(self) -> dict[str, int]:
        return {"labels": self._count("pkg_labels"), "reviews": self._count("pkg_reviews"),
                "scans": self._count("pkg_scans")}

    # -------------------------------------------------------------- checks over the whole package
    def dangling(self) -> tuple[str, int] | None:
        """(member, line) of a label or review naming a scan missing from the package's scan list."""
        for member, table in (("labels.jsonl", "pkg_labels"), ("reviews.jsonl", "pkg_reviews")):
            row = self._c.execute(f"SELECT line FROM temp.{table} WHERE scan NOT IN (SELECT ref FROM temp.pkg_scans) "
                                  "ORDER BY line LIMIT 1").fetchone()
            if row:
                return member, row[0]
        return None

    def label_values(self) -> set[str]:
        return {v for (v,) in self._c.execute("SELECT DISTINCT value FROM temp.pkg_labels")}

    def readers(self) -> set[str]:
        return {n for (n,) in self._c.execute("SELECT annotator FROM temp.pkg_labels UNION SELECT reviewer FROM temp.pkg_reviews")}

    def resolve_scans(self, handout_id: str | None) -> list[str]:
        """Map package scans to this project's: through the hand-out's issued scans when ``handout_id``,
        else by reference (uid hash), then by pixel hash. Returns the references left unmatched."""
        c = self._c
        if handout_id is not None:
            c.execute("UPDATE temp.pkg_scans SET scan_id = (SELECT h.scan_id FROM main.handout_scans h "
                      "WHERE h.handout_id = ? AND h.ref = pkg_scans.ref)", (handout_id,))
        else:
            c.create_function("aldesk_scan_ref", 1, scan_ref, deterministic=True)
            c.execute("CREATE TEMP TABLE pkg_project_refs (ref TEXT PRIMARY KEY, scan_id INTEGER NOT NULL)")
            c.execute("INSERT OR IGNORE INTO temp.pkg_project_refs SELECT aldesk_scan_ref(uid), id FROM main.scans ORDER BY id")
            c.execute("UPDATE temp.pkg_scans SET scan_id = COALESCE("
                      "(SELECT r.scan_id FROM temp.pkg_project_refs r WHERE r.ref = pkg_scans.ref), "
                      "(SELECT MIN(s.id) FROM main.scans s WHERE s.pixel_hash = pkg_scans.pixel_hash))")
        for table in ("pkg_labels", "pkg_reviews"):
            c.execute(f"UPDATE temp.{table} SET scan_id = (SELECT p.scan_id FROM temp.pkg_scans p WHERE p.ref = {table}.scan)")
        return [r for (r,) in c.execute("SELECT ref FROM temp.pkg_scans WHERE scan_id IS NULL ORDER BY line")]

    def reject_unresolved(self, reason: str) -> None:
        """Rows naming a scan that ``resolve_scans`` left unmatched are rejected with ``reason``."""
        c = self._c
        c.execute("INSERT INTO temp.pkg_rejected SELECT 'labels.jsonl', line, id, annotator, scan, ? "
                  "FROM temp.pkg_labels WHERE scan_id IS NULL", (reason,))
        c.execute("INSERT INTO temp.pkg_rejected SELECT 'reviews.jsonl', line, id, reviewer, scan, ? "
                  "FROM temp.pkg_reviews WHERE scan_id IS NULL", (reason,))
        c.execute("DELETE FROM temp.pkg_labels WHERE scan_id IS NULL")
        c.execute("DELETE FROM temp.pkg_reviews WHERE scan_id IS NULL")

    def reject_new_before(self, t: str, reason: str) -> None:
        """Rows dated before ``t`` (a ``sort_time``) that this project does not hold yet are rejected."""
        c = self._c
        c.execute("INSERT INTO temp.pkg_rejected SELECT 'labels.jsonl', p.line, p.id, p.annotator, p.scan, ? "
                  "FROM temp.pkg_labels p WHERE p.t < ? AND NOT EXISTS (SELECT 1 FROM main.labels l WHERE l.id = p.id)",
                  (reason, t))
        c.execute("DELETE FROM temp.pkg_labels WHERE id IN (SELECT id FROM temp.pkg_rejected WHERE member = 'labels.jsonl')")
        c.create_function("aldesk_sort_time", 1, sort_time, deterministic=True)
        c.execute("INSERT INTO temp.pkg_rejected SELECT 'reviews.jsonl', p.line, p.id, p.reviewer, p.scan, ? "
                  "FROM temp.pkg_reviews p WHERE aldesk_sort_time(p.created_at) < ? AND NOT EXISTS "
                  "(SELECT 1 FROM main.adjudications j WHERE j.id = p.id) AND NOT EXISTS "
                  "(SELECT 1 FROM main.read_requests q WHERE q.id = p.id)", (reason, t))
        c.execute("DELETE FROM temp.pkg_reviews WHERE EXISTS (SELECT 1 FROM temp.pkg_rejected r WHERE "
                  "r.member = 'reviews.jsonl' AND r.id = pkg_reviews.id AND r.line = pkg_reviews.line)")

    def cascade_rejections(self) -> None:
        """A row replaced by a rejected row is rejected too (its history would point nowhere)."""
        c = self._c
        while True:
            n = c.execute(
                "INSERT INTO temp.pkg_rejected SELECT 'labels.jsonl', p.line, p.id, p.annotator, p.scan, "
                "'replaced by rejected row ' || p.replaced_by FROM temp.pkg_labels p WHERE p.replaced_by IN "
                "(SELECT id FROM temp.pkg_rejected WHERE member = 'labels.jsonl') AND p.replaced_by != p.id").rowcount
            if n <= 0:
                return
            c.execute("DELETE FROM temp.pkg_labels WHERE id IN (SELECT id FROM temp.pkg_rejected WHERE member = 'labels.jsonl')")

    # -------------------------------------------------------------- the merge
    def merge(self, roles: dict[str, str], default_role: str = "annotator",
              progress=None) -> MergeCounts:
        """Merge what is staged, all or nothing (rule in the module docstring). Readers this project
        does not know yet are added with ``roles.get(name, default_role)``."""
        from aldesk.store.project import utc_now

        counts = MergeCounts()
        with self._p.transaction() as c:
            known = {n for (n,) in c.execute("SELECT name FROM main.annotators")}
            for name in sorted(self.readers() - known):
                role = roles.get(name, default_role)
                c.execute("INSERT INTO main.annotators(name, role, created_at) VALUES (?, ?, ?)", (name, role, utc_now()))
                counts.annotators_added[name] = role
            c.execute("UPDATE temp.pkg_labels SET annotator_id = "
                      "(SELECT a.id FROM main.annotators a WHERE a.name = pkg_labels.annotator)")
            c.execute("UPDATE temp.pkg_reviews SET reviewer_id = "
                      "(SELECT a.id FROM main.annotators a WHERE a.name = pkg_reviews.reviewer)")
            self._check_known_ids(c)
            c.execute("CREATE TEMP TABLE pkg_groups (scan_id INTEGER, annotator_id INTEGER, "
                      "PRIMARY KEY (scan_id, annotator_id)) WITHOUT ROWID")
            c.execute("INSERT OR IGNORE INTO temp.pkg_groups SELECT scan_id, annotator_id FROM temp.pkg_labels")
            # one pass over the label table (CROSS JOIN keeps it the outer loop): never a lookup per group
            c.execute("CREATE TEMP TABLE pkg_here AS SELECT l.id, l.scan_id, l.annotator_id, l.value, l.created_at, "
                      "l.replaced_by FROM main.labels l CROSS JOIN temp.pkg_groups g "
                      "ON g.scan_id = l.scan_id AND g.annotator_id = l.annotator_id")
            self._merge_groups(c, counts, progress)
            self._merge_reviews(c, counts)
        return counts

    @staticmethod
    def _check_known_ids(c: sqlite3.Connection) -> None:
        row = c.execute(
            "SELECT p.id, l.value, l.created_at, p.value, p.created_at, p.line FROM temp.pkg_labels p "
            "JOIN main.labels l ON l.id = p.id WHERE l.scan_id != p.scan_id OR l.annotator_id != p.annotator_id "
            "OR l.value != p.value OR l.note != p.note OR l.created_at != p.created_at LIMIT 1").fetchone()
        if row:
            raise MergeConflictError(
                f"label {row[0]} (labels.jsonl line {row[5]}) is in both this project and the package with different "
                f"content (this project: {row[1]!r} at {row[2]}; package: {row[3]!r} at {row[4]}); the package or the "
                "project was altered. Nothing was merged")
        row = c.execute(
            "SELECT p.tbl, p.id, p.line FROM temp.pkg_reviews p LEFT JOIN main.adjudications j ON p.tbl = 'adjudications' "
            "AND j.id = p.id LEFT JOIN main.read_requests q ON p.tbl = 'read_requests' AND q.id = p.id "
            "WHERE (j.id IS NOT NULL AND (j.scan_id != p.scan_id OR j.reviewer_id != p.reviewer_id OR j.value != p.value "
            "OR j.created_at != p.created_at)) OR (q.id IS NOT NULL AND (q.scan_id != p.scan_id OR "
            "q.reviewer_id != p.reviewer_id OR q.created_at != p.created_at)) LIMIT 1").fetchone()
        if row:
            raise MergeConflictError(f"{row[0]} row {row[1]} (reviews.jsonl line {row[2]}) is in both this project and "
                                     "the package with different content; the package or the project was altered. "
                                     "Nothing was merged")

    def _merge_groups(self, c: sqlite3.Connection, counts: MergeCounts, progress) -> None:
        total = c.execute("SELECT COUNT(*) FROM temp.pkg_groups").fetchone()[0]
        cur = c.execute(
            "SELECT scan_id, annotator_id, 0, id, t, replaced_by, value, note, created_at, duration_ms, workstation, "
            "source FROM temp.pkg_labels UNION ALL "
            "SELECT scan_id, annotator_id, 1, id, created_at, replaced_by, value, NULL, NULL, NULL, NULL, NULL "
            "FROM temp.pkg_here ORDER BY 1, 2")
        updates: list[tuple] = []
        inserts: list[tuple] = []
        done = 0
        try:
            for (scan_id, annotator_id), rows in itertools.groupby(cur, key=lambda r: (r[0], r[1])):
                _merge_group(scan_id, annotator_id, list(rows), counts, updates, inserts)
                done += 1
                if len(updates) + len(inserts) >= _FLUSH_ROWS:
                    _flush(c, updates, inserts)
                    if progress is not None:
                        progress(done, total, "merging")
        finally:
            cur.close()  # an open cursor would keep the temp tables locked
        _flush(c, updates, inserts)
        if progress is not None:
            progress(total, total, "merging")

    @staticmethod
    def _merge_reviews(c: sqlite3.Connection, counts: MergeCounts) -> None:
        counts.adjudications_added = c.execute(
            "INSERT OR IGNORE INTO main.adjudications(id, scan_id, reviewer_id, value, reason, created_at, workstation) "
            "SELECT id, scan_id, reviewer_id, value, reason, created_at, workstation FROM temp.pkg_reviews "
            "WHERE tbl = 'adjudications' ORDER BY line").rowcount
        counts.read_requests_added = c.execute(
            "INSERT OR IGNORE INTO main.read_requests(id, scan_id, reviewer_id, reason, created_at, workstation) "
            "SELECT id, scan_id, reviewer_id, reason, created_at, workstation FROM temp.pkg_reviews "
            "WHERE tbl = 'read_requests' ORDER BY line").rowcount


def _merge_group(scan_id: int, annotator_id: int, rows: list[tuple], counts: MergeCounts,
                 updates: list[tuple], inserts: list[tuple]) -> None:
    """One (scan, reader): rows are (scan, reader, side 0 package / 1 here, id, time, replaced_by, value, ...);
    the package's time is already ``sort_time``, the project's is its created_at."""
    if len(rows) == 1 and rows[0][2] == 0 and rows[0][5] in (None, rows[0][3]):   # a new first read: most rows
        r = rows[0]
        inserts.append((r[3], scan_id, annotator_id, r[6], r[7], r[8], r[9], r[10], r[11], r[5]))
        counts.added += 1
        counts.current_added += r[5] is None
        return
    if len(rows) == 2 and rows[0][3] == rows[1][3] and rows[0][5] == rows[1][5]:   # merged before
        counts.unchanged += 1
        return
    here = {r[3]: r for r in rows if r[2] == 1}
    incoming = [r for r in rows if r[2] == 0]
    times = {i: r[4] for i, r in here.items()} | {r[3]: r[4] for r in incoming}
    converted: set[str] = set()

    def key(label_id: str) -> tuple:
        if label_id in here and label_id not in converted:
            times[label_id] = sort_time(times[label_id])
            converted.add(label_id)
        return (times[label_id], label_id)

    claims = {i: r[5] for i, r in here.items()}
    for r in incoming:
        theirs = r[5]
        if theirs is not None and theirs not in times:
            raise MergeConflictError(
                f"label {r[3]} was replaced by label {theirs}, which is neither in the package nor in this "
                "project; export the package again without --since. Nothing was merged")
        mine = claims.get(r[3])
        if mine is None or theirs is None or mine == theirs:
            claims[r[3]] = mine if theirs is None else theirs
        else:
            claims[r[3]] = max(mine, theirs, key=key)
    live = [i for i, target in claims.items() if target is None]
    if len(live) > 1:
        winner = max(live, key=key)
        for i in live:
            if i != winner:
                claims[i] = winner
        counts.resolved += 1
    before = next((r[6] for r in here.values() if r[5] is None), None)
    value_of = {r[3]: r[6] for r in rows}
    after = next((value_of[i] for i, target in claims.items() if target is None), None)
    if before is None and after is not None:
        counts.current_added += 1
    elif before is not None and after is None:
        counts.current_retracted += 1
    elif before != after:
        counts.current_changed += 1
    for i, old in here.items():
        if claims[i] != old[5]:
            updates.append((claims[i], i))
            counts.history_updated += 1
    for r in incoming:
        if r[3] in here:
            counts.unchanged += 1
            continue
        inserts.append((r[3], scan_id, annotator_id, r[6], r[7], r[8], r[9], r[10], r[11], claims[r[3]]))
        counts.added += 1


def _flush(c: sqlite3.Connection, updates: list[tuple], inserts: list[tuple]) -> None:
    """Retire first, then insert: one current row per reader and scan at every statement."""
    if updates:
        c.executemany("UPDATE main.labels SET replaced_by = ? WHERE id = ?", updates)
    if inserts:
        c.executemany("INSERT INTO main.labels(id, scan_id, annotator_id, value, note, created_at, duration_ms, "
                      "workstation, source, replaced_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", inserts)
    updates.clear()
    inserts.clear()
