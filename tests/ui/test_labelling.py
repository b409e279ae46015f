"""Keyboard labelling end to end on a small real project: the store, the screen and undo agree."""

from PySide6.QtCore import Qt

from aldesk.store import Project
from tests.ui.conftest import label_values, wait_full_resolution


def press(qtbot, win, key):
    win.activateWindow()
    qtbot.keyClick(win.viewer, key)


def test_digit_key_records_a_durable_label_and_shows_the_next_scan(qtbot, window, real_project):
    win = window
    first = win.current_scan_id
    assert first is not None and win.viewer.scan_id == first
    with qtbot.waitSignal(win.label_saved) as saved:
        press(qtbot, win, Qt.Key.Key_2)
    assert saved.args == [first, "pneumonia"]
    # durable: a second connection (another process would do the same) sees it at once
    assert label_values(real_project)[first] == "pneumonia"
    assert win.current_scan_id != first and win.viewer.scan_id == win.current_scan_id
    assert win.label_panel.saved_label.text().startswith("Saved ✓")
    assert win.queue_model.labels[first] == "pneumonia"
    second = win.current_scan_id
    press(qtbot, win, Qt.Key.Key_1)
    press(qtbot, win, Qt.Key.Key_U)
    third = [s for s in label_values(real_project) if s not in (first, second)][0]
    assert label_values(real_project) == {first: "pneumonia", second: "normal", third: "unsure"}


def test_skip_key_and_keys_beyond_the_classes_do_nothing(qtbot, window, real_project):
    win = window
    first = win.current_scan_id
    press(qtbot, win, Qt.Key.Key_7)  # only two classes
    assert label_values(real_project) == {} and win.current_scan_id == first
    press(qtbot, win, Qt.Key.Key_S)
    assert label_values(real_project) == {first: "skip"}


def test_ctrl_z_undoes_and_returns_to_the_scan_history_kept(qtbot, window, real_project):
    win = window
    first = win.current_scan_id
    press(qtbot, win, Qt.Key.Key_1)
    assert win.current_scan_id != first
    with qtbot.waitSignal(win.label_undone):
        win.activateWindow()
        qtbot.keyClick(win.viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert win.current_scan_id == first
    assert first not in label_values(real_project)
    assert first not in win.queue_model.labels
    assert "unread again" in win.label_panel.saved_label.text()
    with Project.open(real_project) as p:
        assert [h.value for h in p.labels.history(first)] == ["normal"]  # the read is kept as history


def test_note_is_saved_with_the_label(qtbot, window, real_project):
    win = window
    first = win.current_scan_id
    win.label_panel.note.setText("faint opacity left base")
    press(qtbot, win, Qt.Key.Key_2)
    with Project.open(real_project) as p:
        [row] = p.labels.current_for_scan(first)
    assert row.value == "pneumonia" and row.note == "faint opacity left base"
    assert win.label_panel.note.text() == ""  # the next scan starts with an empty note


def test_reopen_a_labelled_scan_change_it_and_see_the_history(qtbot, window, real_project):
    win = window
    first = win.current_scan_id
    press(qtbot, win, Qt.Key.Key_1)
    win.queue_panel.set_filter("mine")
    assert win.queue_model.total == 1 and win.queue_model.scan_id_at(0) == first
    win.queue_panel.view.clicked.emit(win.queue_model.index(0, 1))
    assert win.current_scan_id == first
    assert win.label_panel.buttons["normal"].isChecked()
    press(qtbot, win, Qt.Key.Key_2)
    assert win.current_scan_id == first                     # stays on the reopened scan
    assert label_values(real_project)[first] == "pneumonia"
    items = [win.label_panel.history.item(i).text() for i in range(win.label_panel.history.count())]
    assert len(items) == 2 and items[0].endswith("dr_test: pneumonia") and items[1].endswith("dr_test: normal")


def test_next_scan_is_prefetched_and_painted_at_full_resolution(qtbot, window):
    win = window
    wait_full_resolution(qtbot, win)
    upcoming = [s for s in win.queue_model.next_unread(None, 3) if s != win.current_scan_id][0]
    qtbot.waitUntil(lambda: upcoming in win.frame_cache, timeout=5000)
    with qtbot.waitSignal(win.viewer.painted) as painted:
        press(qtbot, win, Qt.Key.Key_1)
    assert painted.args == [upcoming]
    assert not win.viewer.is_preview  # the decoded frames, not the preview, were painted


def test_model_guess_hidden_by_default_and_toggled_with_p(qtbot, window):
    win = window
    assert not win.label_panel.prediction_label.isVisible()
    assert "prediction" not in win.viewer.info
    press(qtbot, win, Qt.Key.Key_P)
    assert win.label_panel.prediction_label.isVisible()
    assert win.viewer.info.get("prediction")
    press(qtbot, win, Qt.Key.Key_P)
    assert not win.label_panel.prediction_label.isVisible()


def test_multiframe_scan_gets_a_frame_slider_and_page_keys(qtbot, window):
    win = window
    mr = [r.id for r in win.project.scans.rows() if r.frames == 10][0]
    win.show_scan(mr)
    wait_full_resolution(qtbot, win)
    assert win.viewer_controls.frame_slider_action.isVisible() and win.viewer_controls.frame_slider.maximum() == 9
    press(qtbot, win, Qt.Key.Key_PageDown)
    press(qtbot, win, Qt.Key.Key_PageDown)
    assert win.viewer.frame == 2 and win.viewer_controls.frame_slider.value() == 2
    win.viewer_controls.frame_slider.setValue(7)
    assert win.viewer.frame == 7
    assert "Frame 8 / 10" in win.viewer.overlay_lines()["br"]


def test_a_label_given_while_another_process_writes_is_saved_pending_then_written(qtbot, window, real_project,
                                                                                    tmp_path):
    """Another process holds the write lock (an import batch): the key press is not refused, the panel says
    'Saved (pending)', the label sits durably in the journal, and is written once the lock is free."""
    import sqlite3

    from aldesk.app import labelling

    win = window
    first = win.current_scan_id
    other = sqlite3.connect(real_project / "project.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with qtbot.waitSignal(win.label_saved):
            press(qtbot, win, Qt.Key.Key_2)
        assert win.label_panel.saved_label.text().startswith("Saved (pending)")
        assert first not in label_values(real_project)
        with Project.open(real_project) as p:
            assert [(e["scan_id"], e["value"]) for e in labelling.pending_labels(p)] == [(first, "pneumonia")]
        win.label_panel.grab().save(str(tmp_path / "pending.png"))
    finally:
        other.execute("COMMIT")
        other.close()
    qtbot.waitUntil(lambda: first in label_values(real_project), timeout=5000)
    assert label_values(real_project)[first] == "pneumonia"
    qtbot.waitUntil(lambda: "now written" in win.label_panel.saved_label.text(), timeout=3000)
