"""Readers and roles, in the app: the same use case and rules as `aldesk annotator PROJECT NAME --role R`.

Lists every reader (name, role, reads); a role changes as soon as it is picked, and a new reader can be
added with a role. Errors (an empty name, an unknown role) are the use case's own messages, shown in the
dialog. Only a view over aldesk.app.review.readers / set_role: never writes SQL itself.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from aldesk.app import review
from aldesk.errors import AldeskError
from aldesk.store import Project
from aldesk.store.annotations import ROLES

ROLE_HELP = {"annotator": "reads scans", "reviewer": "reads scans, decides disputed scans, asks for reads",
             "lead": "as a reviewer; runs the project"}


class ReadersDialog(QDialog):
    """``roles_changed`` after every stored change; ``message`` shows the last result or error."""

    roles_changed = Signal()

    def __init__(self, project: Project, parent: QWidget | None = None, *, highlight: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Readers and roles")
        self.project = project
        self.role_boxes: dict[str, QComboBox] = {}
        intro = QLabel("Only a <b>reviewer</b> or <b>lead</b> can set final labels and ask for reads. "
                       "A role changes as soon as you pick it (the same rule as `aldesk annotator`).")
        intro.setWordWrap(True)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Reader", "Role", "Reads"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.new_name = QLineEdit(highlight or "")
        self.new_name.setPlaceholderText("New reader's name")
        self.new_role = self._role_box("annotator")
        self.add_button = QPushButton("Add reader")
        self.add_button.clicked.connect(lambda _c=False: self.add_reader())
        self.new_name.returnPressed.connect(self.add_reader)
        add = QHBoxLayout()
        add.addWidget(self.new_name, 1)
        add.addWidget(self.new_role)
        add.addWidget(self.add_button)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addLayout(add)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.resize(520, 420)
        self.reload()
        if highlight and highlight in self.role_boxes:
            self.new_name.clear()
            self.table.selectRow(list(self.role_boxes).index(highlight))

    def _role_box(self, role: str) -> QComboBox:
        box = QComboBox()
        for r in ROLES:
            box.addItem(r, r)
            box.setItemData(box.count() - 1, ROLE_HELP[r], Qt.ItemDataRole.ToolTipRole)
        box.setCurrentIndex(max(0, box.findData(role)))
        return box

    def reload(self) -> None:
        rows = review.readers(self.project)
        self.table.setRowCount(len(rows))
        self.role_boxes.clear()
        for i, r in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(r["name"]))
            box = self._role_box(r["role"])
            box.currentIndexChanged.connect(lambda _i, n=r["name"], b=box: self.set_role(n, b.currentData()))
            self.table.setCellWidget(i, 1, box)
            self.table.setItem(i, 2, QTableWidgetItem(str(r["reads"])))
            self.role_boxes[r["name"]] = box

    def set_role(self, name: str, role: str) -> bool:
        try:
            row = review.set_role(self.project, name, role)
        except AldeskError as exc:
            self.message.setText(str(exc))
            return False
        self.message.setText(f"{row['name']} is now {'an' if row['role'][0] in 'aeiou' else 'a'} {row['role']}")
        self.roles_changed.emit()
        return True

    def add_reader(self) -> bool:
        name = self.new_name.text().strip()
        if not name:
            self.message.setText("Type the new reader's name first")
            return False
        if not self.set_role(name, self.new_role.currentData()):
            return False
        self.new_name.clear()
        self.reload()
        return True
