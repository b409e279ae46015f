"""Key bindings: the editor (Label ▸ Key bindings…) and the first-run tour of the keys.

Bindings live in the workstation settings (``Settings.key_bindings``: action -> Qt portable key text);
MainWindow.apply_key_bindings puts them on its shortcuts. Every key of the main window has one owner:
a binding may not take a key a menu or the viewer already uses (``key_conflicts(..., reserved)``),
and label keys are silent while the reader types in a text field (``is_text_input``). The tour is shown once per workstation
(``Settings.tour_seen``) and stays available from Help ▸ Tour of the keys.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QKeySequenceEdit,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from aldesk.ui.settings import DEFAULT_KEY_BINDINGS

ACTION_NAMES = {**{f"label_{n}": f"Label with class {n}" for n in range(1, 10)},
                "unsure": "Mark unsure", "skip": "Skip the scan", "prediction": "Show / hide the model's guess",
                "undo": "Undo the last label"}


def portable(key: str | QKeySequence) -> str:
    """One spelling per key ("ctrl+n", "Ctrl+N" -> "Ctrl+N"), to compare keys."""
    return QKeySequence(key).toString(QKeySequence.SequenceFormat.PortableText)


def key_conflicts(bindings: dict[str, str], reserved: dict[str, str] | None = None) -> list[str]:
    """Human-readable clashes: two actions on one key, a key the menus or viewer own (``reserved``:
    key -> owner), or an action with no key."""
    problems, seen = [], {}
    reserved = {portable(k): owner for k, owner in (reserved or {}).items()}
    for action, key in bindings.items():
        text = portable(key)
        if not text:
            problems.append(f"{ACTION_NAMES[action]} has no key")
        elif text in reserved:
            problems.append(f"{text!r} is bound to both {ACTION_NAMES[action]!r} and {reserved[text]!r}")
        elif text in seen:
            problems.append(f"{text!r} is bound to both {ACTION_NAMES[seen[text]]!r} and {ACTION_NAMES[action]!r}")
        else:
            seen[text] = action
    return problems


def is_text_input(widget: QWidget | None) -> bool:
    """True when keys typed now are text (a note, a search), never commands."""
    if isinstance(widget, QComboBox):
        return widget.isEditable()
    return isinstance(widget, (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox, QKeySequenceEdit))


def window_keys(window: QWidget) -> list[tuple[str, str, str]]:
    """(key, object name, what it does) for every key of ``window``'s QActions and QShortcuts."""
    keys = []
    for act in window.findChildren(QAction):
        if act.isSeparator() or act.menu() is not None:
            continue
        what = act.text().replace("&", "").rstrip("…").strip()
        keys.extend((portable(seq), act.objectName(), what) for seq in act.shortcuts() if not seq.isEmpty())
    for sc in window.findChildren(QShortcut):
        if not sc.key().isEmpty():
            keys.append((portable(sc.key()), sc.objectName(), sc.whatsThis() or sc.objectName()))
    return keys


def shown(key: str) -> str:
    return QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText)


class KeyBindingsDialog(QDialog):
    """One key editor per action; OK refuses clashes. ``bindings()`` -> action -> key text."""

    def __init__(self, bindings: dict[str, str], parent: QWidget | None = None, *,
                 reserved: dict[str, str] | None = None):
        super().__init__(parent)
        self.setWindowTitle("Key bindings")
        self.reserved = dict(reserved or {})  # keys the menus and the viewer own: key -> what it does
        self.edits: dict[str, QKeySequenceEdit] = {}
        form = QFormLayout(self)
        for action in DEFAULT_KEY_BINDINGS:
            edit = QKeySequenceEdit(QKeySequence(bindings.get(action, DEFAULT_KEY_BINDINGS[action])))
            edit.setMaximumSequenceLength(1)
            self.edits[action] = edit
            form.addRow(ACTION_NAMES[action], edit)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #e07b6a")
        self.error.setWordWrap(True)
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.defaults_button = QPushButton("Restore defaults")
        self.defaults_button.clicked.connect(self._on_defaults_button_clicked)
        buttons.addButton(self.defaults_button, QDialogButtonBox.ButtonRole.ResetRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def bindings(self) -> dict[str, str]:
        return {a: e.keySequence().toString(QKeySequence.SequenceFormat.PortableText) for a, e in self.edits.items()}

    def _on_defaults_button_clicked(self) -> None:
        for action, edit in self.edits.items():
            edit.setKeySequence(QKeySequence(DEFAULT_KEY_BINDINGS[action]))

    def accept(self) -> None:
        problems = key_conflicts(self.bindings(), self.reserved)
        if problems:
            self.error.setText("; ".join(problems))
            return
        super().accept()


def tour_text(bindings: dict[str, str], classes: list[str]) -> str:
    """The keys a reader needs in the first minute, with this workstation's bindings."""
    b = {a: shown(k) for a, k in bindings.items()}
    lines = ["<h3>Welcome to aldesk — the keys in one minute</h3>", "<p>Keep one hand on the keys:</p><ul>"]
    named = [f"<b>{b[f'label_{i + 1}']}</b> {c}" for i, c in enumerate(classes[:9])]
    lines.append(f"<li>{' · '.join(named) if named else '<b>' + b['label_1'] + '</b>…<b>' + b['label_9'] + '</b> the classes, in order'}"
                 " — label the scan and move to the next</li>")
    lines.append(f"<li><b>{b['unsure']}</b> unsure · <b>{b['skip']}</b> skip — both are recorded, neither trains the model</li>")
    lines.append(f"<li><b>{b['undo']}</b> undo the last label · <b>{b['prediction']}</b> show or hide the model's guess</li>")
    lines.append("<li><b>F</b> fit · <b>I</b> invert · <b>R</b> reset · <b>F2–F8</b> window presets · "
                 "right-drag window/level · wheel scrolls slices, Ctrl+wheel zooms</li></ul>")
    lines.append("<p>The next scan is the one the model learns most from. Labels are saved the moment you "
                 "press a key. Change the keys in Label ▸ Key bindings…; see this again in Help ▸ Tour of the keys.</p>")
    return "".join(lines)


class KeyTourDialog(QDialog):
    """The first-run tour; ``dont_show_again`` decides whether it comes back next start."""

    def __init__(self, bindings: dict[str, str], classes: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Tour of the keys")
        self.text = QLabel(tour_text(bindings, classes))
        self.text.setWordWrap(True)
        self.text.setMinimumWidth(520)
        self.dont_show_again = QCheckBox("Don't show this at start again")
        self.dont_show_again.setChecked(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start labelling")
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.dont_show_again)
        layout.addWidget(buttons)
