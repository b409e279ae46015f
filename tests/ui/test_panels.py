"""Each panel on its own, built from a plain model that the test then changes (napari style)."""

import csv

import pytest
from PySide6.QtCore import Qt

from aldesk.app.importer import ImportSummary
from aldesk.store import Project
from aldesk.store.annotations import LabelRow
from aldesk.ui.import_dialog import ImportDialog, ImportReportDialog, summary_text
from aldesk.ui.label_panel import LabelPanel
from aldesk.ui.queue_model import COL_REASON, ScanQueueModel
from aldesk.ui.queue_panel import QueuePanel


# ---------------------------------------------------------------- QueuePanel
@pytest.fixture
def queue(qtbot, real_project):
    project = Project.open(real_project)
    model = ScanQueueModel(project)
    panel = QueuePanel(model)
    qtbot.addWidget(panel)
    panel.resize(400, 600)
    panel.show()
    yield panel
    project.close()


def test_queue_panel_follows_the_model_and_reports_picks(qtbot, queue):
    ids = queue.model.project.scans.ids()
    queue.model.set_entries(ids, reasons={int(ids[0]): "far from labelled scans"})
    assert queue.view.model().rowCount() == 12
    assert queue.count_label.text() == "12 to label"
    assert queue.view.isColumnHidden(COL_REASON)  # reason shown under the name instead
    with qtbot.waitSignal(queue.scan_activated) as sig:
        queue.view.clicked.emit(queue.model.index(3, 1))
    assert sig.args == [int(ids[3])]
    queue.model.set_entries(ids[:5])
    assert queue.count_label.text() == "5 to label"
    queue.model.set_label(int(ids[1]), "normal")  # labelled: one fewer to read, before any re-ranking
    assert queue.count_label.text() == "4 to label"
    queue.model.set_label(int(ids[1]), "pneumonia")  # changed, still read
    assert queue.count_label.text() == "4 to label"
    queue.model.set_label(int(ids[1]), None)  # undone
    assert queue.count_label.text() == "5 to label"


def test_queue_panel_select_scan_is_silent_and_filter_emits(qtbot, queue):
    ids = queue.model.project.scans.ids()
    queue.model.set_entries(ids)
    picked = []
    queue.scan_activated.connect(picked.append)
    queue.select_scan(int(ids[6]))
    assert queue.view.currentIndex().row() == 6 and picked == []
    with qtbot.waitSignal(queue.filter_changed) as sig:
        queue.set_filter("missing")
    assert sig.args == ["missing"]
    assert queue.filter_box.count() == 4


# ---------------------------------------------------------------- LabelPanel
def test_label_panel_buttons_keys_and_history(qtbot):
    panel = LabelPanel(["normal", "pneumonia", "effusion"])
    qtbot.addWidget(panel)
    assert panel.value_for_key(1) == "normal" and panel.value_for_key(3) == "effusion"
    assert panel.value_for_key(4) is None and panel.value_for_key(0) is None
    assert panel.buttons["pneumonia"].text().startswith("2")
    with qtbot.waitSignal(panel.label_chosen) as sig:
        qtbot.mouseClick(panel.buttons["unsure"], Qt.MouseButton.LeftButton)
    assert sig.args == ["unsure"]
    history = [LabelRow("a", 1, "dr_a", "normal", "", "2026-11-24T10:00:00.000+00:00"),
               LabelRow("b", 1, "dr_b", "effusion", "small", "2026-11-24T11:00:00.000+00:00")]
    panel.show_scan("effusion", history, note="old note")
    assert panel.buttons["effusion"].isChecked() and not panel.buttons["normal"].isChecked()
    assert panel.history.item(0).text() == "2026-11-24 11:00  dr_b: effusion  — small"
    assert panel.note.text() == "old note"
    panel.show_scan(None, [])
    assert panel.history.item(0).text() == "Not read yet"


def test_label_panel_more_than_nine_classes_only_nine_keys(qtbot):
    panel = LabelPanel([f"c{i}" for i in range(11)])
    qtbot.addWidget(panel)
    assert panel.value_for_key(9) == "c8"
    assert panel.buttons["c10"].text() == "c10"


def test_label_panel_prediction_hidden_until_asked(qtbot):
    panel = LabelPanel(["a", "b"])
    qtbot.addWidget(panel)
    panel.show()
    panel.set_prediction("Model: b (81%)")
    assert not panel.prediction_label.isVisible()
    with qtbot.waitSignal(panel.prediction_toggled) as sig:
        panel.prediction_check.setChecked(True)
    assert sig.args == [True] and panel.prediction_label.isVisible()
    assert panel.prediction_label.text() == "Model: b (81%)"


# ---------------------------------------------------------------- import dialogs
def test_import_dialog_imports_for_real_and_reports_skipped_files(qtbot, tmp_path, scans_folder):
    (scans_folder / "notes.txt").write_text("not a scan")
    (scans_folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    project_path = tmp_path / "p"
    Project.create(project_path, ["a", "b"]).close()
    dlg = ImportDialog(str(project_path), [str(scans_folder)], jobs=1)
    qtbot.addWidget(dlg)
    with qtbot.waitSignal(dlg.accepted, timeout=30_000):
        dlg.show()
    s = dlg.summary
    assert s.imported == 12 and s.skipped + s.failed == 2
    with Project.open(project_path) as p:
        assert p.scans.count() == 12
    report = ImportReportDialog(s)
    qtbot.addWidget(report)
    assert report.model.rowCount() == 2
    names = {report.model.index(r, 0).data() for r in range(2)}
    assert names == {"notes.txt", "broken.dcm"}
    assert all(report.model.index(r, 3).data() for r in range(2))  # every row says why
    out = tmp_path / "report.csv"
    report.save_csv(str(out))
    rows = list(csv.DictReader(out.open()))
    assert {r["path"].rsplit("/", 1)[-1] for r in rows} == {"notes.txt", "broken.dcm"}


def test_import_dialog_cancel_keeps_what_was_imported(qtbot, tmp_path, scans_folder):
    project_path = tmp_path / "p"
    Project.create(project_path, ["a", "b"]).close()
    dlg = ImportDialog(str(project_path), [str(scans_folder)], jobs=1)
    qtbot.addWidget(dlg)
    dlg._on_cancel_clicked()  # before the first file: the importer stops at its first check
    qtbot.waitUntil(lambda: dlg.summary is not None, timeout=30_000)
    assert dlg.summary.status == "cancelled"
    assert not dlg.cancel_button.isEnabled()
    with Project.open(project_path) as p:
        assert p.scans.count() == dlg.summary.imported


def test_import_report_filters_by_kind_and_summarises():
    s = ImportSummary(imported=3, skipped=1, failed=1, duplicates=1, elapsed_s=0.5, status="done")
    s.problems = [{"path": "/d/a.txt", "kind": "skipped", "code": "not-an-image", "reason": "not an image"},
                  {"path": "/d/b.dcm", "kind": "failed", "code": "truncated", "reason": "file is truncated"},
                  {"path": "/d/c.dcm", "kind": "duplicate", "code": "uid", "reason": "same SOP Instance UID as x"}]
    report = ImportReportDialog(s)
    assert report.proxy.rowCount() == 3
    report.kind_box.setCurrentIndex(report.kind_box.findData("failed"))
    assert report.proxy.rowCount() == 1
    assert report.proxy.index(0, 0).data() == "b.dcm"
    text = summary_text(s)
    assert text.startswith("Import finished: 3 imported") and "1 skipped" in text and "1 failed" in text
