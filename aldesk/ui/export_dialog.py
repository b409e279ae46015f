"""Export the labelled set from the GUI: the options of ``aldesk export``, a cancellable run, a summary.

The dialog fills ``aldesk.app.export.ExportOptions`` and runs ``export_labelled_set`` in a worker on
its own Project connection (as the import dialog does). Patient identifiers are off by default and
are only included after an explicit confirmation. Nothing is written when the options are invalid;
a cancelled or failed export leaves no folder behind (the use case writes beside OUT and renames).
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from aldesk.ui.messages import ErrorReporter
from aldesk.ui.workers import run_in_pool

FORMAT_CHOICES = (("csv", "CSV table (labels.csv)"), ("json", "JSON (labels.json)"),
                  ("folders", "Image folders, one per class (with labels.csv)"))
DICOM_CHOICES = (("dicom", "DICOM, de-identified"), ("png", "PNG (display pipeline)"))
ERROR_STYLE = "color: #e0675f;"
PRIVACY_OFF = ("Off: scans are named by pseudonymous keys, never by file or folder names; DICOM copies are "
               "de-identified (PS3.15 basic profile); images that may show burned-in text are left out.")
PRIVACY_ON = ("ON: paths, Patient ID, name and birth date WILL be written, original DICOM copied; recorded in "
              "manifest.json.")
WARNING_STYLE = "color: #d9a441;"


GUI_WORDING = (  # the use cases' hints name CLI commands; the GUI names its own menu entries
    ("run `aldesk train PROJECT`", "Model ▸ Retrain and re-rank now"),
    ("`aldesk import PROJECT FOLDER`", "File ▸ Import folder…"),
    ("`aldesk package export PROJECT OUT.aldpkg`", "File ▸ Export annotation package…"),
    ("pass --allow-other-project", "confirm when asked"),
    ("export them with --include-burned-in", "tick 'Include images that may show burned-in text'"),
)


def for_the_gui(text: str) -> str:
    """A use case's message with its CLI hints replaced by the GUI's menu entries."""
    for cli, gui in GUI_WORDING:
        text = text.replace(cli, gui)
    return text


def report(errors: ErrorReporter, title: str, exc: BaseException) -> None:
    """Expected failures (AldeskError) in GUI wording; anything else with its traceback, as a bug."""
    from aldesk.errors import AldeskError

    if isinstance(exc, AldeskError):
        errors.report(title, for_the_gui(str(exc)))
    else:
        errors.report(title, exc)


def export_body(project_path: str, out: str, options):
    """The worker body: a plain function of (progress, should_stop) -> ExportResult."""

    def body(progress, should_stop):
        from aldesk.app.export import export_labelled_set
        from aldesk.store import Project

        with Project.open(project_path) as project:
            return export_labelled_set(project, out, options, progress=progress, should_stop=should_stop)

    return body


def default_out(project_path: str | Path) -> Path:
    """A new folder beside the project: ``<project>-export-YYYYMMDD-HHMM`` (never an existing one)."""
    project_path = Path(project_path)
    base = project_path.parent / f"{project_path.name}-export-{time.strftime('%Y%m%d-%H%M')}"
    out, n = base, 2
    while out.exists():
        out, n = base.with_name(f"{base.name}-{n}"), n + 1
    return out


def confirm_identifiers(parent: QWidget | None) -> bool:
    """Ask before patient identifiers leave the project; the safe answer (No) is the default."""
    answer = QMessageBox.warning(
        parent, "Include patient identifiers?",
        "The export will contain file paths (folder names often name the patient), Patient ID, name, birth date, "
        "accession number and the original DICOM UIDs, "
        "and DICOM copies will NOT be de-identified.\n\nOnly do this if the recipient is allowed to hold "
        "patient data. The choice is recorded in the export's manifest.json.\n\nInclude patient identifiers?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


class ExportDialog(QDialog):
    """Choose what to export, run it with progress, hand back ``result`` (ExportResult) or ``error``.

    ``export_done`` fires with the result when the export finished; ``export_failed`` with the
    exception (already reported to the user), ``export_cancelled`` when the user stopped it.
    """

    export_done = Signal(object)
    export_failed = Signal(object)
    export_cancelled = Signal()

    def __init__(self, project_path: str | Path, parent: QWidget | None = None, *,
                 errors: ErrorReporter | None = None, classes: list[str] | None = None, n_labelled: int | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export labelled set")
        self.setMinimumWidth(620)
        self.project_path = str(project_path)
        self.errors = errors or ErrorReporter(self)
        self.result = None
        self.error: BaseException | None = None
        self.worker = None

        title = QLabel("Export the labelled set for model building")
        title.setObjectName("PanelTitle")
        intro = QLabel("Each scan with a final label (adjudicated, consensus or single reader) is written with "
                       "every reader's label, agreement, the model's probability and its split. "
                       + (f"{n_labelled:,} scans have a final label now." if n_labelled is not None else ""))
        intro.setObjectName("Muted")
        intro.setWordWrap(True)

        self.format_box = QComboBox()
        for key, text in FORMAT_CHOICES:
            self.format_box.addItem(text, key)
        self.format_box.currentIndexChanged.connect(self._on_format_changed)
        self.dicom_box = QComboBox()
        for key, text in DICOM_CHOICES:
            self.dicom_box.addItem(text, key)
        self.dicom_box.setToolTip("How DICOM scans are written into the class folders; PNG or de-identified "
                                  "DICOM copies (PS3.15 basic profile, UIDs remapped consistently)")

        self.out_edit = QLineEdit(str(default_out(self.project_path)))
        self.out_edit.setToolTip("A new (or empty) folder; the export appears there whole or not at all")
        self.out_edit.textChanged.connect(self.validate)
        self.browse_button = QPushButton("Choose…")
        self.browse_button.clicked.connect(self._on_browse_clicked)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(self.browse_button)

        self.splits_edit = QLineEdit("70,15,15")
        self.splits_edit.setPlaceholderText("empty: no split column")
        self.splits_edit.setToolTip("train,val,test (or train,test) percentages; stratified by class and grouped "
                                    "by patient, so no patient is in two splits. Leave empty for no split.")
        self.splits_edit.textChanged.connect(self.validate)
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 999_999)
        self.seed_box.setFixedWidth(110)
        self.seed_box.setToolTip("The same seed gives the same split on the same labels")
        split_row = QHBoxLayout()
        split_row.addWidget(self.splits_edit, 1)
        split_row.addWidget(QLabel("Seed"))
        split_row.addWidget(self.seed_box)

        self.identifiers_check = QCheckBox("Include patient identifiers")
        self.identifiers_check.setToolTip("Patient ID, name, birth date, accession number and original UIDs; "
                                          "DICOM copies not de-identified. Asks for confirmation.")
        self.identifiers_check.setChecked(False)
        self.identifiers_check.toggled.connect(self._on_identifiers_toggled)
        self.shift_dates_check = QCheckBox("Shift dates per patient (keep intervals)")
        self.shift_dates_check.setToolTip("De-identified DICOM copies keep their dates shifted by a number of days "
                                          "that is the same for all of a patient's scans, instead of losing them")
        self.clean_descriptors_check = QCheckBox("Keep descriptions, cleaned")
        self.clean_descriptors_check.setToolTip("Study / series / protocol descriptions are kept with names, IDs, "
                                                "dates and long numbers removed from them")
        self.burned_in_check = QCheckBox("Include images that may show burned-in text")
        self.burned_in_check.setToolTip("By default images with Burned In Annotation = YES, or ultrasound, secondary "
                                        "capture, angiography, endoscopy and photographs without an explicit NO, are "
                                        "left out: text in the pixels (a name, a date) cannot be removed")
        deid_row = QVBoxLayout()
        deid_row.setSpacing(2)
        for w in (self.shift_dates_check, self.clean_descriptors_check, self.burned_in_check):
            deid_row.addWidget(w)
        self.deid_options = QWidget()
        self.deid_options.setLayout(deid_row)
        deid_row.setContentsMargins(0, 0, 0, 0)
        privacy = QLabel(PRIVACY_OFF)
        privacy.setObjectName("Muted")
        privacy.setWordWrap(True)
        privacy.setMinimumWidth(480)
        self.privacy_note = privacy

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.addRow("Format", self.format_box)
        form.addRow("DICOM images as", self.dicom_box)
        form.addRow("Into folder", out_row)
        form.addRow("Splits (%)", split_row)
        split_hint = QLabel("train, val, test (or train, test) · stratified by class · no patient in two splits")
        split_hint.setObjectName("Muted")
        form.addRow("", split_hint)
        form.addRow("Privacy", self.identifiers_check)
        form.addRow("", privacy)
        form.addRow("De-identification", self.deid_options)
        self.form = form

        self.validation = QLabel("")
        self.validation.setStyleSheet(ERROR_STYLE)
        self.validation.setWordWrap(True)
        self.validation.setVisible(False)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.bar.setVisible(False)
        self.status = QLabel("")
        self.status.setObjectName("Muted")
        self.status.setWordWrap(True)

        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.start_export)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addSpacing(6)
        layout.addLayout(form)
        layout.addWidget(self.validation)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self._on_format_changed()
        self.validate()
        self.resize(max(self.minimumWidth(), self.sizeHint().width()), self.sizeHint().height())

    # ------------------------------------------------------------------ fields
    def set_format(self, key: str) -> None:
        self.format_box.setCurrentIndex(self.format_box.findData(key))

    def _on_format_changed(self, _i: int = 0) -> None:
        folders = self.format_box.currentData() == "folders"
        self.dicom_box.setEnabled(folders)
        self.form.setRowVisible(self.dicom_box, folders)  # only image folders hold DICOM copies
        if not folders:
            self.dicom_box.setCurrentIndex(0)
        self.form.setRowVisible(self.deid_options, folders and not self.identifiers_check.isChecked())
        self.resize(self.width(), max(self.height(), self.sizeHint().height()))

    def _on_browse_clicked(self) -> None:
        current = Path(self.out_edit.text().strip() or self.project_path)
        start = str(current.parent if not current.is_dir() else current)
        folder = QFileDialog.getExistingDirectory(self, "Export into which folder? (a new sub-folder is made if "
                                                  "it is not empty)", start)
        if not folder:
            return
        chosen = Path(folder)
        if any(chosen.iterdir()):
            chosen = chosen / default_out(self.project_path).name
        self.out_edit.setText(str(chosen))

    def _on_identifiers_toggled(self, on: bool) -> None:
        if on and not confirm_identifiers(self):
            self.identifiers_check.blockSignals(True)
            self.identifiers_check.setChecked(False)
            self.identifiers_check.blockSignals(False)
            on = False
        self.privacy_note.setText(PRIVACY_ON if on else PRIVACY_OFF)
        self.privacy_note.setStyleSheet(WARNING_STYLE if on else "")
        self._on_format_changed()

    # ------------------------------------------------------------------ validation
    def options(self):
        """The ExportOptions the fields ask for; raises InputFileError with a message for the user."""
        from aldesk.app.export import ExportOptions, parse_splits
        from aldesk.errors import InputFileError

        text = self.splits_edit.text().strip()
        try:
            splits = parse_splits(text)
        except InputFileError as exc:
            raise InputFileError(str(exc).replace(f"--splits {text!r}", f"Splits {text!r}", 1)) from None
        return ExportOptions(format=self.format_box.currentData(), splits=splits, seed=self.seed_box.value(),
                             include_identifiers=self.identifiers_check.isChecked(),
                             dicom_as=self.dicom_box.currentData(),
                             shift_dates=self.shift_dates_check.isChecked(),
                             clean_descriptors=self.clean_descriptors_check.isChecked(),
                             include_burned_in=self.burned_in_check.isChecked())

    def problem(self) -> str:
        """What stops the export now ("" when nothing does)."""
        from aldesk.errors import InputFileError

        out = self.out_edit.text().strip()
        if not out:
            return "Choose a folder to export into."
        path = Path(out).expanduser()
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            return f"{path} already exists and is not empty; choose a new folder for the export."
        if path.resolve() == Path(self.project_path).resolve() or Path(self.project_path).resolve() in path.resolve().parents:
            return "Export into a folder outside the project folder."
        try:
            self.options()
        except InputFileError as exc:
            return str(exc)
        return ""

    def validate(self, *_args) -> bool:
        problem = self.problem()
        self.validation.setText(problem)
        self.validation.setVisible(bool(problem))
        self.export_button.setEnabled(not problem and self.worker is None)
        return not problem

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self.worker is not None and not self.worker.done

    def start_export(self) -> bool:
        """Validate, then run the export in a worker. False (nothing started) when the fields are invalid."""
        if self.running or not self.validate():
            return False
        options = self.options()
        out = str(Path(self.out_edit.text().strip()).expanduser())
        self._set_form_enabled(False)
        self.bar.setRange(0, 0)
        self.bar.setVisible(True)
        self.status.setText(f"Exporting to {out}…")
        self.cancel_button.setText("Stop")
        self.worker = run_in_pool(export_body(self.project_path, out, options), on_finished=self._on_worker_finished,
                                  on_failed=self._on_worker_failed, on_progress=self._on_worker_progress,
                                  on_cancelled=self._on_worker_cancelled)
        return True

    def _set_form_enabled(self, on: bool) -> None:
        for w in (self.format_box, self.out_edit, self.browse_button, self.splits_edit, self.seed_box,
                  self.identifiers_check, self.deid_options):
            w.setEnabled(on)
        self.dicom_box.setEnabled(on and self.format_box.currentData() == "folders")
        self.export_button.setEnabled(on)

    def _on_worker_progress(self, done: int, total: int, message: str) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(done)
            self.status.setText(f"{done:,} of {total:,} {message}")

    def _finish_run(self) -> None:
        self.worker = None
        self.bar.setVisible(False)
        self.cancel_button.setText("Cancel")
        self.cancel_button.setEnabled(True)
        self._set_form_enabled(True)

    def _on_worker_finished(self, result) -> None:
        self.result = result
        self.worker = None
        self.export_done.emit(result)
        self.accept()

    def _on_worker_failed(self, exc: BaseException) -> None:
        self.error = exc
        self._finish_run()
        self.validate()
        self.status.setText("The export failed; nothing was written.")
        report(self.errors, "Export failed", exc)
        self.export_failed.emit(exc)

    def _on_worker_cancelled(self) -> None:
        self._finish_run()
        self.validate()
        self.status.setText("Export stopped; nothing was written.")
        self.export_cancelled.emit()

    def reject(self) -> None:
        if self.running:  # Stop / Esc while exporting: ask the worker to stop, keep the dialog open
            self.worker.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Stopping…")
            return
        super().reject()


def summary_lines(result) -> list[str]:
    """The export summary as plain lines (counts, splits, identifiers), for the dialog and the log."""
    counts = result.manifest.get("counts", {})
    lines = ["Per class: " + ", ".join(f"{k} {v:,}" for k, v in counts.get("per_class", {}).items())]
    methods = counts.get("per_method", {})
    if methods:
        lines.append("Final label by: " + ", ".join(f"{k} {v:,}" for k, v in methods.items()))
    for split, per in counts.get("per_split", {}).items():
        patients = counts.get("patients_per_split", {}).get(split, 0)
        lines.append(f"Split {split}: {sum(per.values()):,} scans, {patients:,} patients ("
                     + ", ".join(f"{k} {v:,}" for k, v in per.items()) + ")")
    excluded = counts.get("excluded", {})
    left_out = [f"{excluded[k]:,} {what}" for k, what in (("disputed", "disputed (no final label)"),
                                                          ("no_class_read", "read as unsure/skip only"))
                if excluded.get(k)]
    if excluded.get("burned_in"):
        left_out.append(f"{excluded['burned_in']:,} images that may show burned-in text")
    if left_out:
        lines.append("Left out: " + ", ".join(left_out))
    burned = result.manifest.get("burned_in_left_out") or []
    if burned:
        reasons: dict[str, list[int]] = {}
        for x in burned:
            reasons.setdefault(x["reason"], []).append(x["scan_id"])
        for reason, ids in reasons.items():
            shown = ", ".join(str(i) for i in ids[:8]) + (", …" if len(ids) > 8 else "")
            lines.append(f"  burned-in text ({reason}): scans {shown}")
    lines.append("Patient identifiers: " + ("INCLUDED (as asked; recorded in manifest.json)"
                                            if result.manifest.get("identifiers_included") else
                                            "none (pseudonymous patient key only; DICOM de-identified)"))
    return lines


class ExportSummaryDialog(QDialog):
    """What was exported and where, the warnings, and a button that opens the folder."""

    def __init__(self, result, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export finished")
        self.setMinimumWidth(560)
        self.result = result
        head = QLabel(f"Exported {result.scans:,} labelled scans")
        head.setObjectName("PanelTitle")
        where = QLabel(f"{result.out}<br><span style='color:#8d939b'>{result.manifest.get('index', '')} and "
                       "manifest.json</span>")
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        where.setWordWrap(True)
        self.details = QLabel("\n".join(summary_lines(result)))
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        layout.addWidget(where)
        layout.addWidget(self.details)
        self.warnings = QLabel("\n".join(f"⚠ {for_the_gui(w)}" for w in result.warnings))
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet(WARNING_STYLE)
        self.warnings.setVisible(bool(result.warnings))
        layout.addWidget(self.warnings)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.open_button = buttons.addButton("Open folder", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.clicked.connect(self.open_folder)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)

    def open_folder(self) -> bool:
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.result.out)))
