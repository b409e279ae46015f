"""Rows about labelling units: the project's unit kind, series and their slices (files).

In a series or study project a ``scans`` row is the unit a reader labels (uid = Series or Study
Instance UID) and its files are ``slices`` rows grouped into ``series`` rows. This module only
stores and reads them; how slices are stacked and ordered is decided by ``aldesk.imaging.series``
(called from ``aldesk.app.units``). Never decodes pixels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aldesk.errors import ProjectError
from aldesk.store.scans import SCAN_COLUMNS, KnownFile

if TYPE_CHECKING:
    from aldesk.store.project import Project

UNIT_KINDS = ("image", "series", "study")

SLICE_COLUMNS = (
    "series_id", "uid", "pixel_hash", "root_id", "relpath", "file_size", "file_mtime", "rows", "columns",
    "frames", "position", "orientation", "instance_number", "echo", "temporal", "acquisition", "image_type",
    "import_id",
)


@dataclass(frozen=True)
class SliceRow:
    id: int
    series_id: int
    path: Path
    frames: int
    rows: int
    columns: int
    position: tuple | None
    orientation: tuple | None
    instance_number: int | None
    echo: int | None
    temporal: int | None
    acquisition: int | None
    image_type: str | None
    stack: int
    ordinal: int
    z: float | None


@dataclass(frozen=True)
class SeriesRow:
    id: int
    uid: str
    scan_id: int
    study_uid: str | None
    number: int | None
    description: str | None
    modality: str | None
    images: int
    layout: list[dict]   # per stack: {"label", "n", "spacing", "problems"}


def validate_unit(kind: str) -> str:
    if kind not in UNIT_KINDS:
        raise ProjectError(f"unit == {kind!r}, must be one of {', '.join(UNIT_KINDS)}")
    return kind


class UnitStore:
    def __init__(self, project: "Project"):
        self._p = project

    @property
    def _c(self):
        return self._p.conn

    # ------------------------------------------------------------------ the project's unit
    def kind(self) -> str:
        """'image' (every file is a scan), 'series' or 'study'. Projects made before units: 'image'."""
        return self._p.meta("unit", "image")

    def set_kind(self, kind: str) -> None:
        """Choose the unit; only while the project holds no scans (labels are given per unit)."""
        validate_unit(kind)
        if kind != self.kind() and self._p.scans.count():
            raise ProjectError(f"{self._p.path}: the labelling unit cannot change once scans are imported "
                               f"(it is {self.kind()!r}); create a new project with --unit {kind}")
        self._p.set_meta("unit", kind)

    # ------------------------------------------------------------------ import
    def known_files(self, root_id: int, prefix: str = "") -> dict[str, KnownFile]:
        like = (prefix.rstrip("/") + "/%") if prefix else "%"
        return {rel: KnownFile(size, mtime, "imported", "", "") for rel, size, mtime in self._c.execute(
            "SELECT relpath, file_size, file_mtime FROM slices WHERE root_id = ? AND relpath LIKE ?", (root_id, like))}

    def find_slice(self, uid: str, root_id: int, relpath: str) -> tuple[int, Path] | None:
        """Another file already imported with this SOP Instance UID: (its unit's scan id, its path)."""
        row = self._c.execute(
            "SELECT se.scan_id, r.path, s.relpath FROM slices s JOIN series se ON se.id = s.series_id "
            "JOIN roots r ON r.id = s.root_id WHERE s.uid = ? AND NOT (s.root_id = ? AND s.relpath = ?)",
            (uid, root_id, relpath)).fetchone()
        return (row[0], Path(row[1]) / row[2]) if row else None

    def add_slice(self, unit_values: dict, series: dict, slice_values: dict, preview: np.ndarray) -> tuple[int, bool]:
        """File one slice under its series and unit, creating them when new. Call inside a transaction.

        unit_values : the unit's ``scans`` row (uid = the unit's UID) used only when the unit is new.
        series : uid, study_uid, number, description, modality. Returns (unit scan id, unit created).
        """
        c = self._c
        row = c.execute("SELECT id FROM scans WHERE uid = ?", (unit_values["uid"],)).fetchone()
        created = row is None
        if created:
            cols = ", ".join(SCAN_COLUMNS)
            marks = ", ".join("?" for _ in SCAN_COLUMNS)
            scan_id = c.execute(f"INSERT INTO scans({cols}) VALUES ({marks})",
                                [unit_values.get(k) for k in SCAN_COLUMNS]).lastrowid
            _put_preview(c, scan_id, preview)
        else:
            scan_id = row[0]
        series_id = c.execute(
            "INSERT INTO series(uid, scan_id, study_uid, number, description, modality) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(uid) DO UPDATE SET dirty = 1 RETURNING id",
            (series["uid"], scan_id, series.get("study_uid"), series.get("number"), series.get("description"),
             series.get("modality"))).fetchone()[0]
        values = dict(slice_values, series_id=series_id)
        values["position"] = json.dumps(values["position"]) if values.get("position") else None
        values["orientation"] = json.dumps(values["orientation"]) if values.get("orientation") else None
        c.execute("DELETE FROM file_problems WHERE root_id = ? AND relpath = ?", (values["root_id"], values["relpath"]))
        cols = ", ".join(SLICE_COLUMNS)
        marks = ", ".join("?" for _ in SLICE_COLUMNS)
        updates = ", ".join(f"{k} = excluded.{k}" for k in SLICE_COLUMNS if k not in ("root_id", "relpath"))
        c.execute(f"INSERT INTO slices({cols}) VALUES ({marks}) ON CONFLICT(root_id, relpath) DO UPDATE SET {updates}",
                  [values.get(k) for k in SLICE_COLUMNS])
        return scan_id, created

    # ------------------------------------------------------------------ layout
    def dirty_series(self) -> list[int]:
        return [r[0] for r in self._c.execute("SELECT id FROM series WHERE dirty = 1 ORDER BY id")]

    def save_layout(self, series_id: int, stacks: list[dict], placement: list[tuple[int, int, int, float | None]]) -> None:
        """Store a series' stacks and each slice's (slice id, stack, ordinal, z). Call inside a transaction."""
        c = self._c
        c.executemany("UPDATE slices SET stack = ?, ordinal = ?, z = ? WHERE id = ?",
                      [(stack, ordinal, z, sid) for sid, stack, ordinal, z in placement])
        images = c.execute("SELECT COALESCE(SUM(frames), 0) FROM slices WHERE series_id = ?", (series_id,)).fetchone()[0]
        c.execute("UPDATE series SET layout = ?, images = ?, dirty = 0 WHERE id = ?", (json.dumps(stacks), images, series_id))

    def update_unit(self, scan_id: int, *, root_id: int, relpath: str, rows: int, columns: int, frames: int,
                    windows: str, preview: np.ndarray | None) -> None:
        """Point a unit at its representative slice (queue thumbnail, default view). Inside a transaction."""
        c = self._c
        c.execute("UPDATE scans SET root_id = ?, relpath = ?, rows = ?, columns = ?, frames = ?, windows = ? WHERE id = ?",
                  (root_id, relpath, rows, columns, frames, windows, scan_id))
        if preview is not None:
            c.execute("DELETE FROM previews WHERE scan_id = ?", (scan_id,))
            _put_preview(c, scan_id, preview)

    # ------------------------------------------------------------------ reading
    def series(self, scan_id: int | None = None, series_ids: list[int] | None = None) -> list[SeriesRow]:
        """Series of one unit (or the given ids, or all), in series-number order."""
        sql = "SELECT id, uid, scan_id, study_uid, number, description, modality, images, layout FROM series"
        params: list = []
        if scan_id is not None:
            sql += " WHERE scan_id = ?"
            params = [scan_id]
        elif series_ids is not None:
            sql += f" WHERE id IN ({', '.join('?' for _ in series_ids)})"
            params = list(series_ids)
        sql += " ORDER BY scan_id, number IS NULL, number, id"
        return [SeriesRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]))
                for r in self._c.execute(sql, params)]

    def slices(self, series_id: int) -> list[SliceRow]:
        """The files of a series in reading order (stack, then ordinal)."""
        cur = self._c.execute(
            "SELECT s.id, s.series_id, r.path, s.relpath, s.frames, s.rows, s.columns, s.position, s.orientation, "
            "s.instance_number, s.echo, s.temporal, s.acquisition, s.image_type, s.stack, s.ordinal, s.z "
            "FROM slices s JOIN roots r ON r.id = s.root_id WHERE s.series_id = ? ORDER BY s.stack, s.ordinal, s.id",
            (series_id,))
        return [SliceRow(r[0], r[1], Path(r[2]) / r[3], r[4], r[5], r[6],
                         tuple(json.loads(r[7])) if r[7] else None, tuple(json.loads(r[8])) if r[8] else None,
                         r[9], r[10], r[11], r[12], r[13], r[14], r[15], r[16]) for r in cur]

    def files_of(self, scan_ids: list[int]) -> dict[int, list[tuple[str, str, str]]]:
        """scan id -> [(series uid, SOP instance uid, path)] in reading order, for exports."""
        out: dict[int, list[tuple[str, str, str]]] = {}
        for i in range(0, len(scan_ids), 500):
            part = scan_ids[i:i + 500]
            marks = ", ".join("?" for _ in part)
            for sid, suid, uid, root, rel in self._c.execute(
                f"SELECT se.scan_id, se.uid, s.uid, r.path, s.relpath FROM slices s JOIN series se ON se.id = s.series_id "
                f"JOIN roots r ON r.id = s.root_id WHERE se.scan_id IN ({marks}) "
                f"ORDER BY se.scan_id, se.number IS NULL, se.number, se.id, s.stack, s.ordinal", part):
                out.setdefault(sid, []).append((suid, uid, str(Path(root) / rel)))
        return out

    def counts(self) -> dict[str, int]:
        """How many series and studies the project holds (DICOM files outside units count by their UIDs)."""
        c = self._c
        series = c.execute(
            "SELECT COUNT(*) FROM (SELECT uid FROM series UNION "
            "SELECT series_uid FROM scans WHERE series_uid IS NOT NULL AND id NOT IN (SELECT scan_id FROM series))"
        ).fetchone()[0]
        studies = c.execute(
            "SELECT COUNT(*) FROM (SELECT study_uid FROM series WHERE study_uid IS NOT NULL UNION "
            "SELECT study_uid FROM scans WHERE study_uid IS NOT NULL)").fetchone()[0]
        return {"series": series, "studies": studies}

    def captions(self, scan_ids: list[int]) -> dict[int, str]:
        """A short name for each unit among ``scan_ids`` ("study · 8 series · 342 images"); images are absent."""
        out: dict[int, str] = {}
        for i in range(0, len(scan_ids), 500):
            part = [int(s) for s in scan_ids[i:i + 500]]
            marks = ", ".join("?" for _ in part)
            for sid, n, images, desc in self._c.execute(
                    f"SELECT scan_id, COUNT(*), SUM(images), MIN(description) FROM series WHERE scan_id IN ({marks}) "
                    f"GROUP BY scan_id", part):
                out[sid] = (f"study · {n} series · {images} images" if n > 1 or self.kind() == "study"
                            else f"{desc or 'series'} · {images} images")
        return out

    def find_unit(self, column: str, uid: str) -> tuple[int | None, str]:
        """(scan id or None, why not) of the unit a Series (``series_uid``) or Study (``study_uid``) UID names.

        A series UID finds its series unit, or the study unit holding that series; a study UID finds its
        study unit, or its only scan. Several scans under one UID (a study in a series project) is an error.
        """
        c = self._c
        if column == "series_uid":
            hits = {r[0] for r in c.execute("SELECT scan_id FROM series WHERE uid = ?", (uid,))}
            hits |= {r[0] for r in c.execute("SELECT id FROM scans WHERE uid = ? OR (series_uid = ? AND id NOT IN "
                                            "(SELECT scan_id FROM series))", (uid, uid))}
        elif column == "study_uid":
            hits = {r[0] for r in c.execute("SELECT id FROM scans WHERE uid = ? OR study_uid = ?", (uid, uid))}
        else:
            raise ValueError(f"column == {column!r}, must be 'series_uid' or 'study_uid'")
        if len(hits) == 1:
            return hits.pop(), ""
        if not hits:
            return None, f"no series or study of this project has this {column.replace('_', ' ')}"
        return None, (f"this {column.replace('_', ' ')} names {len(hits)} labelling units of this "
                      f"{self.kind()} project; name each one (e.g. by series_uid)")

    def series_units(self) -> int:
        """How many scans rows are series/study units (not single images)."""
        return self._c.execute("SELECT COUNT(DISTINCT scan_id) FROM series").fetchone()[0]

    def slice_count(self) -> int:
        return self._c.execute("SELECT COUNT(*) FROM slices").fetchone()[0]

    def put_series_features(self, set_id: int, series_ids: list[int], X: np.ndarray) -> None:
        X = np.ascontiguousarray(X, dtype="<f4")
        with self._p.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO series_features(set_id, series_id, vector) VALUES (?, ?, ?)",
                          ((set_id, int(s), X[i].tobytes()) for i, s in enumerate(series_ids)))

    def series_features(self, set_id: int, scan_id: int) -> list[tuple[SeriesRow, np.ndarray]]:
        rows = {s.id: s for s in self.series(scan_id)}
        out = []
        for sid, blob in self._c.execute(
                "SELECT series_id, vector FROM series_features WHERE set_id = ? AND series_id IN "
                "(SELECT id FROM series WHERE scan_id = ?)", (set_id, scan_id)):
            out.append((rows[sid], np.frombuffer(blob, dtype="<f4")))
        return out


def _put_preview(c, scan_id: int, preview: np.ndarray) -> None:
    preview = np.ascontiguousarray(preview, dtype=np.uint8)
    channels = 1 if preview.ndim == 2 else preview.shape[2]
    c.execute("INSERT INTO previews(scan_id, height, width, channels, data) VALUES (?, ?, ?, ?, ?)",
              (scan_id, preview.shape[0], preview.shape[1], channels, preview.tobytes()))
