"""File-menu actions that move labels out of and into a project: export the labelled set, write an
annotation package, merge one (the GUI side of ``aldesk export`` and ``aldesk package export|import``).

Each runs its use case in a worker on its own Project connection behind a small progress dialog and
reports failures through the window's ErrorReporter, whose text is the use case's own message
(``PackageError`` says what is wrong with the file and that nothing was changed). A package from
another project is merged only once the lead added that project's key (File ▸ Merge offers to, the
GUI side of ``aldesk package trust PROJECT --add-key FILE``); rows a package may not change are
listed in the summary. A hand-out is de-identified or identified by an explicit choice, and an
identified one is confirmed after a warning.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
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
    QVBoxLayout,
    QWidget,
)

from aldesk.ui.export_dialog import for_the_gui, report
from aldesk.ui.workers import run_in_pool

PACKAGE_FILTER = "aldesk annotation packages (*.aldpkg);;All files (*)"


@dataclass
class OtherProject:
    """The package is signed under no key this project holds (another project): merging needs the
    lead to add that project's key file first."""

    path: str
    package_project: str
    this_project: str
    message: str = ""


def _has_project(window, title: str) -> bool:
    """Every File-menu action here needs an open project; say so once, the same way, when there is none."""
    if window.project is None:
        window.errors.report(title, "Open a project first (File menu).")
        return False
    return True


# ------------------------------------------------------------------ worker bodies (no Qt)

def package_export_body(project_path: str, out: str, annotator: str | None, since: str | None):
    def body(progress, should_stop):
        from aldesk.app.packages import export_package
        from aldesk.store import Project

        with Project.open(project_path) as project:
            return export_package(project, out, annotator=annotator, since=since)

    return body


def package_import_body(project_path: str, package: str, key_file: str | None = None):
    """Merge ``package`` (after trusting the project key in ``key_file``, if given); returns ImportResult,
    or OtherProject when the package comes from a project this one does not trust (nothing changed)."""

    def body(progress, should_stop):
        from aldesk.app.packages import UntrustedPackageError, add_trust_key, import_package
        from aldesk.store import Project

        with Project.open(project_path) as project:
            if key_file:
                add_trust_key(project, key_file)
            try:
                return import_package(project, package, progress=progress, should_stop=should_stop)
            except UntrustedPackageError as exc:
                return OtherProject(package, exc.project_name or exc.project_id, project.name, str(exc))

    return body


# ------------------------------------------------------------------ a busy dialog
class BusyDialog(QDialog):
    """Modal, indeterminate progress for a short job that cannot be interrupted (a merge is one
    transaction). After ``exec()``: ``result`` or ``error`` is set. ``done`` fires either way."""

    done = Signal()

    def __init__(self, title: str, text: str, body, parent: QWidget | None = None, *,
                 note: str = "All or nothing: if anything is wrong, the project is left unchanged.",
                 cancellable: bool = False):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(460)
        self.result = None
        self.error: BaseException | None = None
        self.cancelled = False
        self.reported = False
        label = QLabel(text)
        label.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.note = QLabel(note)
        self.note.setObjectName("Muted")
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addWidget(self.bar)
        layout.addWidget(self.note)
        self.cancellable = cancellable
        if cancellable:
            buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
            self.stop_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)
            self.stop_button.setText("Stop")
            buttons.rejected.connect(self.reject)
            layout.addWidget(buttons)
        self.worker = run_in_pool(body, on_finished=self._on_worker_finished, on_failed=self._on_worker_failed,
                                  on_progress=self._on_worker_progress, on_cancelled=self._on_worker_cancelled)

    def _on_worker_progress(self, done: int, total: int, message: str) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(done)
            self.bar.setFormat(f"%v of %m {message}")

    def _on_worker_cancelled(self) -> None:
        self.cancelled, self.reported = True, True
        self.done.emit()
        self.accept()

    def _on_worker_finished(self, result) -> None:
        self.result, self.reported = result, True
        self.done.emit()
        self.accept()

    def _on_worker_failed(self, exc: BaseException) -> None:
        self.error, self.reported = exc, True
        self.done.emit()
        self.accept()

    def reject(self) -> None:
        if self.worker.done:
            super().reject()
        elif self.cancellable:  # Stop / Esc: ask the job to stop; the dialog closes when it has
            self.worker.cancel()
            self.stop_button.setEnabled(False)
            self.note.setText("Stopping…")
        # else: Esc while an uninterruptible job runs is ignored; it ends in moments and must report


