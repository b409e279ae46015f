"""The export dialog and the annotation-package menu actions, driven like a user would (offscreen)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from tests.app.conftest import write_dicom, write_png

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "resources" / "screenshots"
CLASSES = ["normal", "pneumonia"]


def labelled_project(tmp_path: Path, name: str = "study", *, n: int = 12, reader: str = "dr_a") -> Path:
    """``n`` scans (PNGs and two DICOMs), every one read by ``reader``: alternately normal / pneumonia."""
    import numpy as np

    from aldesk.app.importer import import_paths
    from aldesk.app.labelling import record_label
    from aldesk.store import Project

    folder = tmp_path / f"{name}-scans"
    for i in range(n - 2):
        write_png(folder / f"img_{i:02d}.png", seed=i)
    rng = np.random.default_rng(7)
    for k in range(2):
        write_dicom(folder / f"dcm_{k}.dcm", rng.integers(0, 4000, (32, 32)).astype(np.uint16),
                    patient_id=f"PID-SECRET-{k}")
    path = tmp_path / name
    with Project.create(path, CLASSES) as project:
        summary = import_paths(project, [folder], jobs=1)
        assert summary.imported == n, summary.problems
        for i, sid in enumerate(project.scans.ids().tolist()):
            record_label(project, sid, reader, CLASSES[i % 2])
    return path


def current_labels(path: Path) -> set[tuple[int, str, str]]:
    from aldesk.store import Project

    with Project.open(path) as project:
        return {(l.scan_id, l.annotator, l.value) for l in project.labels.current()}


@pytest.fixture
def study(tmp_path) -> Path:
    return labelled_project(tmp_path)


def make_dialog(qtbot, project_path, out):
    from aldesk.ui.export_dialog import ExportDialog

    dlg = ExportDialog(project_path)
    qtbot.addWidget(dlg)
    dlg.out_edit.setText(str(out))
    return dlg


def test_the_dialog_exports_a_csv_with_splits_and_shows_a_summary(qtbot, study, tmp_path):
    from aldesk.ui.export_dialog import ExportSummaryDialog

    out = tmp_path / "exports" / "set1"
    dlg = make_dialog(qtbot, study, out)
    assert dlg.format_box.currentData() == "csv" and not dlg.identifiers_check.isChecked()
    assert not dlg.dicom_box.isEnabled()          # only meaningful for image folders
    dlg.splits_edit.setText("70,15,15")
    dlg.seed_box.setValue(3)
    assert dlg.validate() and dlg.export_button.isEnabled()
    with qtbot.waitSignal(dlg.export_done, timeout=60_000) as blocker:
        dlg.export_button.click()
    result = blocker.args[0]
    assert dlg.result is result and result.scans == 12
    with open(out / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {"scan_id", "scan_key", "label", "split"} <= set(rows[0]) and "path" not in rows[0]
    assert len(rows) == 12
    assert {r["split"] for r in rows} <= {"train", "val", "test"} and {r["label"] for r in rows} == set(CLASSES)
    assert "patient_id" not in rows[0] and "PID-SECRET" not in (out / "labels.csv").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["options"]["seed"] == 3 and manifest["identifiers_included"] is False

    summary = ExportSummaryDialog(result)
    qtbot.addWidget(summary)
    text = summary.details.text()
    assert "normal 6" in text and "pneumonia 6" in text and "Split train" in text and "none (pseudonymous" in text
    assert summary.warnings.isHidden() == (not result.warnings)
    assert summary.open_button.text() == "Open folder"


def test_folders_format_enables_the_dicom_choice(qtbot, study, tmp_path):
    dlg = make_dialog(qtbot, study, tmp_path / "f")
    dlg.set_format("folders")
    assert dlg.dicom_box.isEnabled()
    dlg.dicom_box.setCurrentIndex(dlg.dicom_box.findData("png"))
    assert dlg.options().format == "folders" and dlg.options().dicom_as == "png"
    dlg.set_format("json")
    assert not dlg.dicom_box.isEnabled() and dlg.options().dicom_as == "dicom"


def test_including_identifiers_needs_an_explicit_confirmation(qtbot, study, tmp_path, monkeypatch, message_boxes):
    dlg = make_dialog(qtbot, study, tmp_path / "ids")
    dlg.identifiers_check.click()                  # the question is answered with OK/closed: not a yes
    assert not dlg.identifiers_check.isChecked() and not dlg.options().include_identifiers
    assert message_boxes[-1][1] == "Include patient identifiers?"
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes))
    dlg.identifiers_check.click()
    assert dlg.identifiers_check.isChecked() and dlg.options().include_identifiers
    assert "WILL be written" in dlg.privacy_note.text()
    with qtbot.waitSignal(dlg.export_done, timeout=60_000) as blocker:
        dlg.start_export()
    assert blocker.args[0].manifest["identifiers_included"] is True
    header = (tmp_path / "ids" / "labels.csv").read_text().splitlines()[0]
    assert "patient_id" in header


@pytest.mark.parametrize("text", ["70,abc", "100", "70,-5,35", "1,2,3,4"])
def test_bad_splits_show_a_message_and_export_nothing(qtbot, study, tmp_path, text):
    out = tmp_path / "bad"
    dlg = make_dialog(qtbot, study, out)
    dlg.splits_edit.setText(text)
    assert not dlg.validation.isHidden() and dlg.validation.text().startswith("Splits")
    assert not dlg.export_button.isEnabled()
    assert dlg.start_export() is False and dlg.worker is None
    qtbot.wait(50)
    assert not out.exists() and dlg.result is None


def test_a_non_empty_folder_is_refused_before_anything_runs(qtbot, study, tmp_path):
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    dlg = make_dialog(qtbot, study, out)
    assert "not empty" in dlg.validation.text() and dlg.start_export() is False
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_an_export_failure_is_reported_once_and_the_dialog_stays_usable(qtbot, tmp_path, message_boxes):
    from aldesk.store import Project

    empty = tmp_path / "empty"
    Project.create(empty, CLASSES).close()
    dlg = make_dialog(qtbot, empty, tmp_path / "none")
    with qtbot.waitSignal(dlg.export_failed, timeout=30_000):
        dlg.start_export()
    assert message_boxes[-1][1] == "Export failed" and "nothing to export" in message_boxes[-1][2]
    assert dlg.export_button.isEnabled() and dlg.format_box.isEnabled() and not (tmp_path / "none").exists()


# ------------------------------------------------------------------ the File menu on the main window
@pytest.fixture
def open_window(qtbot):
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings

    windows = []

    def make(path, annotator="dr_b"):
        win = MainWindow(Settings(), annotator, path, retrain_on_open=False)
        qtbot.addWidget(win)
        windows.append(win)
        return win

    yield make
    for win in windows:
        win.retrainer.shutdown()
        win.close()


def test_file_menu_offers_export_and_package_actions(open_window, study):
    win = open_window(study)
    file_menu = win.menuBar().actions()[0].menu()
    texts = [a.text() for a in file_menu.actions()]
    assert {"&Export labelled set…", "Export annotation &package…", "&Merge annotation package…"} <= set(texts)


def test_package_export_then_merge_into_a_second_copy_merges_the_labels(qtbot, open_window, study, tmp_path,
                                                                       message_boxes):
    from aldesk.app.labelling import record_label
    from aldesk.store import Project
    from aldesk.ui import package_actions
    from aldesk.ui.package_actions import PackageExportDialog

    with Project.open(study) as master:                      # the lead hands out a copy to dr_b
        master.packages.copy_database(tmp_path / "site_b")
    with Project.open(tmp_path / "site_b") as site:
        ids = site.scans.ids().tolist()
        for sid in ids[:5]:
            record_label(site, sid, "dr_b", "pneumonia")
    expected = current_labels(tmp_path / "site_b")
    assert not expected <= current_labels(study)

    site_win = open_window(tmp_path / "site_b")
    pkg = tmp_path / "dr_b.aldpkg"
    dlg = PackageExportDialog(site_win.project.path, ["dr_a", "dr_b"], site_win, reader="dr_b")
    qtbot.addWidget(dlg)
    assert dlg.reader_box.currentData() == "dr_b"
    dlg.out_edit.setText(str(pkg))
    summary = package_actions.export_package_dialog(site_win, dialog=dlg)
    assert summary is not None and summary.labels == 5 and pkg.is_file()
    assert message_boxes[-1][1] == "Annotation package written"

    lead = open_window(study, annotator="dr_a")
    result = package_actions.import_package_dialog(lead, str(pkg))
    assert result is not None and result.counts.added == 5
    assert message_boxes[-1][1] == "Annotation package merged" and "5 labels added" in message_boxes[-1][2]
    assert current_labels(study) == expected                  # the lead now has dr_a's and dr_b's reads
    assert {l.annotator for l in lead.project.labels.current()} == {"dr_a", "dr_b"}

    again = package_actions.import_package_dialog(lead, str(pkg))   # merging twice changes nothing
    assert again.counts.added == 0 and "merged before" in message_boxes[-1][2]
    assert current_labels(study) == expected


def test_a_malformed_package_is_explained_and_the_project_is_unchanged(open_window, study, tmp_path, message_boxes):
    from aldesk.ui import package_actions

    fake = tmp_path / "notes.aldpkg"
    fake.write_text("these are my notes, not a package\n")
    before = current_labels(study)
    win = open_window(study)
    assert package_actions.import_package_dialog(win, str(fake)) is None
    icon, title, text = message_boxes[-1]
    assert title.startswith("Package not merged") and "not an aldesk package" in text
    assert current_labels(study) == before


def test_a_package_of_another_project_is_merged_only_once_its_key_is_added(open_window, tmp_path, monkeypatch,
                                                                           message_boxes):
    from PySide6.QtWidgets import QFileDialog

    from aldesk.app.packages import export_package, export_trust_key
    from aldesk.store import Project
    from aldesk.ui import package_actions

    one = labelled_project(tmp_path, "one", reader="dr_a")
    other = labelled_project(tmp_path, "other", reader="dr_c")       # same images, imported separately
    with Project.open(other) as project:
        export_trust_key(project, tmp_path / "other.key")            # the other lead hands this over once
        export_package(project, tmp_path / "c.aldpkg")
    before = current_labels(one)
    win = open_window(one)
    assert package_actions.import_package_dialog(win, str(tmp_path / "c.aldpkg")) is None   # declined
    assert message_boxes[-1][1] == "Package from another project" and "does not trust" in message_boxes[-1][2]
    assert current_labels(one) == before
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(tmp_path / "other.key"), "")))
    result = package_actions.import_package_dialog(win, str(tmp_path / "c.aldpkg"))
    assert result is not None and result.counts.added == 12 and result.sender.kind == "trusted"
    assert {a for _, a, _ in current_labels(one)} == {"dr_a", "dr_c"}


def test_screenshot_of_the_export_dialog(qtbot, study, tmp_path):
    from PySide6.QtWidgets import QApplication

    from aldesk.ui.export_dialog import ExportDialog
    from aldesk.ui.theme import apply_theme

    app = QApplication.instance()
    palette, sheet = app.palette(), app.styleSheet()
    apply_theme(app, "dark")
    dlg = ExportDialog(study, n_labelled=12)
    qtbot.addWidget(dlg)
    dlg.out_edit.setText(str(Path.home() / "exports" / "study-export-20260131-1400"))
    dlg.set_format("folders")  # shows the de-identification options
    dlg.show()
    qtbot.waitExposed(dlg)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        assert dlg.grab().save(str(SCREENSHOTS / "export_dialog.png"))
    finally:
        app.setStyleSheet(sheet)
        app.setPalette(palette)


def test_stopping_an_export_keeps_the_dialog_open_and_writes_nothing(qtbot, study, tmp_path, monkeypatch):
    import threading

    from aldesk.app.callbacks import check_stop
    from aldesk.ui import export_dialog

    started = threading.Event()

    def slow_body(project_path, out, options):
        def body(progress, should_stop):
            started.set()
            for i in range(2000):
                progress(i, 2000, "images")
                check_stop(should_stop, "export")
                threading.Event().wait(0.005)
            raise AssertionError("the stop request was not seen")
        return body

    monkeypatch.setattr(export_dialog, "export_body", slow_body)
    dlg = make_dialog(qtbot, study, tmp_path / "stopped")
    dlg.show()
    assert dlg.start_export() and not dlg.format_box.isEnabled() and dlg.cancel_button.text() == "Stop"
    assert started.wait(10)
    with qtbot.waitSignal(dlg.export_cancelled, timeout=10_000):
        dlg.cancel_button.click()                       # Stop: asks the worker, the dialog stays
        assert dlg.isVisible() and "Stopping" in dlg.status.text()
    assert dlg.isVisible() and "nothing was written" in dlg.status.text() and dlg.export_button.isEnabled()
    assert not (tmp_path / "stopped").exists()


def test_a_package_with_scans_this_project_lacks_says_to_import_them_first(open_window, study, tmp_path,
                                                                         message_boxes):
    from aldesk.app.importer import import_paths
    from aldesk.app.labelling import record_label
    from aldesk.app.packages import export_package
    from aldesk.store import Project
    from aldesk.ui import package_actions

    with Project.open(study) as master:
        master.packages.copy_database(tmp_path / "site")
    with Project.open(tmp_path / "site") as site:
        import_paths(site, [write_png(tmp_path / "extra" / "new.png", seed=99).parent], jobs=1)
        new_id = max(site.scans.ids().tolist())
        record_label(site, new_id, "dr_b", "normal")
        export_package(site, tmp_path / "site.aldpkg")
    before = current_labels(study)
    win = open_window(study)
    assert package_actions.import_package_dialog(win, str(tmp_path / "site.aldpkg")) is None
    _, title, text = message_boxes[-1]
    assert "not in this project" in text and "File ▸ Import folder…" in text and "Nothing was changed" in text
    assert current_labels(study) == before


def test_cli_hints_in_warnings_become_menu_entries(qtbot, study, tmp_path):
    from aldesk.ui.export_dialog import ExportSummaryDialog

    dlg = make_dialog(qtbot, study, tmp_path / "w")
    with qtbot.waitSignal(dlg.export_done, timeout=60_000) as blocker:
        dlg.start_export()
    result = blocker.args[0]
    assert any("aldesk train" in w for w in result.warnings)        # no model yet
    summary = ExportSummaryDialog(result)
    qtbot.addWidget(summary)
    assert "Model ▸ Retrain" in summary.warnings.text() and "aldesk train" not in summary.warnings.text()


def test_hand_out_then_merge_back_is_the_leads_round_trip(qtbot, open_window, study, tmp_path, message_boxes):
    from aldesk.app.labelling import record_label
    from aldesk.store import Project
    from aldesk.ui import package_actions
    from aldesk.ui.package_actions import HandoutDialog, PackageExportDialog

    lead = open_window(study, annotator="dr_a")
    dlg = HandoutDialog(lead.project.path, ["dr_a"], lead)
    qtbot.addWidget(dlg)
    dlg.reader_box.setCurrentText("dr_lee")
    assert dlg.out_edit.text().endswith("study-handout-dr_lee")      # follows the reader's name
    assert not dlg.scans_box.isEnabled()
    dlg.limit_check.setChecked(True)
    assert dlg.scans_box.isEnabled()
    dlg.limit_check.setChecked(False)                                 # every scan (all were read once already)
    dlg.accept()
    assert "de-identified or identified" in dlg.validation.text()     # the lead must choose
    dlg.deid_radio.setChecked(True)
    assert not dlg.copy_check.isEnabled()                             # de-identified scans are always copied
    result = package_actions.handout_dialog(lead, dialog=dlg)
    assert result is not None and result.scans == 12 and result.files_copied == 12 and result.blind
    assert result.deidentified and "De-identified scans" in message_boxes[-1][2]
    assert message_boxes[-1][1] == "Hand-out ready" and "File ▸ Merge annotation package" in message_boxes[-1][2]

    copy = Path(dlg.out_edit.text())
    with Project.open(copy) as site:                                  # dr_lee labels offline
        assert {l.annotator for l in site.labels.current()} <= {"dr_lee"}   # blind: no one else's labels
        for sid in site.scans.ids().tolist()[:4]:
            record_label(site, sid, "dr_lee", "pneumonia")
    site_win = open_window(copy, annotator="dr_lee")
    pkg_dialog = PackageExportDialog(site_win.project.path, ["dr_lee"], site_win, reader="dr_lee")
    qtbot.addWidget(pkg_dialog)
    pkg_dialog.out_edit.setText(str(tmp_path / "lee.aldpkg"))
    assert package_actions.export_package_dialog(site_win, dialog=pkg_dialog).labels == 4
    merged = package_actions.import_package_dialog(lead, str(tmp_path / "lee.aldpkg"))
    assert merged is not None and merged.counts.added == 4
    assert sum(a == "dr_lee" for _, a, _ in current_labels(study)) == 4


def test_hand_out_needs_a_reader_and_a_new_folder(qtbot, open_window, study, tmp_path):
    from aldesk.ui.package_actions import HandoutDialog

    win = open_window(study)
    dlg = HandoutDialog(win.project.path, [], win)
    qtbot.addWidget(dlg)
    dlg.accept()
    assert dlg.result() != HandoutDialog.DialogCode.Accepted and "reader's name" in dlg.validation.text()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    dlg.reader_box.setCurrentText("dr_x")
    dlg.out_edit.setText(str(tmp_path / "busy"))
    dlg.deid_radio.setChecked(True)
    dlg.accept()
    assert "not empty" in dlg.validation.text()


def test_the_summary_shows_images_left_out_for_burned_in_text(qtbot, tmp_path):
    """An ultrasound scan (no Burned In Annotation = NO) stays out of a folder export; the summary says
    how many and why; the de-identification options reach the use case."""
    import pydicom

    from aldesk.ui.export_dialog import ExportSummaryDialog

    project = labelled_project(tmp_path)
    us = tmp_path / "study-scans" / "dcm_0.dcm"
    ds = pydicom.dcmread(us)
    ds.Modality = "US"
    ds.save_as(us)
    dlg = make_dialog(qtbot, project, tmp_path / "f")
    assert not dlg.form.isRowVisible(dlg.deid_options)  # csv: no images, no de-identification options
    dlg.set_format("folders")
    assert dlg.form.isRowVisible(dlg.deid_options)
    dlg.shift_dates_check.setChecked(True)
    options = dlg.options()
    assert options.shift_dates and not options.clean_descriptors and not options.include_burned_in
    with qtbot.waitSignal(dlg.export_done, timeout=60_000) as blocker:
        dlg.start_export()
    result = blocker.args[0]
    assert result.scans == 11 and len(result.burned_in_left_out) == 1
    summary = ExportSummaryDialog(result)
    qtbot.addWidget(summary)
    text = summary.details.text()
    assert "1 images that may show burned-in text" in text
    assert "modality US usually has text burned into the pixels" in text and str(result.burned_in_left_out[0]["scan_id"]) in text
    assert "left out" in summary.warnings.text()
    summary.grab().save(str(tmp_path / "summary.png"))
    dlg2 = make_dialog(qtbot, project, tmp_path / "g")
    dlg2.set_format("folders")
    dlg2.grab().save(str(tmp_path / "dialog.png"))
    assert dlg2.deid_options.isVisibleTo(dlg2) and not dlg2.burned_in_check.isChecked()


def test_a_handout_copy_opens_as_its_reader_and_never_records_another_name(qtbot, open_window, study, tmp_path,
                                                                          message_boxes):
    """Issue 13 point 2: a copy handed out to dr_lee, opened on a workstation whose remembered reader is
    dr_newcomer, records its reads as dr_lee and says so; switching reader is refused with the reason."""
    from aldesk.app.handout import handout
    from aldesk.store import Project

    with Project.open(study) as master:
        handout(master, tmp_path / "lee", annotator="dr_lee", deidentified=False)
    win = open_window(tmp_path / "lee", annotator="dr_newcomer")
    assert win.annotator == "dr_lee" and win.settings.annotator != "dr_lee"
    assert "handed out to dr_lee" in win.statusBar().currentMessage()
    assert win.status.reader_status.text() == "Reader: dr_lee"
    win.show_next()
    scan = win.current_scan_id
    win.label_current(win.project.classes[0])
    assert [(l.annotator, l.scan_id) for l in win.project.labels.current()] == [("dr_lee", scan)]
    win.switch_annotator_dialog()
    assert message_boxes[-1][1] == "Reader fixed by the hand-out" and win.annotator == "dr_lee"
    assert win.grab().save(str(tmp_path / "handout_window.png"))   # looked at: "Reader: dr_lee" in the status bar
