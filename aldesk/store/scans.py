"""Rows about scans: imported folders (roots), scans, previews, file problems and import runs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aldesk.errors import ProjectError

if TYPE_CHECKING:
    from aldesk.store.project import Project

SCAN_COLUMNS = (
    "uid", "pixel_hash", "root_id", "relpath", "file_size", "file_mtime", "format", "study_uid",
    "series_uid", "patient_key", "modality", "body_part", "view", "rows", "columns", "frames",
    "samples", "bits_allocated", "bits_stored", "signed", "photometric", "spacing_row", "spacing_col",
    "transfer_syntax", "windows", "import_id", "imported_at",
)


@dataclass(frozen=True)
class ScanRow:
    id: int
    uid: str
    root: str
    relpath: str
    modality: str | None
    rows: int
    columns: int
    frames: int
    photometric: str
    patient_key: str | None
    windows: list

    @property
    def path(self) -> Path:
        return Path(self.root) / self.relpath


@dataclass(frozen=True)
class KnownFile:
    """What the project already knows about a file path, to make re-imports incremental."""

    file_size: int
    file_mtime: float
    kind: str  # imported | skipped | failed | duplicate
    code: str
    reason: str


class ScanStore:
    def __init__(self, project: "Project"):
        self._p = project

    @property
    def _c(self):
        return self._p.conn

    # ------------------------------------------------------------------ roots
    def roots(self) -> dict[int, str]:
        return dict(self._c.execute("SELECT id, path FROM roots ORDER BY id"))

    def root_for(self, folder: Path) -> tuple[int, str]:
        """The root containing ``folder`` (an existing one, or a new row), and folder's path inside it."""
        folder = Path(os.path.abspath(folder))
        for rid, rpath in self.roots().items():
            try:
                rel = folder.relative_to(rpath)
            except ValueError:
                continue
            return rid, "" if str(rel) == "." else rel.as_posix()
        with self._p.transaction() as c:
            rid = c.execute("INSERT INTO roots(path) VALUES (?)", (str(folder),)).lastrowid
        return rid, ""

    def set_root_path(self, root_id: int, new_path: str) -> None:
        with self._p.transaction() as c:
            c.execute("UPDATE roots SET path = ? WHERE id = ?", (new_path, root_id))

    # ------------------------------------------------------------------ import bookkeeping
    def start_import(self, paths: list[str], now: str) -> int:
        with self._p.transaction() as c:
            return c.execute(
                "INSERT INTO imports(started_at, status, paths) VALUES (?, 'running', ?)", (now, json.dumps(paths))
            ).lastrowid

    def finish_import(self, import_id: int, status: str, summary: dict, now: str) -> None:
        with self._p.transaction() as c:
            c.execute(
                "UPDATE imports SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
                (now, status, json.dumps(summary), import_id),
            )

    def imports(self) -> list[dict]:
        cur = self._c.execute("SELECT id, started_at, finished_at, status, paths, summary FROM imports ORDER BY id")
        return [
            {"id": r[0], "started_at": r[1], "finished_at": r[2], "status": r[3],
             "paths": json.loads(r[4]), "summary": json.loads(r[5]) if r[5] else None}
            for r in cur
        ]

    def known_files(self, root_id: int, prefix: str = "") -> dict[str, KnownFile]:
        """relpath -> what is known, for every scan and recorded problem under ``prefix`` of a root."""
        like = (prefix.rstrip("/") + "/%") if prefix else "%"
        known: dict[str, KnownFile] = {}
        for rel, size, mtime in self._c.execute(
            "SELECT relpath, file_size, file_mtime FROM scans WHERE root_id = ? AND relpath LIKE ?", (root_id, like)
        ):
            known[rel] = KnownFile(size, mtime, "imported", "", "")
        for rel, size, mtime, kind, code, reason in self._c.execute(
            "SELECT relpath, file_size, file_mtime, kind, code, reason FROM file_problems "
            "WHERE root_id = ? AND relpath LIKE ?", (root_id, like)
        ):
            known[rel] = KnownFile(size, mtime, kind, code, reason)
        return known

    def find_existing(self, uid: str, pixel_hash: str) -> tuple[int, str] | None:
        """An already imported scan with the same UID or the same pixels: (scan id, which matched)."""
        row = self._c.execute("SELECT id FROM scans WHERE uid = ?", (uid,)).fetchone()
        if row:
            return row[0], "uid"
        row = self._c.execute("SELECT id FROM scans WHERE pixel_hash = ? LIMIT 1", (pixel_hash,)).fetchone()
        if row:
            return row[0], "pixels"
        return None

    def insert_scan(self, values: dict, preview: np.ndarray) -> int:
        """Insert one scan and its preview. Call inside ``project.transaction()``."""
        c = self._c
        c.execute("DELETE FROM file_problems WHERE root_id = ? AND relpath = ?", (values["root_id"], values["relpath"]))
        # A file that changed in place replaces its old row only if nothing refers to it yet.
        c.execute(
            "DELETE FROM scans WHERE root_id = ? AND relpath = ? AND NOT EXISTS (SELECT 1 FROM labels WHERE scan_id = scans.id)",
            (values["root_id"], values["relpath"]),
        )
        cols = ", ".join(SCAN_COLUMNS)
        marks = ", ".join("?" for _ in SCAN_COLUMNS)
        scan_id = c.execute(
            f"INSERT INTO scans({cols}) VALUES ({marks})", [values.get(k) for k in SCAN_COLUMNS]
        ).lastrowid
        preview = np.ascontiguousarray(preview, dtype=np.uint8)
        channels = 1 if preview.ndim == 2 else preview.shape[2]
        c.execute(
            "INSERT INTO previews(scan_id, height, width, channels, data) VALUES (?, ?, ?, ?, ?)",
            (scan_id, preview.shape[0], preview.shape[1], channels, preview.tobytes()),
        )
        return scan_id

    def record_problem(self, root_id: int, relpath: str, size: int, mtime: float, kind: str, code: str,
                       reason: str, import_id: int | None, scan_id: int | None = None) -> None:
        """Remember why a file was not imported. Call inside ``project.transaction()``."""
        self._c.execute(
            "INSERT INTO file_problems(root_id, relpath, file_size, file_mtime, kind, code, reason, scan_id, import_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(root_id, relpath) DO UPDATE SET "
            "file_size = excluded.file_size, file_mtime = excluded.file_mtime, kind = excluded.kind, "
            "code = excluded.code, reason = excluded.reason, scan_id = excluded.scan_id, import_id = excluded.import_id",
            (root_id, relpath, size, mtime, kind, code, reason, scan_id, import_id),
        )

    def problems(self, kinds: Iterable[str] = ("skipped", "failed", "duplicate")) -> list[dict]:
        kinds = list(kinds)
        marks = ", ".join("?" for _ in kinds)
        cur = self._c.execute(
            f"SELECT r.path, p.relpath, p.kind, p.code, p.reason FROM file_problems p JOIN roots r ON r.id = p.root_id "
            f"WHERE p.kind IN ({marks}) ORDER BY r.path, p.relpath", kinds,
        )
        return [{"path": str(Path(root) / rel), "kind": k, "code": code, "reason": reason} for root, rel, k, code, reason in cur]

    # ------------------------------------------------------------------ reading scans
    def count(self) -> int:
        return self._c.execute("SELECT COUNT(*) FROM scans").fetchone()[0]

    def ids(self) -> np.ndarray:
        return np.fromiter((r[0] for r in self._c.execute("SELECT id FROM scans ORDER BY id")), dtype=np.int64)

    def uids(self) -> dict[int, str]:
        """scan id -> uid for every scan (one light query)."""
        return dict(self._c.execute("SELECT id, uid FROM scans"))

    def get(self, scan_id: int) -> ScanRow:
        rows = self.rows([scan_id])
        if not rows:
            raise ProjectError(f"scan {scan_id} is not in this project")
        return rows[0]

    def rows(self, scan_ids: Iterable[int] | None = None) -> list[ScanRow]:
        sql = (
            "SELECT s.id, s.uid, r.path, s.relpath, s.modality, s.rows, s.columns, s.frames, s.photometric, "
            "s.patient_key, s.windows FROM scans s JOIN roots r ON r.id = s.root_id"
        )
        if scan_ids is None:
            cur = self._c.execute(sql + " ORDER BY s.id")
            return [self._row(r) for r in cur]
        ids = list(scan_ids)
        out: dict[int, ScanRow] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ", ".join("?" for _ in chunk)
            for r in self._c.execute(sql + f" WHERE s.id IN ({marks})", chunk):
                out[r[0]] = self._row(r)
        return [out[i] for i in ids if i in out]

    @staticmethod
    def _row(r) -> ScanRow:
        return ScanRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], json.loads(r[10]))

    def study_series(self) -> dict[int, tuple[str | None, str | None]]:
        """{scan id: (Study Instance UID, Series Instance UID)}; None where a scan has none (rasters)."""
        return {r[0]: (r[1], r[2]) for r in self._c.execute("SELECT id, study_uid, series_uid FROM scans")}

    def iter_paths(self) -> Iterator[tuple[int, str, str]]:
        """(scan id, root path, relpath) for every scan, streamed."""
        yield from self._c.execute("SELECT s.id, r.path, s.relpath FROM scans s JOIN roots r ON r.id = s.root_id ORDER BY s.id")

    def iter_duplicate_paths(self) -> Iterator[tuple[int, str, str]]:
        """(original scan id, root path, relpath) for every file not imported because it duplicates a scan."""
        yield from self._c.execute(
            "SELECT p.scan_id, r.path, p.relpath FROM file_problems p JOIN roots r ON r.id = p.root_id "
            "WHERE p.kind = 'duplicate' AND p.scan_id IS NOT NULL ORDER BY p.scan_id")

    def relpaths(self, root_id: int, limit: int | None = None) -> list[str]:
        sql = "SELECT relpath FROM scans WHERE root_id = ? ORDER BY id"
        params: tuple = (root_id,)
        if limit:
            sql += " LIMIT ?"
            params = (root_id, limit)
        return [r[0] for r in self._c.execute(sql, params)]

    def patient_keys(self, scan_ids: Iterable[int]) -> dict[int, str | None]:
        return {r.id: r.patient_key for r in self.rows(scan_ids)}

    def preview(self, scan_id: int) -> np.ndarray:
        row = self._c.execute("SELECT height, width, channels, data FROM previews WHERE scan_id = ?", (scan_id,)).fetchone()
        if row is None:
            raise ProjectError(f"scan {scan_id} has no preview; re-import its folder")
        return _preview_array(row)

    def without_preview(self) -> list[tuple[int, str]]:
        """(scan id, pixel hash) of scans that have no preview row (a restore whose side store lacked them)."""
        return self._c.execute("SELECT s.id, s.pixel_hash FROM scans s WHERE NOT EXISTS "
                               "(SELECT 1 FROM previews p WHERE p.scan_id = s.id) ORDER BY s.id").fetchall()

    def put_preview(self, scan_id: int, preview: np.ndarray) -> None:
        """Store (or replace) one scan's preview. Call inside ``project.transaction()``."""
        preview = np.ascontiguousarray(preview, dtype=np.uint8)
        channels = 1 if preview.ndim == 2 else preview.shape[2]
        self._c.execute("INSERT OR REPLACE INTO previews(scan_id, height, width, channels, data) VALUES (?, ?, ?, ?, ?)",
                        (scan_id, preview.shape[0], preview.shape[1], channels, preview.tobytes()))

    def iter_previews(self, scan_ids: Iterable[int] | None = None, chunk: int = 256) -> Iterator[tuple[int, np.ndarray]]:
        """(scan id, preview) streamed in id order, never all in memory at once."""
        if scan_ids is None:
            cur = self._c.execute("SELECT scan_id, height, width, channels, data FROM previews ORDER BY scan_id")
            while batch := cur.fetchmany(chunk):
                for r in batch:
                    yield r[0], _preview_array(r[1:])
            return
        ids = list(scan_ids)
        for i in range(0, len(ids), chunk):
            part = ids[i:i + chunk]
            marks = ", ".join("?" for _ in part)
            got = {r[0]: _preview_array(r[1:]) for r in self._c.execute(
                f"SELECT scan_id, height, width, channels, data FROM previews WHERE scan_id IN ({marks})", part)}
            for sid in part:
                if sid in got:
                    yield sid, got[sid]

    def counts_by(self, column: str) -> dict[str | None, int]:
        if column not in ("modality", "format", "photometric", "body_part"):
            raise ValueError(f"column == {column!r}, must be one of modality, format, photometric, body_part")
        return dict(self._c.execute(f"SELECT {column}, COUNT(*) FROM scans GROUP BY {column} ORDER BY 2 DESC"))


def _preview_array(row) -> np.ndarray:
    h, w, ch, data = row
    arr = np.frombuffer(data, dtype=np.uint8)
    return arr.reshape((h, w) if ch == 1 else (h, w, ch))
