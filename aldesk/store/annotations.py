"""Rows about readers and their labels. A label once given is never deleted: a change adds a row."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from aldesk.errors import ProjectBusyError, ProjectError, storage_error

if TYPE_CHECKING:
    from aldesk.store.project import Project

ROLES = ("annotator", "reviewer", "lead")


@dataclass(frozen=True)
class LabelRow:
    id: str
    scan_id: int
    annotator: str
    value: str
    note: str
    created_at: str


class LabelStore:
    def __init__(self, project: "Project"):
        self._p = project

    @property
    def _c(self):
        return self._p.conn

    def annotator_id(self, name: str, *, role: str = "annotator", create: bool = True) -> int:
        name = name.strip()
        if not name:
            raise ProjectError("annotator name is empty; give a name, e.g. --annotator dr_lee")
        if role not in ROLES:
            raise ProjectError(f"role == {role!r}, must be one of {', '.join(ROLES)}")
        row = self._c.execute("SELECT id FROM annotators WHERE name = ?", (name,)).fetchone()
        if row:
            return row[0]
        if not create:
            raise ProjectError(f"no annotator named {name!r} in this project")
        from aldesk.store.project import utc_now

        with self._p.transaction() as c:
            return c.execute(
                "INSERT INTO annotators(name, role, created_at) VALUES (?, ?, ?)", (name, role, utc_now())
            ).lastrowid

    def annotators(self) -> list[tuple[str, str]]:
        return list(self._c.execute("SELECT name, role FROM annotators ORDER BY name"))

    def add_many(self, rows: list[dict], *, source: str, chunk: int | None = None) -> dict[str, int]:
        """Record labels. Each row: scan_id, annotator_id, value[, note, duration_ms, workstation, id,
        created_at]. A reader's unchanged label is left alone (re-importing a CSV adds nothing); a changed
        one replaces the current row, which is kept as history. Every value is checked before anything is
        written; the rows go in one transaction, or, with ``chunk``, in transactions of that many rows so
        a long label file never keeps a reader waiting (stopped part way, running it again completes it).
        Labels waiting in the journal (see aldesk.store.journal) are written first.
        Returns counts {"added", "changed", "unchanged"}."""
        allowed = self._allowed()
        for row in rows:
            if row["value"] not in allowed:
                raise ProjectError(f"label {row['value']!r} is not a class of this project ({', '.join(sorted(allowed))})")
        counts = {"added": 0, "changed": 0, "unchanged": 0}
        step = max(1, int(chunk)) if chunk else max(1, len(rows))
        for start in range(0, max(len(rows), 1), step):
            with self._write_transaction() as c:
                for key, n in self._write(c, rows[start:start + step], source).items():
                    counts[key] += n
        return counts

    def record(self, scan_id: int, annotator: str, value: str, *, note: str = "", duration_ms: int | None = None,
               workstation: str = "", source: str = "gui", wait_ms: int = 80) -> tuple[str, bool]:
        """Record one reader's label for the reading screen, never refusing it: committed at once
        (durable) when the write lock is free within ``wait_ms``, else appended to the journal (durable,
        written by the next write that gets the lock). Returns (the reader's label id for the scan,
        pending: True when it waits in the journal)."""
        from aldesk.store.project import utc_now

        if value not in self._allowed():
            raise ProjectError(f"label {value!r} is not a class of this project ({', '.join(sorted(self._allowed()))})")
        if self._c.execute("SELECT 1 FROM scans WHERE id = ?", (scan_id,)).fetchone() is None:
            raise ProjectError(f"scan {scan_id} is not in this project")
        name = annotator.strip()
        if not name:
            raise ProjectError("annotator name is empty; give a name, e.g. --annotator dr_lee")
        entry = {"id": str(uuid.uuid4()), "scan_id": int(scan_id), "annotator": name, "value": value, "note": note,
                 "duration_ms": duration_ms, "workstation": workstation, "created_at": utc_now(), "source": source}
        try:
            with self._waiting_at_most(wait_ms), self._write_transaction() as c:
                row = self._journal_row(c, entry)
                self._write(c, [row], source)
                cur = c.execute("SELECT id FROM labels WHERE scan_id = ? AND annotator_id = ? AND replaced_by IS NULL",
                                (scan_id, row["annotator_id"])).fetchone()
            return cur[0], False
        except ProjectBusyError:
            try:
                self.journal.append(entry)
            except OSError as exc:  # full disk: say so (the label is not saved), never a traceback
                raise (storage_error(exc, self.journal.path) or exc) from exc
            return entry["id"], True

    @property
    def journal(self):
        from aldesk.store.journal import LabelJournal

        return LabelJournal(self._p.path)

    def pending(self) -> list[dict]:
        """Labels waiting in the journal, oldest first (scan_id, annotator, value, id, created_at, ...)."""
        return self.journal.entries()

    def flush_pending(self, *, wait_ms: int = 80) -> int:
        """Write the journal's labels if the lock can be had within ``wait_ms``. Returns how many were
        waiting (0 when nothing was, or the lock is still taken: see ``pending``)."""
        n = len(self.journal.entries())
        if not n:
            return 0
        try:
            with self._waiting_at_most(wait_ms), self._write_transaction():
                pass
        except ProjectBusyError:
            return 0
        return n

    @contextmanager
    def _waiting_at_most(self, wait_ms: int):
        from aldesk.store.project import BUSY_TIMEOUT_MS

        self._c.execute(f"PRAGMA busy_timeout = {max(0, int(wait_ms))}")
        try:
            yield
        finally:
            self._c.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def _allowed(self) -> set[str]:
        from aldesk.store.project import SPECIAL_LABELS

        return set(self._p.classes) | set(SPECIAL_LABELS)

    def _journal_row(self, c, entry: dict) -> dict:
        c.execute("INSERT OR IGNORE INTO annotators(name, role, created_at) VALUES (?, 'annotator', ?)",
                  (entry["annotator"], entry["created_at"]))
        annotator_id = c.execute("SELECT id FROM annotators WHERE name = ?", (entry["annotator"],)).fetchone()[0]
        return {**entry, "annotator_id": annotator_id}

    @contextmanager
    def _write_transaction(self):
        """A write transaction that first writes the journal's labels (skipping any already written, by id)
        and empties the journal only after it committed: a crash in between repeats nothing."""
        journal = self.journal
        if not journal.has_entries():
            with self._p.transaction() as c:
                yield c
            return
        with journal.draining() as entries, self._p.transaction() as c:
            for entry in entries:
                written = c.execute("SELECT 1 FROM labels WHERE id = ?", (entry["id"],)).fetchone()
                scan = c.execute("SELECT 1 FROM scans WHERE id = ?", (entry["scan_id"],)).fetchone()
                if written is None and scan is not None and entry.get("value") in self._allowed():
                    self._write(c, [self._journal_row(c, entry)], entry.get("source") or "gui")
            yield c

    def _write(self, c, rows: list[dict], source: str) -> dict[str, int]:
        from aldesk.store.project import utc_now

        counts = {"added": 0, "changed": 0, "unchanged": 0}
        for row in rows:
            value = row["value"]
            cur = c.execute(
                "SELECT id, value, note FROM labels WHERE scan_id = ? AND annotator_id = ? AND replaced_by IS NULL",
                (row["scan_id"], row["annotator_id"]),
            ).fetchone()
            note = row.get("note") or ""
            if cur and cur[1] == value and cur[2] == note:
                counts["unchanged"] += 1
                continue
            new_id = row.get("id") or str(uuid.uuid4())
            if cur:  # retire the current row first: one current label per reader and scan
                c.execute("UPDATE labels SET replaced_by = ? WHERE id = ?", (new_id, cur[0]))
            c.execute(
                "INSERT INTO labels(id, scan_id, annotator_id, value, note, created_at, duration_ms, workstation, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (new_id, row["scan_id"], row["annotator_id"], value, note, row.get("created_at") or utc_now(),
                 row.get("duration_ms"), row.get("workstation") or "", source),
            )
            counts["changed" if cur else "added"] += 1
        return counts

    def current(self, annotator: str | None = None) -> list[LabelRow]:
        """Every reader's current label (history excluded), optionally for one reader."""
        sql = (
            "SELECT l.id, l.scan_id, a.name, l.value, l.note, l.created_at FROM labels l "
            "JOIN annotators a ON a.id = l.annotator_id WHERE l.replaced_by IS NULL"
        )
        params: tuple = ()
        if annotator is not None:
            sql += " AND a.name = ?"
            params = (annotator,)
        return [LabelRow(*r) for r in self._c.execute(sql + " ORDER BY l.scan_id, a.name", params)]

    def read_scan_ids(self) -> np.ndarray:
        """(n,) int64 sorted ids of the scans with any current label (class, unsure or skip)."""
        rows = self._c.execute("SELECT DISTINCT scan_id FROM labels WHERE replaced_by IS NULL ORDER BY scan_id")
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def current_matrix(self, classes: list[str]) -> np.ndarray:
        """(n, 3) int64 rows (scan id, reader id, index of the value in ``classes`` or -1 for 'unsure',
        'skip' or a name not in the list) of every current label: the light form of ``current`` for
        building a ratings matrix."""
        index = {c: i for i, c in enumerate(classes)}
        rows = self._c.execute("SELECT scan_id, annotator_id, value FROM labels WHERE replaced_by IS NULL").fetchall()
        out = np.fromiter((x for s, a, v in rows for x in (s, a, index.get(v, -1))), dtype=np.int64,
                          count=3 * len(rows))
        return out.reshape(len(rows), 3)

    def reader_names(self) -> list[tuple[int, str]]:
        """(reader id, name) of every reader."""
        return self._c.execute("SELECT id, name FROM annotators").fetchall()

    def history(self, scan_id: int) -> list[LabelRow]:
        return [LabelRow(*r) for r in self._c.execute(
            "SELECT l.id, l.scan_id, a.name, l.value, l.note, l.created_at FROM labels l "
            "JOIN annotators a ON a.id = l.annotator_id WHERE l.scan_id = ? ORDER BY l.created_at, l.rowid", (scan_id,))]

    def version(self) -> str:
        """Changes whenever any current label changes (a new row, or an undone first read): a cache key for
        what is computed from the labels (consensus, the training set). Cheap: the rowid maximum and an
        index-only count."""
        top, current = self._c.execute(
            "SELECT (SELECT MAX(rowid) FROM labels), (SELECT COUNT(*) FROM labels WHERE replaced_by IS NULL)"
        ).fetchone()
        return f"{top or 0}.{current}"

    def count(self) -> int:
        return self._c.execute("SELECT COUNT(*) FROM labels WHERE replaced_by IS NULL").fetchone()[0]

    def get(self, label_id: str) -> LabelRow | None:
        row = self._c.execute(
            "SELECT l.id, l.scan_id, a.name, l.value, l.note, l.created_at FROM labels l "
            "JOIN annotators a ON a.id = l.annotator_id WHERE l.id = ?", (label_id,)).fetchone()
        return LabelRow(*row) if row else None

    def undo(self, label_id: str) -> str | None:
        """Take back a reader's latest label, like Ctrl+Z: the value it replaced comes back as a new row
        (history kept), or, for a first read, the label is retracted (it points at itself). Undoing a
        restored value steps further back, never forward. Returns the restored label's id, or None
        when the scan is unread again."""
        from aldesk.store.project import utc_now

        with self._p.transaction() as c:
            row = c.execute("SELECT scan_id, annotator_id, replaced_by, source FROM labels WHERE id = ?",
                            (label_id,)).fetchone()
            if row is None:
                raise ProjectError(f"label {label_id} is not in this project")
            if row[2] is not None:
                raise ProjectError("this label was already changed or undone; reopen the scan to change it")
            # a row made by undo stands for the row it restored ("undo:<id>")
            effective = row[3][5:] if row[3].startswith("undo:") else label_id
            prev = c.execute(
                "SELECT id, value, note, duration_ms, workstation, source FROM labels WHERE replaced_by = ? AND id != ?",
                (effective, effective)).fetchone()
            if prev is None:
                c.execute("UPDATE labels SET replaced_by = id WHERE id = ?", (label_id,))
                return None
            prev_effective = prev[5][5:] if prev[5].startswith("undo:") else prev[0]
            new_id = str(uuid.uuid4())
            c.execute("UPDATE labels SET replaced_by = ? WHERE id = ?", (new_id, label_id))
            c.execute(
                "INSERT INTO labels(id, scan_id, annotator_id, value, note, created_at, duration_ms, workstation, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (new_id, row[0], row[1], prev[1], prev[2], utc_now(), prev[3], prev[4], f"undo:{prev_effective}"))
            return new_id

    def current_for_scan(self, scan_id: int) -> list[LabelRow]:
        return [LabelRow(*r) for r in self._c.execute(
            "SELECT l.id, l.scan_id, a.name, l.value, l.note, l.created_at FROM labels l "
            "JOIN annotators a ON a.id = l.annotator_id WHERE l.scan_id = ? AND l.replaced_by IS NULL "
            "ORDER BY a.name", (scan_id,))]

    # ---------------------------------------------------------------- readers' reads in full, roles
    def reads(self, scan_id: int | None = None, annotator: str | None = None) -> list["ReadRow"]:
        """Current reads with everything recorded about them (note, time spent, workstation, role)."""
        sql = (
            "SELECT l.id, l.scan_id, a.name, a.role, l.value, l.note, l.created_at, l.duration_ms, l.workstation, "
            "l.source FROM labels l JOIN annotators a ON a.id = l.annotator_id WHERE l.replaced_by IS NULL"
        )
        params: list = []
        if scan_id is not None:
            sql += " AND l.scan_id = ?"
            params.append(scan_id)
        if annotator is not None:
            sql += " AND a.name = ?"
            params.append(annotator)
        return [ReadRow(*r) for r in self._c.execute(sql + " ORDER BY l.scan_id, a.name", params)]

    def role(self, name: str) -> str | None:
        row = self._c.execute("SELECT role FROM annotators WHERE name = ?", (name.strip(),)).fetchone()
        return row[0] if row else None

    def set_role(self, name: str, role: str) -> None:
        """Give a reader a role (annotator, reviewer, lead), adding the reader if new."""
        if role not in ROLES:
            raise ProjectError(f"role == {role!r}, must be one of {', '.join(ROLES)}")
        self.annotator_id(name, role=role)
        with self._p.transaction() as c:
            c.execute("UPDATE annotators SET role = ? WHERE name = ?", (role, name.strip()))

    def read_counts(self) -> dict[str, int]:
        """annotator name -> number of current reads (every annotator, 0 for none)."""
        return dict(self._c.execute(
            "SELECT a.name, COUNT(l.id) FROM annotators a LEFT JOIN labels l ON l.annotator_id = a.id "
            "AND l.replaced_by IS NULL GROUP BY a.id ORDER BY a.name"))


@dataclass(frozen=True)
class ReadRow:
    id: str
    scan_id: int
    annotator: str
    role: str
    value: str
    note: str
    created_at: str
    duration_ms: int | None
    workstation: str
    source: str