def run_busy(parent: QWidget | None, title: str, text: str, body, **kwargs):
    """Run ``body`` behind a BusyDialog; returns (result, error); both None when the user stopped it."""
    dlg = BusyDialog(title, text, body, parent, **kwargs)
    if not dlg.reported:
        dlg.exec()
    return dlg.result, dlg.error


# ------------------------------------------------------------------ export the labelled set
def export_labelled_set_dialog(window) -> None:
    """File ▸ Export labelled set…: options, cancellable export, then the summary with Open folder."""
    from aldesk.app.labelling import final_labels
    from aldesk.ui.export_dialog import ExportDialog, ExportSummaryDialog

    if not _has_project(window, "Export"):
        return
    try:
        n = len(final_labels(window.project))
    except Exception:  # noqa: BLE001 - only a hint in the dialog; the export reports real problems
        n = None
    if n == 0:
        window.errors.report("Nothing to export", "No scan has a final label yet. Label some scans (or merge the "
                             "readers' packages) first.")
        return
    dlg = ExportDialog(window.project.path, window, errors=window.errors, classes=window.project.classes,
                       n_labelled=n)
    if dlg.exec() == QDialog.DialogCode.Accepted and dlg.result is not None:
        window.statusBar().showMessage(f"Exported {dlg.result.scans:,} scans to {dlg.result.out}", 10_000)
        ExportSummaryDialog(dlg.result, window).exec()


