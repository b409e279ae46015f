"""Rows that travel between copies of a project: label export, the label merge, hand-out copies.

The merge is the one place where labels from another workstation enter a project. Its rule, applied
per (scan, reader) to the union of the rows both sides know, makes a merge idempotent and symmetric:

* a label row is identified by its uuid and never changes, except ``replaced_by``;
* a row retired on either side stays retired (history wins over "current"); if the two sides
  retired it in favour of different rows, the newer target (created_at, then id) is kept;
* if more than one row is still current, the newest (created_at, then id) stays current and the
  others are retired in its favour (history kept).

Knows rows, not pixels; the callers (aldesk.app.packages / handout) validate the package first.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from aldesk.errors import ProjectError

if TYPE_CHECKING:
    from aldesk.store.project import Project

#: Review rows that travel in packages (rows never change and carry a uuid ``id``), if the schema has
#: them. suspect_labels is derived from the model and is not carried.
REVIEW_TABLES = ("adjudications", "read_requests")

_LABEL_SQL = (
    "SELECT l.id, s.uid, s.pixel_hash, s.relpath, a.name, a.role, l.value, l.note, l.created_at, "
    "l.duration_ms, l.workstation, l.source, l.replaced_by FROM labels l "
    "JOIN scans s ON s.id = l.scan_id JOIN annotators a ON a.id = l.annotator_id"
)
_LABEL_KEYS = ("id", "scan_uid", "pixel_hash", "relpath", "annotator", "role", "value", "note", "created_at",
               "duration_ms", "workstation", "source", "replaced_by")


def time_key(text: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (naive times count as UTC), for ordering labels."""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=timezone.utc)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


@dataclass
class MergeCounts:
    """What a merge did. ``resolved``: (scan, reader) pairs where both sides had a current label."""

    added: int = 0
    unchanged: int = 0
    history_updated: int = 0
    resolved: int = 0
    annotators_added: list[str] = field(default_factory=list)
    reviews_added: int = 0

    def to_json(self) -> dict:
        return {"added": self.added, "unchanged": self.unchanged, "history_updated": self.history_updated,
                "conflicts_resolved": self.resolved, "annotators_added": self.annotators_added,
                "reviews_added": self.reviews_added}


class MergeConflictError(ProjectError):
    """A package row contradicts the project (same label id, different content)."""


