"""The reading queue as a Qt item model: 100,000 scans stay smooth.

Holds only an id array (the order) plus the ranked scans' scores and reasons; rows are exposed in
pages (``canFetchMore``/``fetchMore``), each row's metadata is read from the store a page at a time
when first shown, and thumbnails (the stored previews) are made on demand and kept in an LRU. Never
filled row by row, never holds 100,000 pixmaps.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPixmap

from aldesk.errors import ProjectError
from aldesk.store import Project
from aldesk.store.scans import ScanRow

COL_THUMB, COL_NAME, COL_SCORE, COL_REASON, COL_LABEL = range(5)
HEADERS = ("", "Scan", "Score", "Why this scan", "Label")

ScanIdRole = Qt.ItemDataRole.UserRole + 1
ScoreRole = Qt.ItemDataRole.UserRole + 2
ReasonRole = Qt.ItemDataRole.UserRole + 3
LabelRole = Qt.ItemDataRole.UserRole + 4
PathRole = Qt.ItemDataRole.UserRole + 5
ModalityRole = Qt.ItemDataRole.UserRole + 6

PAGE = 256
META_CACHE_ROWS = 20_000
THUMB_CACHE = 1_000
THUMB_SIZE = 48

FILTERS = {
    "to_label": "To label",
    "mine": "Labelled by me",
    "all": "All scans",
    "missing": "Missing files",
}


def preview_to_qimage(preview: np.ndarray) -> QImage:
    """(h, w) or (h, w, 3) uint8 -> a QImage that owns its pixels (safe to keep)."""
    preview = np.ascontiguousarray(preview)
    h, w = preview.shape[:2]
    fmt = QImage.Format.Format_Grayscale8 if preview.ndim == 2 else QImage.Format.Format_RGB888
    return QImage(preview.data, w, h, preview.strides[0], fmt).copy()


class ScanQueueModel(QAbstractTableModel):
    """Rows = scan ids in ``ids`` order. ``labels`` (scan id -> value) marks what this reader read."""

    def __init__(self, project: Project | None = None, parent=None, *, thumb_size: int = THUMB_SIZE):
        super().__init__(parent)
        self.project = project
        self.thumb_size = thumb_size
        self.ids = np.zeros(0, dtype=np.int64)
        self.scores: dict[int, float] = {}
        self.reasons: dict[int, str] = {}
        self.labels: dict[int, str] = {}
        self.unread = 0  # listed scans this reader has not read
        self._loaded = 0
        self._meta: OrderedDict[int, ScanRow] = OrderedDict()
        self._captions: dict[int, str] = {}
        self._thumbs: OrderedDict[int, QPixmap] = OrderedDict()
        self.meta_queries = 0  # store round trips, for tests and the benchmark
        self.thumb_loads = 0
        self._base = np.zeros(0, dtype=np.int64)   # the list as given (ranking order); ids = its view
        self._search = ""                           # file-name text the reader searches for
        self._sort: tuple[int, bool] | None = None  # (column, descending) the reader sorted by
        self._names: dict[int, str] | None = None   # scan id -> lower-case file name, loaded on first need

    # ------------------------------------------------------------------ feeding
    def set_project(self, project: Project | None) -> None:
        self.beginResetModel()
        self.project = project
        self.ids = np.zeros(0, dtype=np.int64)
        self.unread = 0
        self._loaded = 0
        self._meta.clear()
        self._captions.clear()
        self._thumbs.clear()
        self._base = np.zeros(0, dtype=np.int64)
        self._names = None
        self.endResetModel()

    def set_entries(self, ids: np.ndarray, *, scores: dict[int, float] | None = None,
                    reasons: dict[int, str] | None = None, labels: dict[int, str] | None = None) -> None:
        """Replace the list (a new ranking or filter), keeping the reader's search and sort. Cached
        metadata and thumbnails stay valid."""
        self._base = np.asarray(ids, dtype=np.int64)
        self.scores = dict(scores or {})
        self.reasons = dict(reasons or {})
        if labels is not None:
            self.labels = dict(labels)
        self._apply_view()

    # ------------------------------------------------------------------ search and sort (what is listed)
    def set_search(self, text: str) -> None:
        """List only scans whose file name contains ``text`` (any case); '' lists all again."""
        self._search = text.strip().lower()
        self._apply_view()

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:  # noqa: A003 - Qt API
        """Header click: by name, score (unranked last) or label; column -1 is the ranking order again."""
        self._sort = None if column not in (COL_NAME, COL_SCORE, COL_LABEL) else (
            column, order == Qt.SortOrder.DescendingOrder)
        self._apply_view()

    def _file_names(self) -> dict[int, str]:
        if self._names is None:
            self._names = {} if self.project is None else {
                int(sid): Path(rel).name.lower() for sid, _root, rel in self.project.scans.iter_paths()}
        return self._names

    def _apply_view(self) -> None:
        ids = self._base
        if self._search:
            names = self._file_names()
            ids = ids[np.fromiter((self._search in names.get(int(s), "") for s in ids), dtype=bool, count=len(ids))]
        if self._sort is not None and len(ids):
            column, descending = self._sort
            if column == COL_NAME:
                names = self._file_names()
                keys = [names.get(int(s), "") for s in ids]
            elif column == COL_SCORE:  # unranked scans last either way
                keys = [(s not in self.scores, -self.scores.get(s, 0.0) if descending else self.scores.get(s, 0.0))
                        for s in ids.tolist()]
                descending = False
            else:
                keys = [self.labels.get(s, "") for s in ids.tolist()]
            order = sorted(range(len(ids)), key=keys.__getitem__, reverse=descending)
            ids = ids[np.asarray(order, dtype=np.int64)]
        self.beginResetModel()
        self.ids = ids
        read = np.fromiter(self.labels, dtype=np.int64, count=len(self.labels))
        self.unread = int(len(self.ids) - np.isin(self.ids, read).sum())
        self._loaded = min(len(self.ids), PAGE)
        self.endResetModel()

    def set_label(self, scan_id: int, value: str | None) -> None:
        """This reader's value for a scan changed (labelled, changed, undone)."""
        was_read = scan_id in self.labels
        if value is None:
            self.labels.pop(scan_id, None)
        else:
            self.labels[scan_id] = value
        row = self.row_of(scan_id, load=False)
        if row >= 0:  # keeps "N to label" true between rankings
            self.unread += int(was_read) - int(value is not None)
        if 0 <= row < self._loaded:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))

    # ------------------------------------------------------------------ lookups (no widget needed)
    @property
    def total(self) -> int:
        return len(self.ids)

    def scan_id_at(self, row: int) -> int:
        return int(self.ids[row])

    def row_of(self, scan_id: int, *, load: bool = True) -> int:
        """Row of a scan (-1 if not listed). With ``load``, pages are fetched up to it."""
        hits = np.flatnonzero(self.ids == int(scan_id))  # ~50 us for 100,000 ids: no index to keep
        row = int(hits[0]) if len(hits) else -1
        if load and row >= self._loaded:
            self.fetch_to(row)
        return row

    def fetch_to(self, row: int) -> None:
        if row >= self._loaded:
            new = min(len(self.ids), (row // PAGE + 1) * PAGE)
            self.beginInsertRows(QModelIndex(), self._loaded, new - 1)
            self._loaded = new
            self.endInsertRows()

    def next_unread(self, after: int | None, count: int = 1) -> list[int]:
        """The next ``count`` scans after ``after`` (or from the top) that this reader has not read."""
        start = 0
        if after is not None:
            row = self.row_of(after, load=False)
            start = row + 1 if row >= 0 else 0
        out: list[int] = []
        ids = self.ids
        i = start
        while i < len(ids) and len(out) < count:
            s = int(ids[i])
            if s not in self.labels:
                out.append(s)
            i += 1
        return out

    def meta(self, scan_id: int) -> ScanRow | None:
        row = self._meta.get(scan_id)
        if row is None and self.project is not None:
            r = self.row_of(scan_id, load=False)
            page = self.ids[(r // PAGE) * PAGE:(r // PAGE + 1) * PAGE] if r >= 0 else np.array([scan_id])
            self._fetch_meta([int(s) for s in page.tolist() if int(s) not in self._meta] or [scan_id])
            row = self._meta.get(scan_id)
        elif row is not None:
            self._meta.move_to_end(scan_id)
        return row

    def _fetch_meta(self, scan_ids: list[int]) -> None:
        self.meta_queries += 1
        for r in self.project.scans.rows(scan_ids):
            self._meta[r.id] = r
        self._captions.update(self.project.units.captions(scan_ids))   # series/study units: not a file name
        while len(self._meta) > META_CACHE_ROWS:
            self._captions.pop(self._meta.popitem(last=False)[0], None)

    def thumbnail(self, scan_id: int) -> QPixmap | None:
        pix = self._thumbs.get(scan_id)
        if pix is not None:
            self._thumbs.move_to_end(scan_id)
            return pix
        if self.project is None:
            return None
        try:
            preview = self.project.scans.preview(scan_id)
        except ProjectError:
            return None
        self.thumb_loads += 1
        img = preview_to_qimage(preview).scaled(self.thumb_size, self.thumb_size, Qt.AspectRatioMode.KeepAspectRatio,
                                                Qt.TransformationMode.SmoothTransformation)
        pix = QPixmap.fromImage(img)
        self._thumbs[scan_id] = pix
        while len(self._thumbs) > THUMB_CACHE:
            self._thumbs.popitem(last=False)
        return pix

    @property
    def cached_thumbnails(self) -> int:
        return len(self._thumbs)

    # ------------------------------------------------------------------ Qt model API
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else self._loaded

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(HEADERS)

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> bool:  # noqa: N802
        return not parent.isValid() and self._loaded < len(self.ids)

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> None:  # noqa: N802
        if parent.isValid():
            return
        self.fetch_to(self._loaded)

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def flags(self, index):
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable if index.isValid() else Qt.ItemFlag.NoItemFlags

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= self._loaded:
            return None
        scan_id = int(self.ids[index.row()])
        col = index.column()
        if role == ScanIdRole:
            return scan_id
        if role == ScoreRole:
            return self.scores.get(scan_id)
        if role == ReasonRole:
            return self.reasons.get(scan_id, "")
        if role == LabelRole:
            return self.labels.get(scan_id)
        if role in (PathRole, ModalityRole):
            meta = self.meta(scan_id)
            if meta is None:
                return None
            return str(meta.path) if role == PathRole else meta.modality
        if role == Qt.ItemDataRole.DecorationRole and col == COL_THUMB:
            return self.thumbnail(scan_id)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_NAME:
                meta = self.meta(scan_id)
                if meta is None:
                    return f"#{scan_id}"
                second = self.reasons.get(scan_id) or f"{meta.modality or '—'}  {meta.columns}×{meta.rows}"
                return f"{self._captions.get(scan_id) or Path(meta.relpath).name}\n{second}"
            if col == COL_SCORE:
                score = self.scores.get(scan_id)
                return "" if score is None else f"{score:.3f}"
            if col == COL_REASON:
                return self.reasons.get(scan_id, "")
            if col == COL_LABEL:
                return self.labels.get(scan_id, "")
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            meta = self.meta(scan_id)
            parts = [str(meta.path) if meta else f"scan {scan_id}"]
            if meta:
                parts.append(f"{meta.modality or 'no modality'} · {meta.columns} × {meta.rows}"
                             + (f" · {meta.frames} frames" if meta.frames > 1 else ""))
            if scan_id in self.reasons:
                parts.append(f"Why: {self.reasons[scan_id]}")
            if scan_id in self.labels:
                parts.append(f"Your label: {self.labels[scan_id]}")
            return "\n".join(parts)
        if role == Qt.ItemDataRole.ForegroundRole and scan_id in self.labels and col != COL_LABEL:
            return QBrush(QColor(128, 128, 128))
        if role == Qt.ItemDataRole.TextAlignmentRole and col == COL_SCORE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