# ------------------------------------------------------------------ annotation packages
class PackageExportDialog(QDialog):
    """Where to write the package, and whose labels: all readers or one, optionally since a date."""

    def __init__(self, project_path: str | Path, readers: list[str], parent: QWidget | None = None,
                 *, reader: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export annotation package")
        self.setMinimumWidth(560)
        project_path = Path(project_path)
        intro = QLabel("Writes the labels, notes and reviews of this copy (no images) to one .aldpkg file. "
                       "Merge it into the lead's project with File ▸ Merge annotation package…")
        intro.setWordWrap(True)
        intro.setObjectName("Muted")
        who = reader if reader in readers else None
        stem = f"{project_path.name}-{who or 'all'}-{time.strftime('%Y%m%d-%H%M')}.aldpkg"
        self.out_edit = QLineEdit(str(project_path.parent / stem))
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.out_edit, 1)
        row.addWidget(browse)
        self.reader_box = QComboBox()
        self.reader_box.addItem("All readers", None)
        for name in readers:
            self.reader_box.addItem(name, name)
        if who:
            self.reader_box.setCurrentIndex(self.reader_box.findData(who))
        self.since_edit = QLineEdit()
        self.since_edit.setPlaceholderText("e.g. 2026-01-31 (empty: every label)")
        self.validation = QLabel("")
        self.validation.setStyleSheet("color: #e0675f;")
        self.validation.setWordWrap(True)
        self.validation.setVisible(False)
        form = QFormLayout()
        form.addRow("Package file", row)
        form.addRow("Labels of", self.reader_box)
        form.addRow("Given since", self.since_edit)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.addButton("Export package", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.validation)
        layout.addWidget(buttons)

    def _on_browse_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Write annotation package", self.out_edit.text(), PACKAGE_FILTER)
        if path:
            self.out_edit.setText(path if path.endswith(".aldpkg") else path + ".aldpkg")

    def values(self) -> tuple[str, str | None, str | None]:
        """(out, annotator or None, since or None); raises InputFileError with a message for the user."""
        from aldesk.app.packages import parse_since
        from aldesk.errors import InputFileError

        out = self.out_edit.text().strip()
        if not out:
            raise InputFileError("Choose where to write the package.")
        since = self.since_edit.text().strip() or None
        try:
            parse_since(since)
        except InputFileError as exc:
            raise InputFileError(str(exc).replace("--since", "Given since", 1)) from None
        return str(Path(out).expanduser()), self.reader_box.currentData(), since

    def accept(self) -> None:
        from aldesk.errors import InputFileError

        try:
            out, _, _ = self.values()
        except InputFileError as exc:
            self.validation.setText(str(exc))
            self.validation.setVisible(True)
            return
        if Path(out).exists() and QMessageBox.question(
                self, "Replace package?", f"{out} exists. Replace it?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No) != QMessageBox.StandardButton.Yes:
            return
        super().accept()


def export_package_dialog(window, *, dialog: PackageExportDialog | None = None):
    """File ▸ Export annotation package…; returns the PackageSummary (None if cancelled or failed)."""
    if not _has_project(window, "Export package"):
        return None
    readers = [name for name, _ in window.project.labels.annotators()]
    dlg = dialog or PackageExportDialog(window.project.path, readers, window, reader=None)
    if dialog is None and dlg.exec() != QDialog.DialogCode.Accepted:
        return None
    out, annotator, since = dlg.values()
    summary, error = run_busy(window, "Exporting annotation package", f"Writing {Path(out).name}…",
                              package_export_body(str(window.project.path), out, annotator, since))
    if error is not None:
        report(window.errors, "Package not written", error)
        return None
    text = (f"Wrote {summary.labels:,} labels ({summary.current:,} current) on {summary.scans:,} scans by "
            f"{', '.join(summary.annotators) or 'nobody'}"
            + (f" and {summary.reviews:,} reviews" if summary.reviews else "") + f" to\n{summary.path}")
    QMessageBox.information(window, "Annotation package written", text)
    window.statusBar().showMessage(f"Package written: {summary.path}", 10_000)
    return summary


def merge_text(result) -> str:
    c = result.counts
    parts = [f"{c.added:,} labels added", f"{c.unchanged:,} already here"]
    if c.current_added or c.current_changed or c.current_retracted:
        parts.append(f"current reads {c.current_added:,} new, {c.current_changed:,} changed, "
                     f"{c.current_retracted:,} retracted")
    if c.history_updated:
        parts.append(f"{c.history_updated:,} history links updated")
    if c.resolved:
        parts.append(f"{c.resolved:,} conflicting current labels resolved (newest wins, history kept)")
    if c.adjudications_added:
        parts.append(f"{c.adjudications_added:,} adjudications added")
    if c.read_requests_added:
        parts.append(f"{c.read_requests_added:,} read requests added")
    text = f"Merged {Path(result.path).name} from {result.sender.name}: " + ", ".join(parts) + "."
    if c.annotators_added:
        text += "\nNew readers: " + ", ".join(f"{n} ({r})" for n, r in sorted(c.annotators_added.items())) + "."
    if not c.changed_anything() and not result.rejected:
        text += "\nNothing new: this package was merged before (merging again changes nothing)."
    if result.rejected:
        shown = result.rejected[:20]
        text += (f"\n\n⚠ {len(result.rejected):,} rows were REJECTED (not merged) because the package may not change "
                 "them:\n" + "\n".join(f"• line {r['line']} of {r['member']}: {r['reason']}" for r in shown))
        if len(result.rejected) > len(shown):
            text += f"\n… and {len(result.rejected) - len(shown):,} more (all listed by `aldesk package import --json`)."
    return text


def import_package_dialog(window, path: str | None = None):
    """File ▸ Merge annotation package…; returns the ImportResult (None if cancelled or refused)."""
    if not _has_project(window, "Merge package"):
        return None
    if path is None:
        path, _ = QFileDialog.getOpenFileName(window, "Merge an annotation package into this project",
                                              str(Path(window.project.path).parent), PACKAGE_FILTER)
        if not path:
            return None
    project_path = str(window.project.path)
    title, text = "Merging annotation package", f"Merging {Path(path).name} into {window.project.name}…"
    result, error = run_busy(window, title, text, package_import_body(project_path, path))
    if isinstance(result, OtherProject):
        answer = QMessageBox.question(
            window, "Package from another project",
            f"{Path(path).name} was made from the project “{result.package_project}”, which “{result.this_project}” "
            "does not trust: anyone could have written it.\n\nTo merge it, add the key file that project's lead "
            "wrote for you (aldesk package trust THEIR_PROJECT --export-key FILE). Choose the key file now?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return None
        key_file, _ = QFileDialog.getOpenFileName(window, f"Key file of “{result.package_project}”",
                                                  str(Path(path).parent), "aldesk package keys (*.json *.key);;All files (*)")
        if not key_file:
            return None
        result, error = run_busy(window, title, text, package_import_body(project_path, path, key_file))
        if isinstance(result, OtherProject):
            error, result = ValueError(result.message), None
    if error is not None:
        report(window.errors, "Package not merged — the project is unchanged", error)
        return None
    QMessageBox.information(window, "Annotation package merged", merge_text(result))
    refresh_after_merge(window)
    return result


def refresh_after_merge(window) -> None:
    """Show the merged labels: rebuild the work list and queue, re-show the scan, re-rank in the background."""
    from aldesk.app import worklist as worklists

    if window.project is None:
        return
    window.worklist = worklists.plain_worklist(window.project, window.annotator)
    window.reload_queue()
    if window.current_scan_id is not None:
        window.show_scan(window.current_scan_id)
    else:
        window.show_next()
    window.request_retrain("labels merged")


# ------------------------------------------------------------------ hand-out
def use_handout_reader(window, project) -> str | None:
    """A hand-out copy knows its reader (issue 13): when ``project`` is one, the window reads as that
    reader, saying so if it was set to another name, and returns the name; None for a lead's project.
    The workstation's remembered name is left as it is (it is the user's, for their other projects)."""
    from aldesk.app.handout import handout_reader

    reader = handout_reader(project)
    if reader is not None and reader != window.annotator:
        previous, window.annotator = window.annotator, reader
        window.statusBar().showMessage(f"This copy was handed out to {reader}: reads are recorded as {reader}, "
                                       f"not {previous}.", 20_000)
    return reader


def refuse_other_reader(window) -> bool:
    """True (after saying why) when the open project is a hand-out copy: its reads are recorded under
    its reader only, so Switch reader is not offered there."""
    from aldesk.app.handout import handout_reader

    reader = handout_reader(window.project) if window.project is not None else None
    if reader is None:
        return False
    window.errors.report("Reader fixed by the hand-out",
                         f"This copy was handed out to {reader}: every read in it is recorded as {reader} and sent "
                         "back to the lead under that name. Another reader needs their own hand-out.")
    return True


def handout_body(project_path: str, out: str, annotator: str, scans: int | None, with_scans: bool,
                 deidentified: bool):
    def body(progress, should_stop):
        from aldesk.app.handout import handout
        from aldesk.store import Project

        with Project.open(project_path) as project:
            return handout(project, out, annotator=annotator, scans=scans, with_scans=with_scans,
                           deidentified=deidentified, progress=progress, should_stop=should_stop)

    return body


class HandoutDialog(QDialog):
    """Prepare a reader's offline copy: who, where, how many scans, with or without the scan files."""

    def __init__(self, project_path: str | Path, readers: list[str], parent: QWidget | None = None):
        from PySide6.QtWidgets import QCheckBox, QSpinBox

        super().__init__(parent)
        self.setWindowTitle("Hand out to a reader")
        self.setMinimumWidth(600)
        self.project_path = Path(project_path)
        intro = QLabel("Makes a copy of this project for a reader working on an offline workstation. When reading "
                       "is blind, the copy holds no other reader's labels and no model. The reader labels in the "
                       "copy, then File ▸ Export annotation package…; you bring their work back with File ▸ Merge "
                       "annotation package…")
        intro.setWordWrap(True)
        intro.setObjectName("Muted")
        self.reader_box = QComboBox()
        self.reader_box.setEditable(True)
        self.reader_box.addItems(readers)
        self.reader_box.setCurrentText("")
        self.reader_box.lineEdit().setPlaceholderText("the reader's name, e.g. dr_lee")
        self.reader_box.currentTextChanged.connect(self._on_reader_changed)
        self.out_edit = QLineEdit()
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.out_edit, 1)
        row.addWidget(browse)
        self.limit_check = QCheckBox("Only the next")
        self.scans_box = QSpinBox()
        self.scans_box.setRange(1, 1_000_000)
        self.scans_box.setValue(200)
        self.scans_box.setEnabled(False)
        self.limit_check.toggled.connect(self.scans_box.setEnabled)
        limit = QHBoxLayout()
        limit.addWidget(self.limit_check)
        limit.addWidget(self.scans_box)
        limit.addWidget(QLabel("scans of the reader's queue"))
        self.limit_check.setToolTip("Unchecked: every scan of the project")
        limit.addStretch(1)
        from PySide6.QtWidgets import QButtonGroup, QRadioButton

        self.deid_radio = QRadioButton("De-identified: copy the scans de-identified, under pseudonymous names")
        self.ident_radio = QRadioButton("Identified: the original scans, with every patient identifier they hold")
        self.identity_group = QButtonGroup(self)
        for button in (self.deid_radio, self.ident_radio):
            self.identity_group.addButton(button)     # neither is checked: the lead chooses
        self.identity_group.buttonToggled.connect(self._on_identity_toggled)
        self.copy_check = QCheckBox("Copy the scan files too (the workstation cannot reach the data)")
        self.validation = QLabel("")
        self.validation.setStyleSheet("color: #e0675f;")
        self.validation.setWordWrap(True)
        self.validation.setVisible(False)
        form = QFormLayout()
        form.addRow("Reader", self.reader_box)
        form.addRow("Into folder", row)
        form.addRow("Scans", limit)
        form.addRow("Carries", self.deid_radio)
        form.addRow("", self.ident_radio)
        form.addRow("", self.copy_check)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        buttons.addButton("Hand out", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.validation)
        layout.addWidget(buttons)
        self._auto_out = ""
        self._on_reader_changed("")

    def _on_identity_toggled(self, *_args) -> None:
        identified = self.ident_radio.isChecked()
        self.copy_check.setEnabled(identified)      # a de-identified hand-out always carries its scans
        self.copy_check.setChecked(self.copy_check.isChecked() and identified)

    def _on_reader_changed(self, name: str) -> None:
        if self.out_edit.text() in ("", self._auto_out):  # follow the name until the user picks a folder
            who = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name.strip()) or "reader"
            self._auto_out = str(self.project_path.parent / f"{self.project_path.name}-handout-{who}")
            self.out_edit.setText(self._auto_out)

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Hand out into which (new or empty) folder?",
                                                  str(self.project_path.parent))
        if folder:
            self.out_edit.setText(folder)

    def values(self) -> tuple[str, str, int | None, bool, bool]:
        """(out, reader, scans or None, copy files, de-identified); raises InputFileError with a message
        for the user."""
        from aldesk.errors import InputFileError

        reader = self.reader_box.currentText().strip()
        if not reader:
            raise InputFileError("Give the reader's name (as they will sign in on the workstation).")
        out = self.out_edit.text().strip()
        if not out:
            raise InputFileError("Choose a new folder for the hand-out.")
        path = Path(out).expanduser()
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise InputFileError(f"{path} already exists and is not empty; choose a new folder for the hand-out.")
        if not (self.deid_radio.isChecked() or self.ident_radio.isChecked()):
            raise InputFileError("Choose what the hand-out carries: de-identified or identified scans.")
        return str(path), reader, self.scans_box.value() if self.limit_check.isChecked() else None, \
            self.copy_check.isChecked(), self.deid_radio.isChecked()

    def accept(self) -> None:
        from aldesk.errors import InputFileError

        try:
            self.values()
        except InputFileError as exc:
            self.validation.setText(str(exc))
            self.validation.setVisible(True)
            return
        if self.ident_radio.isChecked() and QMessageBox.warning(
                self, "Identified hand-out",
                "This hand-out will carry patient identifiers (the original scans or their paths) out of the "
                "project. Keep it on an encrypted disk and hand it over in person.\n\nMake an identified hand-out?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No) != QMessageBox.StandardButton.Yes:
            return
        super().accept()


def handout_dialog(window, *, dialog: HandoutDialog | None = None):
    """File ▸ Hand out to a reader…; returns the HandoutResult (None if cancelled, stopped or failed)."""
    if not _has_project(window, "Hand out"):
        return None
    readers = [name for name, _ in window.project.labels.annotators()]
    dlg = dialog or HandoutDialog(window.project.path, readers, window)
    if dialog is None and dlg.exec() != QDialog.DialogCode.Accepted:
        return None
    out, reader, scans, with_scans, deidentified = dlg.values()
    result, error = run_busy(window, "Preparing the hand-out", f"Preparing {reader}'s copy in {out}…",
                             handout_body(str(window.project.path), out, reader, scans, with_scans, deidentified),
                             note="Stop at any time: the folder appears whole or not at all.",
                             cancellable=True)
    if error is not None:
        report(window.errors, "Hand-out not prepared", error)
        return None
    if result is None:
        window.statusBar().showMessage("Hand-out stopped", 8000)
        return None
    from aldesk.app.handout import IDENTIFIED_WARNING

    text = (f"{result.annotator}'s copy is ready in\n{result.out}\n\n{result.scans:,} scans ({result.selection})"
            + (f", {result.files_copied:,} files copied" if result.files_copied else "")
            + (". Blind: other readers' labels and the model were left out." if result.blind else ".")
            + ("\nDe-identified scans under pseudonymous names." if result.deidentified else
               "\n⚠ IDENTIFIED: the copy carries patient identifiers.")
            + "\n\nOn the workstation: File ▸ Open project… on that folder, label, then File ▸ Export annotation "
              "package…. Back here: File ▸ Merge annotation package….")
    if result.warnings:
        text += "\n\n" + "\n".join(f"⚠ {for_the_gui(w)}" for w in result.warnings if w != IDENTIFIED_WARNING)
    QMessageBox.information(window, "Hand-out ready", text)
    return result
