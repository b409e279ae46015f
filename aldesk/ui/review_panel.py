"""The reviewer's adjudication screen: disputed scans, most in doubt first; the scan; every reader's
label and note side by side; set the final label with a reason, or ask for another read.

Data comes from the use cases in :mod:`aldesk.app.review` (the same as ``aldesk review``). The queue
is computed in a worker with its own Project connection (``review_queue`` runs the consensus); a
decision is written on the GUI thread (one short transaction, like a label) and only then shown as
saved. Only a reviewer or lead may decide: the use case says so, and its message is shown as is.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QItemSelectionModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QStyledItemDelegate,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from aldesk.app import review
from aldesk.app.units import unit_view
from aldesk.errors import AldeskError
from aldesk.store import Project
from aldesk.ui.decoding import FrameCache
from aldesk.ui.messages import ErrorReporter
from aldesk.ui.series_viewer import StudyView
from aldesk.ui.viewer import NO_PREVIEW_LABEL, ScanViewer
from aldesk.ui.workers import LatestOnly

COL_SCAN, COL_IMPACT, COL_STATUS, COL_REASONS, COL_READS = range(5)
HEADERS = ("Scan", "Impact", "Status", "Why", "Reads")
HEADER_TIPS = ("The scan's file", "How much its training label is in doubt, 0–1 (1: a coin flip or no label)",
               "to decide, or awaiting the read you asked for", "disagreement, unsure, or second opinion suggested "
               "(the model suspects the label)", "Every reader's current read")

ScanIdRole = Qt.ItemDataRole.UserRole + 1
ImpactRole = Qt.ItemDataRole.UserRole + 2
StatusRole = Qt.ItemDataRole.UserRole + 3
ReasonsRole = Qt.ItemDataRole.UserRole + 4
ItemRole = Qt.ItemDataRole.UserRole + 5

# colours of the read cards, per theme (the app's QSS has no rules for them)
CARD_COLOURS = {
    "dark": {"border": "#3a3f46", "agree": "#7fc79a", "disagree": "#d77a6a", "none": "#8d939b", "label": "#e3e5e8",
             "unsure": "#e0b65c", "muted": "#8d939b", "empty": "#6b7078"},
    "light": {"border": "#c9ced6", "agree": "#2e8b57", "disagree": "#b5473a", "none": "#8a9099", "label": "#1f2328",
              "unsure": "#9a6a08", "muted": "#5f6670", "empty": "#8a9099"},
}


def _theme_colours() -> dict[str, str]:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    name = app.property("aldesk_theme") if app is not None else None
    return CARD_COLOURS.get(name or "dark", CARD_COLOURS["dark"])


STATUS_COLOURS = {"dark": {"to decide": "#e0b65c", "awaiting read": "#7fb0e0", "decided": "#7fc79a"},
                  "light": {"to decide": "#9a6a08", "awaiting read": "#1f5fa8", "decided": "#2e8b57"}}


def review_queue_body(project_path: str, include_waiting: bool = True):
    """Worker body: the review queue on the worker's own Project connection."""

    def body(progress, should_stop):
        with Project.open(project_path) as project:
            return review.review_queue(project, include_waiting=include_waiting)

    return body


def _read_counts(item: review.ReviewItem) -> str:
    votes: dict[str, int] = {}
    for r in item.reads:
        votes[r.value] = votes.get(r.value, 0) + 1
    return " · ".join(f"{n}× {v}" if n > 1 else v for v, n in sorted(votes.items()))