class PackageStore:
    def __init__(self, project: "Project"):
        self._p = project

    @property
    def _c(self):
        return self._p.conn

    # ------------------------------------------------------------------ reading
    def label_rows(self, annotator: str | None = None) -> list[dict]:
        """Every label row (history included) with its scan's uid, pixel hash and relpath, oldest first."""
        sql, params = _LABEL_SQL, ()
        if annotator is not None:
            sql += " WHERE a.name = ?"
            params = (annotator,)
        return [dict(zip(_LABEL_KEYS, r)) for r in self._c.execute(sql + " ORDER BY l.created_at, l.id", params)]

    def scan_index(self) -> tuple[dict[str, int], dict[str, int]]:
        """({uid: scan id}, {pixel hash: lowest scan id}) for matching scans of another copy."""
        by_uid: dict[str, int] = {}
        by_hash: dict[str, int] = {}
        for sid, uid, ph in self._c.execute("SELECT id, uid, pixel_hash FROM scans ORDER BY id"):
            by_uid[uid] = sid
            by_hash.setdefault(ph, sid)
        return by_uid, by_hash

    def scan_refs(self, uids: Iterable[str]) -> dict[str, dict]:
        """{uid: {uid, pixel_hash, path (relpath)}} for the given scan uids that exist."""
        out = {}
        for uid in uids:
            row = self._c.execute("SELECT uid, pixel_hash, relpath FROM scans WHERE uid = ?", (uid,)).fetchone()
            if row:
                out[row[0]] = {"uid": row[0], "pixel_hash": row[1], "path": row[2]}
        return out

    def export_rows(self) -> list[dict]:
        """Per scan what an export needs: id, uid, root, relpath, format, patient key, modality."""
        cur = self._c.execute(
            "SELECT s.id, s.uid, r.path, s.relpath, s.format, s.patient_key, s.modality, s.frames "
            "FROM scans s JOIN roots r ON r.id = s.root_id ORDER BY s.id")
        keys = ("id", "uid", "root", "relpath", "format", "patient_key", "modality", "frames")
        return [dict(zip(keys, r)) for r in cur]

    def has_table(self, name: str) -> bool:
        return self._c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None

    def review_rows(self) -> dict[str, list[dict]]:
        """{table: rows as dicts} for each review table the schema has; scan ids become scan uids
        (key ``scan_uid``) and annotator ids annotator names (key ``<column>_name``)."""
        out: dict[str, list[dict]] = {}
        names = {i: n for i, n in self._c.execute("SELECT id, name FROM annotators")}
        uids = {i: u for i, u in self._c.execute("SELECT id, uid FROM scans")}
        for table in REVIEW_TABLES:
            if not self.has_table(table):
                continue
            cur = self._c.execute(f"SELECT * FROM {table}")
            cols = [d[0] for d in cur.description]
            rows = []
            for r in cur:
                row = dict(zip(cols, r))
                if "scan_id" in row:
                    row["scan_uid"] = uids.get(row.pop("scan_id"))
                for col in [c for c in cols if c.endswith("annotator_id") or c.endswith("reviewer_id")]:
                    row[col[:-3] + "_name"] = names.get(row.pop(col))
                rows.append(row)
            out[table] = rows
        return out

    # ------------------------------------------------------------------ merging
    def merge_labels(self, rows: list[dict], roles: dict[str, str], reviews: dict[str, list[dict]] | None = None,
                     scan_ids_by_uid: dict[str, int] | None = None) -> MergeCounts:
        """Merge label rows from another copy, all or nothing (see the module docstring for the rule).

        rows : dicts with id, scan_id (resolved in this project), annotator (name), value, note,
            created_at, duration_ms, workstation, source, replaced_by (id or None).
        roles : annotator name -> role, for readers this project does not know yet.
        reviews : {table: rows} as written by ``review_rows``; ``scan_ids_by_uid`` maps their scans.
        """
        from aldesk.store.project import utc_now

        counts = MergeCounts()
        with self._p.transaction() as c:
            ann_ids = dict(c.execute("SELECT name, id FROM annotators"))
            for name in sorted(({r["annotator"] for r in rows} | set(roles)) - set(ann_ids)):
                ann_ids[name] = c.execute("INSERT INTO annotators(name, role, created_at) VALUES (?, ?, ?)",
                                          (name, roles.get(name, "annotator"), utc_now())).lastrowid
                counts.annotators_added.append(name)
            existing = self._rows_by_id(c, [r["id"] for r in rows])
            groups: dict[tuple[int, int], list[dict]] = {}
            for r in rows:
                r = dict(r, annotator_id=ann_ids[r["annotator"]])
                old = existing.get(r["id"])
                if old is not None:
                    mine = (old["scan_id"], old["annotator_id"], old["value"], old["note"], old["created_at"])
                    theirs = (r["scan_id"], r["annotator_id"], r["value"], r["note"] or "", r["created_at"])
                    if mine != theirs:
                        raise MergeConflictError(
                            f"label {r['id']} is in both this project and the package with different content "
                            f"(this project: {old['value']!r} at {old['created_at']}; package: {r['value']!r} at "
                            f"{r['created_at']}); the package or the project was altered. Nothing was merged")
                groups.setdefault((r["scan_id"], r["annotator_id"]), []).append(r)
            for (scan_id, annotator_id), incoming in groups.items():
                self._merge_group(c, scan_id, annotator_id, incoming, counts)
            if reviews:
                counts.reviews_added = self._merge_reviews(c, reviews, ann_ids, scan_ids_by_uid or {})
        return counts

    @staticmethod
    def _rows_by_id(c: sqlite3.Connection, ids: list[str]) -> dict[str, dict]:
        out = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ", ".join("?" for _ in chunk)
            for r in c.execute(f"SELECT id, scan_id, annotator_id, value, note, created_at, replaced_by FROM labels "
                               f"WHERE id IN ({marks})", chunk):
                out[r[0]] = dict(zip(("id", "scan_id", "annotator_id", "value", "note", "created_at", "replaced_by"), r))
        return out

    @staticmethod
    def _merge_group(c: sqlite3.Connection, scan_id: int, annotator_id: int, incoming: list[dict],
                     counts: MergeCounts) -> None:
        here = {r[0]: {"created_at": r[1], "replaced_by": r[2]} for r in c.execute(
            "SELECT id, created_at, replaced_by FROM labels WHERE scan_id = ? AND annotator_id = ?",
            (scan_id, annotator_id))}
        union = {i: r["created_at"] for i, r in here.items()} | {r["id"]: r["created_at"] for r in incoming}

        def key(label_id: str) -> tuple:
            return (time_key(union[label_id]), label_id)

        claims = {i: r["replaced_by"] for i, r in here.items()}
        for r in incoming:
            theirs = r["replaced_by"]
            if theirs is not None and theirs not in union:
                raise MergeConflictError(
                    f"label {r['id']} was replaced by label {theirs}, which is neither in the package nor in this "
                    "project; export the package again without --since. Nothing was merged")
            mine = claims.get(r["id"])
            if mine is None or theirs is None or mine == theirs:
                claims[r["id"]] = mine if theirs is None else theirs
            else:
                claims[r["id"]] = max(mine, theirs, key=key)
        live = [i for i, target in claims.items() if target is None]
        if len(live) > 1:
            winner = max(live, key=key)
            for i in live:
                if i != winner:
                    claims[i] = winner
            counts.resolved += 1
        # retire rows already here first (one current row per reader and scan at every statement)
        for i, old in here.items():
            if claims[i] != old["replaced_by"]:
                c.execute("UPDATE labels SET replaced_by = ? WHERE id = ?", (claims[i], i))
                counts.history_updated += 1
        for r in sorted(incoming, key=lambda r: claims[r["id"]] is None):
            if r["id"] in here:
                counts.unchanged += 1
                continue
            c.execute(
                "INSERT INTO labels(id, scan_id, annotator_id, value, note, created_at, duration_ms, workstation, "
                "source, replaced_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (r["id"], scan_id, annotator_id, r["value"], r["note"] or "", r["created_at"], r["duration_ms"],
                 r["workstation"] or "", r["source"] or "", claims[r["id"]]))
            here[r["id"]] = {"created_at": r["created_at"], "replaced_by": claims[r["id"]]}
            counts.added += 1

    def _merge_reviews(self, c: sqlite3.Connection, reviews: dict[str, list[dict]], ann_ids: dict[str, int],
                       scan_ids_by_uid: dict[str, int]) -> int:
        """Reviews keyed by their own ``id``: rows already here are left alone."""
        added = 0
        for table, rows in reviews.items():
            if table not in REVIEW_TABLES or not self.has_table(table):
                raise ProjectError(f"the package holds {table!r} rows but this project has no such table; "
                                   "update aldesk on this computer. Nothing was merged")
            cols = {r[1] for r in c.execute(f"PRAGMA table_info({table})")}
            for row in rows:
                row = dict(row)
                if "scan_uid" in row:
                    row["scan_id"] = scan_ids_by_uid[row.pop("scan_uid")]
                for k in [k for k in row if k.endswith("_name") and k[:-5] + "_id" in cols]:
                    name = row.pop(k)
                    if name not in ann_ids:
                        ann_ids[name] = c.execute("INSERT INTO annotators(name, role, created_at) VALUES (?, ?, ?)",
                                                  (name, "reviewer", row.get("created_at") or "")).lastrowid
                    row[k[:-5] + "_id"] = ann_ids[name]
                unknown = set(row) - cols
                if unknown:
                    raise ProjectError(f"{table}: the package has columns this project does not "
                                       f"({', '.join(sorted(unknown))}); update aldesk. Nothing was merged")
                names = list(row)
                cur = c.execute(f"INSERT OR IGNORE INTO {table}({', '.join(names)}) VALUES "
                                f"({', '.join('?' for _ in names)})", [row[n] for n in names])
                added += cur.rowcount
        return added

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
