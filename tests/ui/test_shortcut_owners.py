"""Every key the main window reacts to has one owner, and a label only comes from a deliberate key.

Issue 13 point 1: Ctrl+N was bound to both File ▸ New project and Label ▸ Note (Qt then does
neither), and the queue filter held keyboard focus at start-up, so typing "lung" flipped the filter,
saved the scan as unsure and jumped on.
"""

from __future__ import annotations

from collections import defaultdict

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QLineEdit

from aldesk.ui.settings import DEFAULT_KEY_BINDINGS
from tests.ui.conftest import label_values


def every_window_key(win) -> dict[str, list[str]]:
    """Walk all QActions and QShortcuts of the window independently of aldesk.ui.keys: key -> owners."""
    owners: dict[str, list[str]] = defaultdict(list)
    for act in win.findChildren(QAction):
        if act.isSeparator() or act.menu() is not None:
            continue
        for seq in act.shortcuts():
            owners[seq.toString(QKeySequence.SequenceFormat.PortableText)].append(f"action {act.text()!r}")
    for sc in win.findChildren(QShortcut):
        text = sc.key().toString(QKeySequence.SequenceFormat.PortableText)
        if text:
            owners[text].append(f"shortcut {sc.objectName()!r}")
    return owners


def test_every_key_of_the_main_window_has_exactly_one_owner(window):
    owners = every_window_key(window)
    clashes = {k: v for k, v in owners.items() if len(v) > 1}
    assert clashes == {}
    # the walk really sees menus, viewer keys and label keys
    for key in ("Ctrl+N", "Ctrl+O", "F", "I", "F2", "PgDown", "N", "1", "9", "U", "S", "P", "Ctrl+Z"):
        assert key in owners, key
    assert owners["Ctrl+N"] == ["action 'Write a &note'"]          # the key the note field teaches
    assert owners["Ctrl+Shift+N"] == ["action '&New project…'"]


def test_every_key_has_one_owner_with_rebound_keys_too(window):
    window.apply_key_bindings(dict(DEFAULT_KEY_BINDINGS, label_1="A", unsure="Q", undo="Ctrl+Y"))
    assert {k: v for k, v in every_window_key(window).items() if len(v) > 1} == {}


def test_a_saved_binding_on_a_viewer_key_is_refused_and_keeps_its_default(window):
    """A settings file with label_1 = F (Fit) must not create an ambiguous, dead key."""
    window.apply_key_bindings(dict(DEFAULT_KEY_BINDINGS, label_1="F", skip="Ctrl+N"))
    assert window.settings.key_bindings["label_1"] == "1"
    assert window.settings.key_bindings["skip"] == "S"
    assert {k: v for k, v in every_window_key(window).items() if len(v) > 1} == {}
    assert "Fit" in window.statusBar().currentMessage()


def test_key_bindings_dialog_refuses_a_key_the_viewer_or_menus_own(qtbot, window):
    from aldesk.ui.keys import KeyBindingsDialog, key_conflicts

    reserved = window.fixed_keys()
    assert reserved["F"].startswith("Fit")
    assert key_conflicts(dict(DEFAULT_KEY_BINDINGS, label_2="R"), reserved) == [
        "'R' is bound to both 'Label with class 2' and 'Reset'"]
    dlg = KeyBindingsDialog(DEFAULT_KEY_BINDINGS, reserved=reserved)
    qtbot.addWidget(dlg)
    dlg.edits["label_2"].setKeySequence(QKeySequence("R"))
    dlg.accept()
    assert dlg.result() != KeyBindingsDialog.DialogCode.Accepted and "Reset" in dlg.error.text()


def test_keyboard_focus_is_on_the_scan_at_start_up_not_in_the_filter(qtbot, window, real_project):
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None)
    assert QApplication.focusWidget() is window.viewer
    assert window.queue_panel.filter_box.focusPolicy() == Qt.FocusPolicy.NoFocus


def test_typing_a_word_where_the_reader_is_does_not_flip_the_filter(qtbot, window, real_project):
    """"lung" typed at start-up: l and n are no label keys, u is unsure — on the scan, deliberately."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.viewer)
    for key in (Qt.Key.Key_L, Qt.Key.Key_A, Qt.Key.Key_T):
        qtbot.keyClick(QApplication.focusWidget(), key)
    assert window.queue_panel.current_filter == "to_label"
    assert label_values(real_project) == {}


def test_ctrl_n_puts_the_cursor_in_the_note_and_typing_there_never_labels(qtbot, window, real_project):
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.viewer)
    first = window.current_scan_id
    qtbot.keyClick(window.viewer, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    note = window.label_panel.note
    assert QApplication.focusWidget() is note
    qtbot.keyClicks(note, "lung unsure 1 2 s n")
    assert note.text() == "lung unsure 1 2 s n"
    assert label_values(real_project) == {}
    assert window.current_scan_id == first
    assert not any(s.isEnabled() for s in window.labelling.shortcuts.values())
    qtbot.keyClick(note, Qt.Key.Key_Return)       # back to the scan; the label keys work again
    assert QApplication.focusWidget() is window.viewer
    qtbot.keyClick(window.viewer, Qt.Key.Key_2)
    assert label_values(real_project)[first] == "pneumonia"


def test_label_keys_are_off_in_any_text_field_of_the_window(qtbot, window, real_project):
    """Not only the note: any line edit placed in the window (a search box, say) silences label keys."""
    field = QLineEdit(window.queue_panel)
    field.show()
    window.activateWindow()
    field.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is field)
    assert not any(s.isEnabled() for s in window.labelling.shortcuts.values())
    window.viewer.setFocus()
    qtbot.waitUntil(lambda: all(s.isEnabled() for s in window.labelling.shortcuts.values()))


def test_the_review_window_keys_have_one_owner_too(qtbot, tmp_path):
    from aldesk.app.importer import import_paths
    from aldesk.store import Project
    from aldesk.ui.review_panel import ReviewPanel
    from tests.app.conftest import write_png

    write_png(tmp_path / "s" / "a.png", seed=1)
    with Project.create(tmp_path / "p", ["normal", "pneumonia"]) as p:
        import_paths(p, [tmp_path / "s"], jobs=1)
    panel = ReviewPanel(tmp_path / "p", "dr_a")
    qtbot.addWidget(panel)
    owners = every_window_key(panel)
    assert {"Ctrl+1", "Ctrl+2", "F5", "Ctrl+Return", "F"} <= set(owners)
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}
    panel.shutdown()