class ReviewQueueModel(QAbstractTableModel):
    """Rows = ReviewItems in the order ``review_queue`` gives (to decide first, then by impact)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.items: list[review.ReviewItem] = []

    # ------------------------------------------------------------------ feeding
    def set_items(self, items: list[review.ReviewItem]) -> None:
        self.beginResetModel()
        self.items = list(items)
        self.endResetModel()

    def remove_scan(self, scan_id: int) -> bool:
        row = self.row_of(scan_id)
        if row < 0:
            return False
        self.beginRemoveRows(QModelIndex(), row, row)
        del self.items[row]
        self.endRemoveRows()
        return True

    def update_item(self, item: review.ReviewItem) -> None:
        """A scan's state changed (a read was requested): refresh its row in place."""
        row = self.row_of(item.scan_id)
        if row >= 0:
            self.items[row] = item
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))

    # ------------------------------------------------------------------ lookups (no widget needed)
    def row_of(self, scan_id: int) -> int:
        return next((i for i, it in enumerate(self.items) if it.scan_id == scan_id), -1)

    def item_at(self, row: int) -> review.ReviewItem:
        return self.items[row]

    def counts(self) -> dict[str, int]:
        return {s: sum(i.status == s for i in self.items) for s in ("to decide", "awaiting read")}

    # ------------------------------------------------------------------ Qt model API
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.items)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS[section]
        return None

    def flags(self, index):
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable if index.isValid() else Qt.ItemFlag.NoItemFlags

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.items):
            return None
        item = self.items[index.row()]
        col = index.column()
        if role == ScanIdRole:
            return item.scan_id
        if role == ImpactRole:
            return item.impact
        if role == StatusRole:
            return item.status
        if role == ReasonsRole:
            return list(item.reasons)
        if role == ItemRole:
            return item
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_SCAN:
                return f"{Path(item.path).name or f'#{item.scan_id}'}"
            if col == COL_IMPACT:
                return f"{item.impact:.2f}"
            if col == COL_STATUS:
                return item.status
            if col == COL_REASONS:
                return ", ".join(item.reasons)
            if col == COL_READS:
                return _read_counts(item)
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [f"scan {item.scan_id}: {item.path}", f"{item.status} · impact {item.impact:.2f} "
                     "(how much the training label is in doubt, 0–1)", "Why: " + ", ".join(item.reasons)]
            lines += [f"{r.annotator}: {r.value}" + (f" — {r.note}" if r.note else "") for r in item.reads]
            return "\n".join(lines)
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_STATUS:
            colours = STATUS_COLOURS["light" if _theme_colours() is CARD_COLOURS["light"] else "dark"]
            return QBrush(QColor(colours.get(item.status, "#8d939b")))
        if role == Qt.ItemDataRole.TextAlignmentRole and col == COL_IMPACT:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class _ElideRight(QStyledItemDelegate):
    """The reads column keeps its start ("2× normal · pneu…"); file names elide in the middle."""

    def initStyleOption(self, option, index) -> None:  # noqa: N802
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight


