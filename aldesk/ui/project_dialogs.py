"""Small dialogs around projects: create a project, choose who is reading."""

from __future__ import annotations

import getpass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from aldesk.app.label_sets import label_sets
from aldesk.errors import ProjectError
from aldesk.store.project import validate_class_names


# Image first: it is what every project was before units, and X-rays, mammograms and photos are one
# file per read; CT and MR readers choose series or study here (the unit cannot change after import).
UNIT_CHOICES = (
    ("image (each file: X-ray, mammogram, photo)", "image", "Every file is labelled on its own"),
    ("series (CT/MR: one label per series)", "series",
     "DICOM files are grouped by Series Instance UID and read as a scrollable series"),
    ("study (one label per examination)", "study",
     "All series of a study are read together in a grid and labelled once"),
)


def _inside(folder: Path, data_dir: Path) -> bool:
    try:
        folder.resolve().relative_to(data_dir.resolve())
        return True
    except ValueError:
        return False


def proposed_folder(projects_dir: str | Path, data_dirs: list[str] = ()) -> Path:
    """A new folder for a project: in ``projects_dir`` (home when empty or inside a data folder, where a
    later recursive import would read the project's own files), named aldesk-project[-N], not taken."""
    base = Path(projects_dir) if projects_dir else Path.home()
    if any(d and _inside(base, Path(d)) for d in data_dirs):
        base = Path.home()
    folder, n = base / "aldesk-project", 1
    while folder.exists():
        n += 1
        folder = base / f"aldesk-project-{n}"
    return folder


class NewProjectDialog(QDialog):
    """Folder + classes (comma separated) + name + labelling unit. ``values()`` -> (folder, classes,
    name); ``chosen_unit()`` -> 'image' | 'series' | 'study'.

    ``start_dir``: where projects go (the proposal is a new folder there); ``data_dirs``: folders scans
    are imported from — a project inside one is refused (its own files would be imported next time)."""

    def __init__(self, parent: QWidget | None = None, start_dir: str = "", data_dirs: list[str] = ()):
        super().__init__(parent)
        self.setWindowTitle("New project")
        self.setMinimumWidth(520)
        self.data_dirs = [d for d in data_dirs if d]
        self.folder = QLineEdit(str(proposed_folder(start_dir, self.data_dirs)))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.classes = QLineEdit("normal, abnormal")
        self.label_set = QComboBox()
        self.label_set.addItem("(type the classes below)", None)
        for ls in label_sets().values():
            self.label_set.addItem(ls.title, ls.classes)
            self.label_set.setItemData(self.label_set.count() - 1, ls.description, Qt.ItemDataRole.ToolTipRole)
        self.label_set.activated.connect(self._on_label_set_activated)
        self.classes.setToolTip("Two to nine classes get keys 1..9; 'unsure' and 'skip' are always there")
        self.unit = QComboBox()
        for text, unit, tip in UNIT_CHOICES:
            self.unit.addItem(text, unit)
            self.unit.setItemData(self.unit.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.unit.setToolTip("What one label is given to; cannot change after the first import")
        self.name = QLineEdit("")
        self.name.setPlaceholderText("(the folder's name)")
        self.error = QLabel("")
        self.error.setObjectName("SavedLabel")
        self.error.setStyleSheet("color: #e07b6a")
        form = QFormLayout(self)
        form.addRow("Project folder", row)
        form.addRow("Label set", self.label_set)
        form.addRow("Classes", self.classes)
        form.addRow("Label each", self.unit)
        form.addRow("Name", self.name)
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _on_label_set_activated(self, index: int) -> None:
        classes = self.label_set.itemData(index)
        if classes:
            self.classes.setText(", ".join(classes))

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the new project", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def values(self) -> tuple[str, list[str], str | None]:
        classes = [c.strip() for c in self.classes.text().split(",")]
        return self.folder.text().strip(), classes, (self.name.text().strip() or None)

    def chosen_unit(self) -> str:
        """'image', 'series' or 'study' (aldesk.store.units)."""
        return self.unit.currentData()

    def accept(self) -> None:
        folder, classes, _ = self.values()
        try:
            validate_class_names(classes)
        except ProjectError as exc:
            self.error.setText(str(exc))
            return
        if not folder:
            self.error.setText("Choose a folder for the project")
            return
        inside = next((d for d in self.data_dirs if _inside(Path(folder), Path(d))), None)
        if inside:
            self.error.setText(f"That folder is inside {inside}, where scans are imported from: importing it "
                               "again would read the project's own files. Choose a folder beside it")
            return
        super().accept()


def default_annotator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "reader"


def ask_annotator(parent: QWidget | None, known: list[str], current: str = "") -> str | None:
    """Pick an existing reader or type a new name; None if cancelled."""
    items = list(dict.fromkeys([n for n in [current, *known, default_annotator()] if n]))
    name, ok = QInputDialog.getItem(parent, "Who is reading?",
                                    "Your name (labels are recorded under it; remembered on this computer):",
                                    items, 0, True)
    name = name.strip()
    return name if ok and name else None
