"""The side panel listing the reading queue: filter, search, count, and a sortable table view over
ScanQueueModel. Filter, search and sort change what is listed, never which scan comes next."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from aldesk.ui.queue_model import COL_LABEL, COL_NAME, COL_REASON, COL_SCORE, COL_THUMB, FILTERS, ScanIdRole, ScanQueueModel


class QueuePanel(QWidget):
    """Emits ``scan_activated(scan_id)`` when the reader picks a row, ``filter_changed(key)`` on filter."""

    scan_activated = Signal(int)
    filter_changed = Signal(str)
    search_done = Signal()  # Enter in the search box: the reader goes back to the scan

    def __init__(self, model: ScanQueueModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("QueuePanel")
        self.setMinimumWidth(340)
        self.model = model
        self._selecting = False

        title = QLabel("Queue")
        title.setObjectName("PanelTitle")
        self.filter_box = QComboBox()
        for key, text in FILTERS.items():
            self.filter_box.addItem(text, key)
        self.filter_box.setToolTip("Which scans to list")
        # never holds keyboard focus: typed letters would pick a filter (issue 13: "lung" flipped it)
        self.filter_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search file names")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Lists only scans whose file name contains this text (label keys are off while "
                               "you type; Enter or Esc goes back to the scan)")
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(150)
        self._search_timer.timeout.connect(lambda: self.model.set_search(self.search.text()))
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.search.returnPressed.connect(self._on_search_return_pressed)
        self.count_label = QLabel("")
        self.count_label.setObjectName("Muted")
        self.strategy_label = QLabel("")
        self.strategy_label.setObjectName("Muted")
        self.strategy_label.setWordWrap(True)

        self.view = QTableView()
        self.view.setModel(model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to labelling, not to the list
        self.view.setShowGrid(False)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.view.verticalHeader().setDefaultSectionSize(model.thumb_size + 8)
        self.view.setIconSize(self._icon_size())
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(COL_THUMB, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(COL_THUMB, model.thumb_size + 10)
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        # fixed widths: ResizeToContents would ask every loaded row for its size on each change
        header.setSectionResizeMode(COL_SCORE, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(COL_SCORE, 58)
        self.view.setColumnHidden(COL_REASON, True)  # shown as the name's second line and in the tooltip
        header.setSectionResizeMode(COL_LABEL, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(COL_LABEL, 78)
        header.setHighlightSections(False)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.view.setSortingEnabled(True)  # ScanQueueModel.sort: on its id array, pages stay pages
        header.setToolTip("Click Scan, Score or Label to sort; click the first column for the ranking order")
        self.view.clicked.connect(self._on_view_clicked)
        self.view.selectionModel().currentRowChanged.connect(self._on_view_current_changed)

        top = QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.filter_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        layout.addLayout(top)
        layout.addWidget(self.search)
        layout.addWidget(self.count_label)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.strategy_label)

        self.filter_box.currentIndexChanged.connect(self._on_filter_box_changed)
        model.modelReset.connect(self._update_count)
        model.dataChanged.connect(self._update_count)

    def _icon_size(self):
        from PySide6.QtCore import QSize

        return QSize(self.model.thumb_size, self.model.thumb_size)

    @property
    def current_filter(self) -> str:
        return self.filter_box.currentData()

    def set_filter(self, key: str) -> None:
        idx = self.filter_box.findData(key)
        if idx >= 0:
            self.filter_box.setCurrentIndex(idx)

    def select_scan(self, scan_id: int | None) -> None:
        """Highlight a scan's row without emitting ``scan_activated`` (the viewer already shows it)."""
        self._selecting = True
        try:
            sel = self.view.selectionModel()
            if scan_id is None:
                sel.clearSelection()
                return
            row = self.model.row_of(scan_id)
            if row < 0:
                sel.clearSelection()
                return
            index = self.model.index(row, COL_NAME)
            sel.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
            self.view.scrollTo(index, QAbstractItemView.ScrollHint.EnsureVisible)
        finally:
            self._selecting = False

    def _update_count(self, *args) -> None:
        noun = {"to_label": "to label", "mine": "labelled by you", "all": "scans", "missing": "files missing"}
        shown = self.model.unread if self.current_filter == "to_label" else self.model.total
        text = self.search.text().strip()
        self.count_label.setText(f"{shown:,} {noun.get(self.current_filter, 'scans')}"
                                 + (f" matching “{text}”" if text else ""))

    def _on_search_return_pressed(self) -> None:
        self._search_timer.stop()
        self.model.set_search(self.search.text())
        self.search_done.emit()

    def _on_filter_box_changed(self, _index: int) -> None:
        self.filter_changed.emit(self.current_filter)

    def _on_view_clicked(self, index) -> None:
        self.scan_activated.emit(int(index.data(ScanIdRole)))

    def _on_view_current_changed(self, current, _previous) -> None:
        if not self._selecting and current.isValid():
            self.scan_activated.emit(int(current.data(ScanIdRole)))