# ====================================================================================== reads side by side
class ReadCard(QFrame):
    """One reader's read: name and role, the label in large type, the note, when, how long, where."""

    def __init__(self, read, agrees_with_consensus: bool | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("ReadCard")
        self.read = read
        self.setFrameShape(QFrame.Shape.StyledPanel)
        k = _theme_colours()
        accent = {True: k["agree"], False: k["disagree"], None: k["none"]}[agrees_with_consensus]
        self.setToolTip({True: "Agrees with the training label now", False: "Differs from the training label now",
                         None: "No training label to compare with"}[agrees_with_consensus])
        self.setStyleSheet(f"QFrame#ReadCard {{ border: 1px solid {k['border']}; border-radius: 6px; "
                           f"border-top: 3px solid {accent}; }}"
                           "QFrame#ReadCard QLabel { background: transparent; }")
        muted = k["muted"]
        who = QLabel(f"<b>{read.annotator}</b> <span style='color:{muted}'>· {read.role}</span>")
        self.label = QLabel(read.value)
        self.label.setObjectName("ReadLabel")
        colour = k["unsure"] if read.value in ("unsure", "skip") else k["label"]
        self.label.setStyleSheet(f"font-size: 15pt; font-weight: 600; color: {colour};")
        self.note = QLabel(read.note if read.note else "no note")
        self.note.setObjectName("ReadNote")
        self.note.setWordWrap(True)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if not read.note:
            self.note.setStyleSheet(f"color: {k['empty']}; font-style: italic;")
        when = read.created_at.replace("T", " ")[:16]
        took = f" · {read.duration_ms / 1000:.0f} s" if read.duration_ms else ""
        meta = QLabel(f"{when}{took}" + (f" · {read.workstation}" if read.workstation else ""))
        meta.setObjectName("Muted")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(4)
        layout.addWidget(who)
        layout.addWidget(self.label)
        layout.addWidget(self.note)
        layout.addStretch(1)
        layout.addWidget(meta)
        self.setMinimumWidth(170)


class ReadsView(QWidget):
    """Every reader's read of one scan, side by side, with the consensus and the model's flag."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.cards: list[ReadCard] = []
        self._row = QHBoxLayout()
        self._row.setSpacing(8)
        holder = QWidget()
        holder.setLayout(self._row)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(holder)
        self.scroll.setMinimumHeight(150)
        self.context = QLabel("")
        self.context.setObjectName("Muted")
        self.context.setWordWrap(True)
        self.context.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.context)

    def show_item(self, item: review.ReviewItem | None) -> None:
        for card in self.cards:
            self._row.removeWidget(card)
            card.deleteLater()
        self.cards = []
        while self._row.count():
            self._row.takeAt(0)
        if item is None:
            self.context.setText("")
            return
        final = item.consensus.label if item.consensus is not None else None
        for r in sorted(item.reads, key=lambda r: r.created_at):
            agrees = None if final is None or r.value not in {*item.posterior, final} else r.value == final
            card = ReadCard(r, agrees)
            self.cards.append(card)
            self._row.addWidget(card, 1)
        self._row.addStretch(0)
        parts = []
        if item.consensus is not None:
            c = item.consensus
            parts.append(f"Training label now: <b>{c.label}</b> ({c.source}, weight {c.weight:.2f})")
        else:
            parts.append("No training label now (no majority)")
        if item.posterior:
            parts.append("consensus " + ", ".join(f"{k} {v:.0%}" for k, v in item.posterior.items()))
        if item.suspect is not None:
            parts.append(f"<span style='color:{_theme_colours()['unsure']}'>model suggests {item.suspect.suggested} "
                         f"(margin {item.suspect.margin:.2f})</span>")
        lines = [" · ".join(parts)]
        for d in item.decisions:
            lines.append(f"Decided <b>{d.value}</b> by {d.reviewer} {d.created_at.replace('T', ' ')[:16]}: {d.reason}")
        for q in item.requests:
            lines.append(f"Read requested by {q.reviewer} {q.created_at.replace('T', ' ')[:16]} ({q.status})"
                         + (f": {q.reason}" if q.reason else ""))
        self.context.setText("<br>".join(lines))

    def labels(self) -> list[tuple[str, str, str]]:
        """(annotator, label, note) on screen, left to right. Plain data, testable."""
        return [(c.read.annotator, c.label.text(), c.read.note) for c in self.cards]


# ====================================================================================== the screen
class ReviewPanel(QWidget):
    """Queue of disputed scans | the scan | reads side by side and the decision.

    Works on its own Project connection (``project_path``) so it can live in its own window.
    Signals: ``queue_loaded(n)`` after a refresh; ``decided(scan_id, label)`` after a final label is
    committed; ``read_requested(scan_id)`` after a read request is committed.
    """

    queue_loaded = Signal(int)
    decided = Signal(int, str)
    read_requested = Signal(int)
    item_shown = Signal(int)

    def __init__(self, project_path: str | os.PathLike, reviewer: str, parent: QWidget | None = None,
                 errors: ErrorReporter | None = None):
        super().__init__(parent)
        self.setObjectName("ReviewPanel")
        self.project_path = str(project_path)
        self.project = Project.open(self.project_path)
        self.reviewer = reviewer
        self.errors = errors or ErrorReporter(self)
        self.current: review.ReviewItem | None = None
        self.model = ReviewQueueModel(self)
        self.loader = LatestOnly("review queue", self)
        self.loader.finished.connect(self._on_loader_finished)
        self.loader.failed.connect(self._on_loader_failed)
        self.frame_cache = FrameCache(self, threads=1)
        self.frame_cache.decoded.connect(self._on_frame_cache_decoded)
        self._selecting = False

        # ---- left: the queue
        title = QLabel("Review")
        title.setObjectName("PanelTitle")
        self.waiting_check = QCheckBox("Show scans awaiting a read")
        self.waiting_check.setChecked(True)
        self.waiting_check.toggled.connect(self._on_waiting_toggled)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Recompute the queue and the consensus (F5)")
        self.refresh_button.clicked.connect(lambda _c=False: self.refresh())
        self.count_label = QLabel("Loading…")
        self.count_label.setObjectName("Muted")
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setShowGrid(False)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keep the end of a file name: its number
        self.view.verticalHeader().setVisible(False)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(COL_SCAN, QHeaderView.ResizeMode.Stretch)
        for col, width in ((COL_IMPACT, 62), (COL_STATUS, 88), (COL_REASONS, 100), (COL_READS, 160)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(col, width)
        header.setHighlightSections(False)
        self._elide_right = _ElideRight(self.view)
        for col in (COL_REASONS, COL_READS):
            self.view.setItemDelegateForColumn(col, self._elide_right)
        self.view.selectionModel().currentRowChanged.connect(self._on_view_current_changed)
        left = QWidget()
        left.setObjectName("QueuePanel")
        top = QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.refresh_button)
        lv = QVBoxLayout(left)
        lv.setContentsMargins(8, 8, 8, 8)
        lv.addLayout(top)
        lv.addWidget(self.count_label)
        lv.addWidget(self.waiting_check)
        lv.addWidget(self.view, 1)
        hint = QLabel("Most in doubt first: scans to decide, then those awaiting another read.")
        hint.setObjectName("Muted")
        hint.setWordWrap(True)
        lv.addWidget(hint)

        # ---- middle: the scan, and every read side by side under it
        self.viewer = ScanViewer()
        for key, slot in (("F", self.viewer.fit), ("R", self.viewer.reset),
                          ("I", lambda: self.viewer.set_invert(not self.viewer.invert))):
            sc = QShortcut(QKeySequence(key), self.viewer)
            sc.setContext(Qt.ShortcutContext.WidgetShortcut)  # typing a reason never moves the image
            sc.activated.connect(slot)
        self.viewer.setToolTip("Right-drag window/level · wheel zoom · drag pan · F fit · I invert · R reset")
        self.scan_title = QLabel("")
        self.scan_title.setObjectName("SectionTitle")
        self.reads_view = ReadsView()
        self.study_view = StudyView()          # series/study units: their series in a grid
        self.scan_area = QStackedWidget()
        self.scan_area.addWidget(self.viewer)
        self.scan_area.addWidget(self.study_view)
        middle = QSplitter(Qt.Orientation.Vertical)
        middle.addWidget(self.scan_area)
        below = QWidget()
        bv = QVBoxLayout(below)
        bv.setContentsMargins(8, 4, 8, 4)
        bv.addWidget(self.scan_title)
        bv.addWidget(self.reads_view, 1)
        middle.addWidget(below)
        middle.setStretchFactor(0, 3)
        middle.setStretchFactor(1, 1)
        middle.setSizes([640, 220])

        # ---- right: the decision
        right = QWidget()
        right.setObjectName("LabelPanel")
        dtitle = QLabel("Decision")
        dtitle.setObjectName("PanelTitle")
        self.reviewer_label = QLabel("")
        self.reviewer_label.setObjectName("Muted")
        self.reviewer_label.setWordWrap(True)
        self.roles_button = QPushButton("Readers and roles…")
        self.roles_button.setToolTip("Give a reader the reviewer or lead role (as `aldesk annotator … --role`)")
        self.roles_button.clicked.connect(lambda _c=False: self.manage_roles())
        self.class_buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        grid.setSpacing(6)
        for i, name in enumerate(self.project.classes):
            btn = QPushButton(f"{i + 1}   {name}" if i < 9 else name)
            btn.setObjectName("ClassButton")
            btn.setCheckable(True)
            btn.setAutoExclusive(False)
            btn.setMinimumHeight(34)
            btn.setToolTip(f"Final label {name}" + (f" (Ctrl+{i + 1})" if i < 9 else ""))
            btn.clicked.connect(lambda _c=False, n=name: self.choose(n))
            self.class_buttons[name] = btn
            grid.addWidget(btn, i, 0)
            if i < 9:
                sc = QShortcut(QKeySequence(f"Ctrl+{i + 1}"), self)
                sc.activated.connect(lambda n=name: self.choose(n))
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Reason for the final label (required)")
        self.reason.setClearButtonEnabled(True)
        self.reason.returnPressed.connect(lambda: self.decide())
        self.decide_button = QPushButton("Set final label")
        self.decide_button.setDefault(True)
        self.decide_button.setMinimumHeight(34)
        self.decide_button.setToolTip("Store the final label: it overrides every reader and trains with weight 1 "
                                      "(Enter in the reason)")
        self.decide_button.clicked.connect(lambda _c=False: self.decide())
        rtitle = QLabel("Or ask for another read")
        rtitle.setObjectName("SectionTitle")
        self.request_reason = QLineEdit()
        self.request_reason.setPlaceholderText("What should the next reader look at? (optional)")
        self.request_button = QPushButton("Ask for another read")
        self.request_button.setMinimumHeight(30)
        self.request_button.setToolTip("The scan goes first in the queues of readers who have not read it")
        self.request_button.clicked.connect(lambda _c=False: self.request_read())
        self.status_label = QLabel("")
        self.status_label.setObjectName("SavedLabel")
        self.status_label.setWordWrap(True)
        rv = QVBoxLayout(right)
        rv.setContentsMargins(8, 8, 8, 8)
        rv.setSpacing(8)
        rv.addWidget(dtitle)
        rv.addWidget(self.reviewer_label)
        rv.addWidget(self.roles_button)
        rv.addLayout(grid)
        rv.addWidget(self.reason)
        rv.addWidget(self.decide_button)
        rv.addSpacing(10)
        rv.addWidget(rtitle)
        rv.addWidget(self.request_reason)
        rv.addWidget(self.request_button)
        rv.addWidget(self.status_label)
        rv.addStretch(1)
        keys = QLabel("Ctrl+1…9 choose the final label · Enter in the reason (or Ctrl+Enter) saves · "
                      "F5 recomputes the queue. A final label overrides every reader and trains with weight 1.")
        keys.setObjectName("Muted")
        keys.setWordWrap(True)
        rv.addWidget(keys)
        right.setMinimumWidth(260)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(middle)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([580, 740, 280])
        self.splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        QShortcut(QKeySequence("F5"), self).activated.connect(self.refresh)
        QShortcut(QKeySequence("Ctrl+Return"), self).activated.connect(lambda: self.decide())

        self.set_reviewer(reviewer)
        self.show_item(None)
        self.refresh()

    # ------------------------------------------------------------------ reviewer
    def set_reviewer(self, name: str) -> None:
        self.reviewer = name
        self._update_decision_controls()

    @property
    def not_allowed(self) -> str | None:
        """Why the reviewer may not decide or ask for reads (same rule as the use case), or None."""
        if self.project is None:  # shut down: a late queue result must not touch a closed project
            return "the review window is closed"
        role = self.project.labels.role(self.reviewer)
        if role in review.REVIEWER_ROLES:
            return None
        who = f"{self.reviewer} is {'an ' + role if role else 'not a reader of this project'}"
        return f"{who}: only a reviewer or lead can set final labels or ask for reads (Readers and roles…)"

    def _update_decision_controls(self) -> None:
        """Controls the reviewer may not use are shown disabled, with the reason, never as a later error."""
        why = self.not_allowed
        role = self.project.labels.role(self.reviewer) if self.project is not None else None
        self.reviewer_label.setText(why or f"Deciding as {self.reviewer} ({role})")
        enabled = self.current is not None and why is None
        for w in (*self.class_buttons.values(), self.reason, self.decide_button, self.request_reason,
                  self.request_button):
            w.setEnabled(enabled)
            if why is not None:
                w.setToolTip(why)
        if why is None:
            for name, btn in self.class_buttons.items():
                i = list(self.class_buttons).index(name)
                btn.setToolTip(f"Final label {name}" + (f" (Ctrl+{i + 1})" if i < 9 else ""))
            self.decide_button.setToolTip("Store the final label: it overrides every reader and trains with "
                                          "weight 1 (Enter in the reason)")
            self.request_button.setToolTip("The scan goes first in the queues of readers who have not read it")
            self.reason.setToolTip("")
            self.request_reason.setToolTip("")

    def _refused(self) -> bool:
        """A key (Ctrl+1…9, Ctrl+Enter) reached a disabled control: say why where the reviewer looks."""
        why = self.not_allowed
        if why:
            self.status_label.setText(why)
        return why is not None

    def manage_roles(self) -> None:
        from aldesk.ui.readers_dialog import ReadersDialog

        dialog = ReadersDialog(self.project, self, highlight=self.reviewer)
        dialog.roles_changed.connect(self._update_decision_controls)
        dialog.exec()
        self._update_decision_controls()

    # ------------------------------------------------------------------ the queue
    def refresh(self) -> int:
        """Recompute the queue in the background (the consensus is rerun); keeps the current scan selected."""
        self.count_label.setText("Loading the review queue…")
        return self.loader.request(review_queue_body(self.project_path, self.waiting_check.isChecked()))

    def _on_waiting_toggled(self, _on: bool) -> None:
        self.refresh()

    def _on_loader_finished(self, items: list) -> None:
        keep = self.current.scan_id if self.current is not None else None
        self.model.set_items(items)
        self._update_count()
        row = self.model.row_of(keep) if keep is not None else -1
        if row < 0 and self.model.items:
            row = 0
        if row >= 0:
            self.select_row(row)
        else:
            self.show_item(None)
        self.queue_loaded.emit(len(items))

    def _on_loader_failed(self, exc: BaseException) -> None:
        self.count_label.setText("The review queue could not be computed")
        self.errors.report("Cannot compute the review queue", exc)

    def _update_count(self) -> None:
        c = self.model.counts()
        if not self.model.items:
            self.count_label.setText("Nothing to review: no disputed or unsure reads")
        else:
            self.count_label.setText(f"{c['to decide']} to decide · {c['awaiting read']} awaiting another read")

    def select_row(self, row: int) -> None:
        index = self.model.index(row, COL_SCAN)
        self.view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.view.scrollTo(index)
        if self.current is None or self.current.scan_id != self.model.item_at(row).scan_id:
            self.show_item(self.model.item_at(row))

    def _on_view_current_changed(self, current, _previous) -> None:
        if current.isValid():
            # the queue's item was computed in the worker (undecided, so no decisions yet): no
            # consensus rerun on the GUI thread when the reviewer walks down the list
            self.show_item(current.data(ItemRole))

    # ------------------------------------------------------------------ one scan
    def show_scan(self, scan_id: int) -> None:
        try:
            item = review.review_item(self.project, scan_id)
        except AldeskError as exc:
            self.errors.report("Cannot show the scan", exc)
            return
        self.show_item(item)

    def show_item(self, item: review.ReviewItem | None) -> None:
        same = item is not None and self.current is not None and item.scan_id == self.current.scan_id
        self.current = item
        self.reads_view.show_item(item)
        if same:  # the queue was recomputed under the reviewer: keep the label and reason being typed
            return
        self.status_label.setText("")
        self.reason.clear()
        self.request_reason.clear()
        for btn in self.class_buttons.values():
            btn.setChecked(False)
        self._update_decision_controls()
        if item is None:
            self.scan_title.setText("")
            self.viewer.clear("Nothing to review: pick a scan in the list." if self.model.items
                              else "Nothing to review: no disputed or unsure reads.")
            return
        row = self.project.scans.get(item.scan_id)
        self.scan_title.setText(f"{Path(item.path).name} · scan {item.scan_id} · {', '.join(item.reasons) or 'reviewed'}"
                                f" · impact {item.impact:.2f}")
        info = {"name": Path(row.relpath).name, "modality": row.modality, "frames": row.frames,
                "path": str(row.path), "rows": row.rows, "columns": row.columns,
                "label": " | ".join(f"{r.annotator}: {r.value}" for r in item.reads)}
        unit = unit_view(self.project, item.scan_id) if self.project.units.kind() != "image" else None
        self.scan_area.setCurrentWidget(self.study_view if unit is not None else self.viewer)
        cached = self.frame_cache.get(item.scan_id) if unit is None else None
        if unit is not None:
            self.study_view.show_unit(item.scan_id, unit, info)
        elif cached is not None:
            self.viewer.set_frames(item.scan_id, cached[0], cached[1], info)
        else:
            try:
                preview = self.project.scans.preview(item.scan_id)
            except AldeskError:  # not in the restored backup: the file, if still there, is being decoded
                preview = np.zeros((8, 8), np.uint8)
                info = dict(info, label=NO_PREVIEW_LABEL, no_preview=True)
            self.viewer.show_preview(item.scan_id, preview, (row.columns, row.rows), info)
            if item.scan_id not in self.frame_cache.errors:
                self.frame_cache.request(item.scan_id, str(row.path))
        self.item_shown.emit(item.scan_id)

    def _on_frame_cache_decoded(self, scan_id: int, frames, params) -> None:
        if self.current is not None and scan_id == self.current.scan_id and self.viewer.is_preview:
            self.viewer.set_frames(scan_id, frames, params, self.viewer.info)

    # ------------------------------------------------------------------ decisions
    def choose(self, label: str) -> None:
        """Pick the final label (the button stays lit); Set final label stores it with the reason."""
        if self.current is None or self._refused():
            return
        for name, btn in self.class_buttons.items():
            btn.setChecked(name == label)
        self.reason.setFocus()

    @property
    def chosen(self) -> str | None:
        return next((n for n, b in self.class_buttons.items() if b.isChecked()), None)

    def decide(self, label: str | None = None, reason: str | None = None) -> str | None:
        """Store the final label for the scan on screen; returns the decision's id (None if not stored)."""
        if self.current is None or self._refused():
            return None
        label = label or self.chosen
        reason = self.reason.text() if reason is None else reason
        if label is None:
            self.errors.report("No final label chosen", "Pick the final label (a class button) first, then give a reason.")
            return None
        scan_id = self.current.scan_id
        try:
            decision = review.adjudicate(self.project, scan_id, label, reason, self.reviewer)
        except AldeskError as exc:
            self.errors.report("The final label was not saved", exc)
            return None
        row = self.model.row_of(scan_id)
        self.model.remove_scan(scan_id)
        self._update_count()
        self.decided.emit(scan_id, label)
        name = Path(self.current.path).name
        if self.model.items:
            self.select_row(min(max(row, 0), len(self.model.items) - 1))
        else:
            self.show_item(None)
        self.status_label.setText(f"Saved ✓  {name}: final label {label}")
        return decision

    def request_read(self, reason: str | None = None) -> str | None:
        """Ask for another independent read of the scan on screen; returns the request's id."""
        if self.current is None or self._refused():
            return None
        reason = self.request_reason.text() if reason is None else reason
        scan_id = self.current.scan_id
        try:
            request = review.request_read(self.project, scan_id, self.reviewer, reason)
        except AldeskError as exc:
            self.errors.report("The read request was not saved", exc)
            return None
        # the consensus did not change: only the status and the requests (no rerun on the GUI thread)
        item = dataclasses.replace(self.current, status="awaiting read",
                                   requests=self.project.reviews.read_requests(scan_id))
        if self.waiting_check.isChecked():
            self.model.update_item(item)
            self.show_item(item)
        else:
            row = self.model.row_of(scan_id)
            self.model.remove_scan(scan_id)
            if self.model.items:
                self.select_row(min(max(row, 0), len(self.model.items) - 1))
            else:
                self.show_item(None)
        self.request_reason.clear()
        self._update_count()
        self.read_requested.emit(scan_id)
        self.status_label.setText(f"Saved ✓  another read requested for {Path(item.path).name}")
        return request

    # ------------------------------------------------------------------ closing
    def shutdown(self) -> None:
        self.loader.shutdown()
        self.frame_cache.shutdown()
        self.study_view.stop()
        self.study_view.loader.shutdown()
        if self.project is not None:
            self.project.close()
            self.project = None

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)


