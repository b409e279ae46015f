"""Rows of the review: adjudications (final labels), read requests and suspected label errors.

Adjudications and read requests are never changed once written (a newer row supersedes an older
one), so copies of a project merge them by id. Whether a read request is still open is derived
from the labels, not stored. Knows rows, not pixels; the rules of the review live in aldesk.app.review.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aldesk.errors import ProjectError

if TYPE_CHECKING:
    from aldesk.store.project import Project


@dataclass(frozen=True)
class AdjudicationRow:
    id: str
    scan_id: int
    reviewer: str
    value: str
    reason: str
    created_at: str
    workstation: str


@dataclass(frozen=True)
class ReadRequestRow:
    id: str
    scan_id: int
    reviewer: str
    reason: str
    created_at: str
    workstation: str
    status: str  # open | read | adjudicated


@dataclass(frozen=True)
class SuspectRow:
    scan_id: int
    given: str
    suggested: str
    self_confidence: float
    margin: float
    extractor: str
    found_at: str


_ADJ_SQL = ("SELECT d.id, d.scan_id, a.name, d.value, d.reason, d.created_at, d.workstation "
            "FROM adjudications d JOIN annotators a ON a.id = d.reviewer_id")

# Met: a reader with no label on the scan before the request now has a current read (not a skip).
# "Before" includes the same millisecond: a request is made after the reads it answers.
_REQ_READ = (
    "EXISTS (SELECT 1 FROM labels l WHERE l.scan_id = r.scan_id AND l.replaced_by IS NULL AND l.value != 'skip' "
    "AND NOT EXISTS (SELECT 1 FROM labels o WHERE o.scan_id = l.scan_id AND o.annotator_id = l.annotator_id "
    "AND o.created_at <= r.created_at))"
)
_REQ_ADJ = "EXISTS (SELECT 1 FROM adjudications d WHERE d.scan_id = r.scan_id AND d.created_at >= r.created_at)"
_REQ_SQL = (
    "SELECT r.id, r.scan_id, a.name, r.reason, r.created_at, r.workstation, "
    f"CASE WHEN {_REQ_ADJ} THEN 'adjudicated' WHEN {_REQ_READ} THEN 'read' ELSE 'open' END "
    "FROM read_requests r JOIN annotators a ON a.id = r.reviewer_id"
)


class ReviewStore:
    def __init__(self, project: "Project"):
        self._p = project

    @property
    def _c(self):
        return self._p.conn

    # ------------------------------------------------------------------ adjudications
    def add_adjudication(self, scan_id: int, reviewer_id: int, value: str, reason: str, *,
                         workstation: str = "", created_at: str | None = None) -> str:
        """Record a final label; it becomes the scan's decision (an earlier one stays as history)."""
        from aldesk.store.project import utc_now

        new_id = str(uuid.uuid4())
        with self._p.transaction() as c:
            c.execute("INSERT INTO adjudications(id, scan_id, reviewer_id, value, reason, created_at, workstation) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (new_id, scan_id, reviewer_id, value, reason, created_at or utc_now(), workstation))
        return new_id

    def version(self) -> str:
        """Changes whenever an adjudication is added (rows are never changed): a cache key."""
        top, n = self._c.execute("SELECT MAX(rowid), COUNT(*) FROM adjudications").fetchone()
        return f"{top or 0}.{n}"

    def current_adjudications(self) -> dict[int, AdjudicationRow]:
        """scan id -> its decision: the newest adjudication (created_at, then id)."""
        out: dict[int, AdjudicationRow] = {}
        for r in self._c.execute(_ADJ_SQL + " ORDER BY d.scan_id, d.created_at, d.id"):
            out[r[1]] = AdjudicationRow(*r)
        return out

    def adjudications(self, scan_id: int) -> list[AdjudicationRow]:
        """Every decision on a scan, oldest first (the last one stands)."""
        return [AdjudicationRow(*r) for r in self._c.execute(
            _ADJ_SQL + " WHERE d.scan_id = ? ORDER BY d.created_at, d.id", (scan_id,))]

    # ------------------------------------------------------------------ read requests
    def add_read_request(self, scan_id: int, reviewer_id: int, reason: str = "", *, workstation: str = "") -> str:
        """Ask for another read; refused while the scan already waits for one."""
        from aldesk.store.project import utc_now

        new_id = str(uuid.uuid4())
        with self._p.transaction() as c:
            status = [row[6] for row in c.execute(_REQ_SQL + " WHERE r.scan_id = ?", (scan_id,))]
            if "open" in status:
                raise ProjectError(f"scan {scan_id} already waits for another read; it is in the readers' queues")
            c.execute("INSERT INTO read_requests(id, scan_id, reviewer_id, reason, created_at, workstation) "
                      "VALUES (?, ?, ?, ?, ?, ?)", (new_id, scan_id, reviewer_id, reason, utc_now(), workstation))
        return new_id

    def read_requests(self, scan_id: int | None = None, *, status: str | None = None) -> list[ReadRequestRow]:
        """Read requests, oldest first, with their status: open, read (met by a new reader) or adjudicated."""
        sql, params = _REQ_SQL, []
        if scan_id is not None:
            sql += " WHERE r.scan_id = ?"
            params.append(scan_id)
        rows = [ReadRequestRow(*r) for r in self._c.execute(sql + " ORDER BY r.created_at, r.id", params)]
        return [r for r in rows if status is None or r.status == status]

    # ------------------------------------------------------------------ suspected label errors
    def replace_suspects(self, rows: list[dict], *, extractor: str) -> None:
        """Put the latest search's flags in place of the previous ones. Each row: scan_id, given,
        suggested, self_confidence, margin."""
        from aldesk.store.project import utc_now

        now = utc_now()
        with self._p.transaction() as c:
            c.execute("DELETE FROM suspect_labels")
            c.executemany(
                "INSERT INTO suspect_labels(scan_id, given, suggested, self_confidence, margin, extractor, found_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(r["scan_id"], r["given"], r["suggested"], float(r["self_confidence"]), float(r["margin"]),
                  extractor, now) for r in rows])

    def suspects(self) -> list[SuspectRow]:
        """The latest search's flags, largest margin first."""
        return [SuspectRow(*r) for r in self._c.execute(
            "SELECT scan_id, given, suggested, self_confidence, margin, extractor, found_at FROM suspect_labels "
            "ORDER BY margin DESC, scan_id")]
