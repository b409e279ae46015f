"""Import folders with a cancellable progress dialog, then show what was skipped and why.

The import runs ``aldesk.app.importer.import_paths`` in a worker on its own Project connection
(SQLite connections are not shared between threads). Cancelling keeps everything imported so far.
"""

from __future__ import annotations

import csv
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from aldesk.app.importer import ImportSummary
from aldesk.ui.workers import run_in_pool

COL_PATH, COL_KIND, COL_CODE, COL_REASON = range(4)
PROBLEM_HEADERS = ("File", "Outcome", "Code", "Reason")
KindRole = Qt.ItemDataRole.UserRole + 1


def import_body(project_path: str, folders: list[str], jobs: int | None = None):
    """The worker body: a plain function of (progress, should_stop) -> ImportSummary."""

    def body(progress, should_stop) -> ImportSummary:
        from aldesk.app.importer import import_paths
        from aldesk.store import Project

        with Project.open(project_path) as project:
            return import_paths(project, folders, jobs=jobs, progress=progress, should_stop=should_stop)

    return body


class ImportDialog(QDialog):
    """Modal progress for one import. After ``exec()``: ``summary`` (or ``error``) is set."""

    def __init__(self, project_path: str, folders: list[str], parent: QWidget | None = None, *, jobs: int | None = None):
        super().__init__(parent)
        self.setWindowTitle("Importing scans")
        self.setMinimumWidth(520)
        self.summary: ImportSummary | None = None
        self.error: BaseException | None = None
        self.folders = folders
        self.title = QLabel("Importing " + ", ".join(Path(f).name or f for f in folders))
        self.title.setObjectName("PanelTitle")
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.message = QLabel("Looking for files…")
        self.message.setObjectName("Muted")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop now; scans imported so far are kept, run the import again to continue")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.bar)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.worker = run_in_pool(import_body(project_path, folders, jobs), on_finished=self._on_worker_finished,
                                  on_failed=self._on_worker_failed, on_progress=self._on_worker_progress)

    def _on_worker_progress(self, done: int, total: int, message: str) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(done)
            self.message.setText(f"{done:,} of {total:,} files — {message}")
        else:
            self.message.setText(message or "Looking for files…")

    def _on_cancel_clicked(self) -> None:
        self.worker.cancel()
        self.cancel_button.setEnabled(False)
        self.message.setText("Stopping… (scans imported so far are kept)")

    def _on_worker_finished(self, summary: ImportSummary) -> None:
        self.summary = summary
        self.accept()

    def _on_worker_failed(self, exc: BaseException) -> None:
        self.error = exc
        self.reject()

    def reject(self) -> None:
        if self.summary is None and self.error is None and not self.worker.done:
            self._on_cancel_clicked()  # Esc / close: cancel, then close when the worker has stopped
            return
        super().reject()


class ProblemTableModel(QAbstractTableModel):
    """Files not imported: ImportSummary.problems rows ({path, kind, code, reason})."""

    def __init__(self, problems: list[dict], parent=None):
        super().__init__(parent)
        self.problems = problems

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.problems)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(PROBLEM_HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return PROBLEM_HEADERS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        p = self.problems[index.row()]
        if role == KindRole:
            return p["kind"]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            key = ("path", "kind", "code", "reason")[index.column()]
            if role == Qt.ItemDataRole.DisplayRole and key == "path":
                return Path(p["path"]).name
            return p["path"] if role == Qt.ItemDataRole.ToolTipRole else p[key]
        return None


def summary_text(summary: ImportSummary) -> str:
    parts = [f"{summary.imported:,} imported"]
    for n, word in ((summary.unchanged, "already in the project"), (summary.duplicates, "duplicates"),
                    (summary.skipped, "skipped"), (summary.failed, "failed")):
        if n:
            parts.append(f"{n:,} {word}")
    head = {"done": "Import finished", "cancelled": "Import cancelled — what was imported is kept",
            "failed": "Import stopped by an error"}.get(summary.status, summary.status)
    return f"{head}: " + " · ".join(parts) + f"  ({summary.elapsed_s:.1f} s)"


class ImportReportDialog(QDialog):
    """What an import did, and every file it did not import with the reason (filterable, savable)."""

    def __init__(self, summary: ImportSummary, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Import report")
        self.resize(860, 480)
        self.summary = summary
        head = QLabel(summary_text(summary))
        head.setObjectName("PanelTitle")
        head.setWordWrap(True)
        self.model = ProblemTableModel(summary.problems, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterRole(KindRole)
        self.kind_box = QComboBox()
        self.kind_box.addItem("All problems", "")
        for kind, text in (("skipped", "Skipped"), ("failed", "Failed"), ("duplicate", "Duplicates")):
            n = sum(1 for p in summary.problems if p["kind"] == kind)
            if n:
                self.kind_box.addItem(f"{text} ({n})", kind)
        self.kind_box.currentIndexChanged.connect(self._on_kind_box_changed)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(COL_PATH, QHeaderView.ResizeMode.Interactive)
        hh.resizeSection(COL_PATH, 240)
        hh.setSectionResizeMode(COL_KIND, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(COL_CODE, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(COL_REASON, QHeaderView.ResizeMode.Stretch)
        self.empty = QLabel("Every file was imported." if not summary.problems else
                            f"{len(summary.problems):,} files were not imported. Hover a row for the full path.")
        self.empty.setObjectName("Muted")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.save_button = buttons.addButton("Save as CSV…", QDialogButtonBox.ButtonRole.ActionRole)
        self.save_button.setEnabled(bool(summary.problems))
        self.save_button.clicked.connect(self._on_save_clicked)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        top = QHBoxLayout()
        top.addWidget(self.empty, 1)
        top.addWidget(self.kind_box)
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.table.setVisible(bool(summary.problems))
        self.kind_box.setVisible(bool(summary.problems))

    def _on_kind_box_changed(self, _i: int) -> None:
        kind = self.kind_box.currentData()
        self.proxy.setFilterFixedString(kind)

    def save_csv(self, path: str) -> None:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "kind", "code", "reason"])
            for p in self.summary.problems:
                w.writerow([p["path"], p["kind"], p["code"], p["reason"]])

    def _on_save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save import report", "import-report.csv", "CSV (*.csv)")
        if path:
            self.save_csv(path)
