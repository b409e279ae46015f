"""Files that moved, scans that cannot be decoded, and exceptions escaping a slot: all shown, none lost."""

import sys

from PySide6.QtCore import QObject, QTimer, Signal

from aldesk.store import Project


def test_missing_files_filter_lists_them_and_the_viewer_says_why(qtbot, window, real_project):
    win = window
    with Project.open(real_project) as p:
        gone = p.scans.rows()[3]
    gone.path.unlink()
    win.frame_cache.clear()
    win.queue_panel.set_filter("missing")
    qtbot.waitUntil(lambda: win.queue_model.total == 1, timeout=10_000)
    assert win.queue_model.scan_id_at(0) == gone.id
    assert "1 files missing" in win.queue_panel.count_label.text()
    win.show_scan(gone.id)
    assert win.viewer.is_preview and win.viewer.scan_id == gone.id  # the stored preview still shows
    qtbot.waitUntil(lambda: "preview only" in (win.viewer.info.get("label") or ""), timeout=10_000)
    assert "Full resolution not available" in win.statusBar().currentMessage()
    win.queue_panel.set_filter("all")
    assert win.queue_model.total == 12


def test_exception_in_a_slot_reaches_the_user(qtbot, window, message_boxes, monkeypatch):
    win = window
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    win.errors.install_excepthook()

    class Emitter(QObject):
        fired = Signal()

    em = Emitter()

    def broken_slot():
        raise RuntimeError("slot exploded")

    em.fired.connect(broken_slot)
    with qtbot.waitSignal(win.errors.reported) as rep:
        QTimer.singleShot(0, em.fired.emit)
    assert "RuntimeError: slot exploded" in rep.args[1]
    assert message_boxes[-1][1] == "Something went wrong"


def test_label_that_cannot_be_saved_is_not_shown_as_saved(qtbot, window, message_boxes, monkeypatch):
    win = window
    import errno

    from aldesk.errors import storage_error
    from aldesk.ui import labelling_controller

    def full(*args, **kwargs):  # a busy project no longer refuses a label (it is journaled): a full disk does
        raise storage_error(OSError(errno.ENOSPC, "No space left on device", str(win.project.path / "x")))

    monkeypatch.setattr(labelling_controller.labelling, "record_read", full)
    first = win.current_scan_id
    win.label_current("normal")
    assert win.current_scan_id == first                     # did not move on
    assert not win.label_panel.saved_label.text().startswith("Saved")
    assert message_boxes[-1][1] == "The label was not saved" and "the disk is full" in message_boxes[-1][2]
    assert win.project.labels.count() == 0


def test_cannot_open_project_offers_file_new_project_not_the_cli(qtbot, tmp_path, message_boxes, monkeypatch):
    """Issue 13: the GUI said to run `aldesk init`; it now offers File ▸ New project."""
    from PySide6.QtWidgets import QMessageBox

    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings

    win = MainWindow(Settings(), "dr_test", None)
    qtbot.addWidget(win)
    boxes = []

    def fake_exec(box):
        boxes.append((box.text(), box.informativeText(), [b.text() for b in box.buttons()]))
        return 0

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    monkeypatch.setattr(QMessageBox, "clickedButton",
                        lambda box: next(b for b in box.buttons() if b.text() == "New project…"))
    asked = []
    monkeypatch.setattr(MainWindow, "new_project_dialog", lambda self: asked.append(True))
    (tmp_path / "not-a-project").mkdir()
    assert win.open_project(tmp_path / "not-a-project") is False
    text, info, buttons = boxes[-1]
    assert "no aldesk project here" in text and "aldesk init" not in text + info
    assert "File ▸ New project" in info and "New project…" in buttons
    assert asked == [True]


def test_readers_and_roles_from_the_review_menu(qtbot, window, monkeypatch):
    from aldesk.ui.readers_dialog import ReadersDialog

    opened = []
    monkeypatch.setattr(ReadersDialog, "exec", lambda self: opened.append(sorted(self.role_boxes)) or 0)
    action = next(a for m in window.menuBar().actions() if m.menu() for a in m.menu().actions()
                  if a.text() == "Readers and &roles…")
    window.label_current("normal")  # dr_test is now a reader of the project
    action.trigger()
    assert opened == [["dr_test"]]


def test_new_project_dialog_never_proposes_a_folder_inside_the_data_folder(qtbot, tmp_path, monkeypatch):
    """Issue 13: it proposed <last import folder>/aldesk-project, inside the data."""
    from pathlib import Path

    from aldesk.ui.project_dialogs import NewProjectDialog

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    data = tmp_path / "data" / "cxr"
    data.mkdir(parents=True)
    dlg = NewProjectDialog(None, str(data), data_dirs=[str(tmp_path / "data")])
    qtbot.addWidget(dlg)
    proposed = Path(dlg.folder.text())
    assert proposed == tmp_path / "home" / "aldesk-project"
    dlg.folder.setText(str(data / "my-project"))
    dlg.accept()
    assert dlg.result() != NewProjectDialog.DialogCode.Accepted and "inside" in dlg.error.text()
    (tmp_path / "projects" / "aldesk-project").mkdir(parents=True)       # taken: the next free name
    dlg2 = NewProjectDialog(None, str(tmp_path / "projects"), data_dirs=[str(tmp_path / "data")])
    qtbot.addWidget(dlg2)
    assert Path(dlg2.folder.text()) == tmp_path / "projects" / "aldesk-project-2"
    dlg2.accept()
    assert dlg2.result() == NewProjectDialog.DialogCode.Accepted


def test_main_window_proposes_projects_beside_the_last_project_not_in_the_data(qtbot, window, monkeypatch, tmp_path):
    from pathlib import Path

    from aldesk.ui.project_dialogs import NewProjectDialog

    seen = []
    monkeypatch.setattr(NewProjectDialog, "exec", lambda self: seen.append(Path(self.folder.text())) or 0)
    window.settings.last_import_dir = str(tmp_path / "scans")
    window.new_project_dialog()
    assert seen and seen[0].parent == Path(window.settings.recent_projects[0]).parent
    assert not str(seen[0]).startswith(str(tmp_path / "scans"))


def test_a_scan_without_a_stored_preview_says_so_and_never_crashes(qtbot, window, tmp_path):
    """Issue 14: a restore whose side store lacked a preview; the file, when there, still shows in full."""
    from aldesk.ui.viewer import NO_PREVIEW_LABEL

    win = window
    rows = [r for r in win.project.scans.rows() if r.path.suffix == ".png"]
    kept, gone = rows[2], rows[3]
    with win.project.transaction() as c:
        c.execute("DELETE FROM previews WHERE scan_id IN (?, ?)", (kept.id, gone.id))
    gone.path.unlink()
    win.frame_cache.clear()
    win.show_scan(kept.id)
    assert win.viewer.scan_id == kept.id
    qtbot.waitUntil(lambda: not win.viewer.is_preview, timeout=10_000)  # the file decoded: full resolution
    assert win.viewer.info.get("label") != NO_PREVIEW_LABEL
    win.show_scan(gone.id)  # says it has no preview (until the decoder, maybe already, reports the file gone)
    assert win.viewer.is_preview and win.viewer.info.get("no_preview") is True
    qtbot.waitUntil(lambda: (win.viewer.info.get("label") or "").startswith("No preview and no image"), timeout=10_000)
    win.viewer.grab().save(str(tmp_path / "no_preview.png"))