# ====================================================================================== windows
_OPEN: dict[tuple[int, str], QWidget] = {}


def open_window(owner: QWidget, kind: str, project_path: str | os.PathLike, reviewer: str, *,
                errors: ErrorReporter | None = None, theme: str = "dark") -> QWidget | None:
    """Show the review screen (``kind='review'``) or the agreement view (``'agreement'``) in a window
    of its own over ``owner``; a second call raises (and refreshes) the open one. The window works on
    its own Project connection and closes it when closed."""
    from aldesk.ui.agreement_view import AgreementView

    key = (id(owner), kind)
    path = str(project_path)
    win = _OPEN.get(key)
    if win is not None and win.project_path == path:
        if kind == "review":
            win.set_reviewer(reviewer)
        win.refresh()
        win.show()
        win.raise_()
        win.activateWindow()
        return win
    if win is not None:
        win.close()
    if kind == "review":
        try:
            win = ReviewPanel(path, reviewer, owner, errors=errors)
        except AldeskError as exc:
            (errors or ErrorReporter(owner)).report("Cannot open the review screen", exc)
            return None
        win.setWindowTitle(f"aldesk — review — {Path(path).name}")
        win.resize(1600, 960)
    elif kind == "agreement":
        win = AgreementView(path, owner, theme=theme, errors=errors)
        win.setWindowTitle(f"aldesk — agreement — {Path(path).name}")
        win.resize(1500, 880)
    else:
        raise ValueError(f"kind == {kind!r}, must be 'review' or 'agreement'")
    win.setWindowFlag(Qt.WindowType.Window, True)
    win.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    _OPEN[key] = win
    wid = id(win)
    win.destroyed.connect(lambda *_: _OPEN.pop(key) if id(_OPEN.get(key)) == wid else None)
    win.show()
    return win
