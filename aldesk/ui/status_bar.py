"""The main window's status bar: background work (progress), the model, and who is reading.

Only a view: the main window tells it what happened (a worklist arrived, the reader changed, a worker
reported progress); it never reads the project itself.
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

from aldesk.app import worklist as worklists
from aldesk.learning.stopping import STABILITY_KAPPA


class WorkStatusBar(QStatusBar):
    """Permanent widgets: progress text + bar, model status, reader. Transient text via showMessage."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model_status = QLabel("No model yet")
        self.model_status.setToolTip(
            "Model version · labels used · cross-validated accuracy and calibration error (ECE) · accuracy on the "
            "audit sample (random scans, each predicted without its own label; ± half its 95 % interval) · "
            "whether successive models still change their predictions (κ; see the dashboard, Ctrl+D)")
        self.progress_bar = QProgressBar()
        self.progress_bar.setFixedWidth(160)
        self.progress_bar.setVisible(False)
        self.progress_label = QLabel("")
        self.reader_status = QLabel("")
        self.saved_status = QLabel("")
        self.saved_status.setToolTip("Labels stored in the project, by every reader (unsure and skip included)")
        self.addPermanentWidget(self.progress_label)
        self.addPermanentWidget(self.progress_bar)
        self.addPermanentWidget(self.saved_status)
        self.addPermanentWidget(self.model_status)
        self.addPermanentWidget(self.reader_status)

    # ------------------------------------------------------------------ background work
    def work_started(self, text: str = "") -> None:
        if text:
            self.progress_label.setText(text)
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setVisible(True)

    def work_progress(self, done: int, total: int, message: str) -> None:
        self.progress_bar.setVisible(True)
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)
        else:
            self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat(message)
        self.progress_bar.setToolTip(message)

    def work_idle(self, prefix: str = "Retraining") -> None:
        """Hide the bar; clear the progress text if it still describes the finished work."""
        self.progress_bar.setVisible(False)
        if self.progress_label.text().startswith(prefix):
            self.progress_label.setText("")

    # ------------------------------------------------------------------ model and reader
    def show_saved(self, total: int, mine: int) -> None:
        """Labels in the project (every reader; unsure and skip included): what is safely stored, which is
        not what the model was trained on (see show_model)."""
        text = f"{total:,} label{'s' if total != 1 else ''} saved"
        self.saved_status.setText(text if mine == total else f"{text} ({mine:,} yours)")

    def show_model(self, wl: worklists.Worklist | None) -> None:
        if wl is None or not wl.metrics:
            self.model_status.setText("No model yet")
            self.model_status.setToolTip("A model is trained once scans of every class are labelled; "
                                         "your labels are saved either way")
            return
        m = wl.metrics
        self.model_status.setToolTip(
            "Model version · labels it was trained on · cross-validated accuracy and calibration error (ECE)")
        parts = [(f"Model v{wl.model_id}" if wl.model_id else "Model")
                 + f" trained on {m.get('labels', wl.n_labels):,} labels"]
        if m.get("accuracy") is not None:
            parts.append(f"accuracy {m['accuracy']:.2f}")
        if m.get("ece") is not None:
            parts.append(f"ECE {m['ece']:.3f}")
        if m.get("audit_accuracy") is not None and m.get("audit_ci"):
            lo, hi = m["audit_ci"]
            parts.append(f"audit {m['audit_accuracy']:.2f} ± {(hi - lo) / 2:.2f} (n={m.get('audit_n', 0)})")
        if m.get("stability_kappa") is not None:
            parts.append(("stable" if m["stability_kappa"] >= STABILITY_KAPPA else "still changing")
                         + f" (κ {m['stability_kappa']:.3f})")
        self.model_status.setText(" · ".join(parts))

    def show_reader(self, name: str) -> None:
        self.reader_status.setText(f"Reader: {name}")
