"""The labelling panel: one button per class (keys 1..9), unsure (U), skip (S), a note, the scan's
label history, and the model's guess (hidden unless asked for: no automation bias).

Only a view: it emits ``label_chosen(value)``; the main window records the label and then calls
``show_saved`` once the store has committed it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QGridLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from aldesk.store.annotations import LabelRow

MAX_CLASS_KEYS = 9


class LabelPanel(QWidget):
    label_chosen = Signal(str)
    prediction_toggled = Signal(bool)

    def __init__(self, classes: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("LabelPanel")
        self.classes = list(classes)
        self.buttons: dict[str, QPushButton] = {}

        title = QLabel("Label")
        title.setObjectName("PanelTitle")
        grid = QGridLayout()
        grid.setSpacing(6)
        for i, name in enumerate(self.classes):
            key = str(i + 1) if i < MAX_CLASS_KEYS else ""
            btn = self._button(f"{key}   {name}" if key else name, name, "ClassButton")
            btn.setToolTip(f"Label as {name}" + (f" (key {key})" if key else ""))
            grid.addWidget(btn, i, 0, 1, 2)
        row = len(self.classes)
        unsure = self._button("U   unsure", "unsure", "SpecialButton")
        unsure.setToolTip("Cannot tell: the scan is kept out of training (key U)")
        skip = self._button("S   skip", "skip", "SpecialButton")
        skip.setToolTip("Not now / not gradable (key S)")
        grid.addWidget(unsure, row, 0)
        grid.addWidget(skip, row, 1)

        self.note = QLineEdit()
        self.note.setPlaceholderText("Note (Ctrl+N; Enter back to the scan), saved with the label")
        self.note.setClearButtonEnabled(True)

        self.saved_label = QLabel("")
        self.saved_label.setObjectName("SavedLabel")
        self.saved_label.setWordWrap(True)

        self.prediction_check = QCheckBox("Show the model's guess (P)")
        self.prediction_check.setToolTip("Hidden by default so the model does not sway your read")
        self.prediction_check.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the scan
        self.prediction_label = QLabel("")
        self.prediction_label.setObjectName("PredictionLabel")
        self.prediction_label.setVisible(False)
        self.prediction_check.toggled.connect(self._on_prediction_check_toggled)

        why_title = QLabel("Why this scan")
        why_title.setObjectName("SectionTitle")
        self.why_numbers = QToolButton()
        self.why_numbers.setText("Numbers")
        self.why_numbers.setCheckable(True)
        self.why_numbers.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.why_numbers.setToolTip("The probabilities, score and strategy's own reason behind the sentence")
        self.why_label = QLabel("")
        self.why_label.setObjectName("WhyLabel")
        self.why_label.setWordWrap(True)
        self.why_details = QLabel("")
        self.why_details.setObjectName("Muted")
        self.why_details.setWordWrap(True)
        self.why_details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.why_details.setVisible(False)
        self.why_numbers.toggled.connect(self.why_details.setVisible)
        why_row = QHBoxLayout()
        why_row.addWidget(why_title)
        why_row.addStretch(1)
        why_row.addWidget(self.why_numbers)

        history_title = QLabel("History of this scan")
        history_title.setObjectName("SectionTitle")
        self.history = QListWidget()
        self.history.setObjectName("History")
        self.history.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.history.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(8)
        layout.addWidget(title)
        layout.addLayout(grid)
        layout.addWidget(self.note)
        layout.addWidget(self.saved_label)
        layout.addLayout(why_row)
        layout.addWidget(self.why_label)
        layout.addWidget(self.why_details)
        layout.addWidget(self.prediction_check)
        layout.addWidget(self.prediction_label)
        layout.addWidget(history_title)
        layout.addWidget(self.history, 1)

    def _button(self, text: str, value: str, object_name: str) -> QPushButton:
        btn = QPushButton(text)
        btn.setObjectName(object_name)
        btn.setCheckable(True)
        btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        btn.setMinimumHeight(34)
        btn.clicked.connect(lambda _checked=False, v=value: self.label_chosen.emit(v))
        self.buttons[value] = btn
        return btn

    # ------------------------------------------------------------------ state from the main window
    def value_for_key(self, digit: int) -> str | None:
        """The class bound to key ``digit`` (1-based), or None."""
        if 1 <= digit <= min(len(self.classes), MAX_CLASS_KEYS):
            return self.classes[digit - 1]
        return None

    def show_scan(self, current_value: str | None, history: list[LabelRow], note: str = "") -> None:
        """A new scan is on screen: mark its current value, show its history, reset the note."""
        self.mark(current_value)
        self.note.setText(note)
        self.saved_label.setText("")
        self.set_history(history)

    def mark(self, value: str | None) -> None:
        for v, btn in self.buttons.items():
            btn.setChecked(v == value)

    def set_history(self, history: list[LabelRow]) -> None:
        self.history.clear()
        for row in reversed(history):
            when = row.created_at.replace("T", " ")[:16]
            text = f"{when}  {row.annotator}: {row.value}"
            if row.note:
                text += f"  — {row.note}"
            self.history.addItem(text)
        if not history:
            self.history.addItem("Not read yet")

    def show_saved(self, value: str, scan_name: str, *, pending: bool = False) -> None:
        """pending: kept durably in the project's journal, written once another process stops writing."""
        self.saved_label.setText(f"Saved (pending) ✓  {scan_name}: {value}" if pending else f"Saved ✓  {scan_name}: {value}")

    def show_message(self, text: str) -> None:
        self.saved_label.setText(text)

    def set_why(self, text: str, numbers: str) -> None:
        """Why the scan on screen was offered, in plain words; the numbers behind it one click away."""
        self.why_label.setText(text)
        self.why_details.setText(numbers)

    def set_prediction(self, text: str) -> None:
        self.prediction_label.setText(text or "No model yet")

    @property
    def prediction_visible(self) -> bool:
        return self.prediction_check.isChecked()

    def _on_prediction_check_toggled(self, on: bool) -> None:
        self.prediction_label.setVisible(on)
        self.prediction_toggled.emit(on)
