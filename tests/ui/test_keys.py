"""Editable key bindings (stored in the settings JSON) and the first-run tour of the keys."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence

from aldesk.ui.settings import DEFAULT_KEY_BINDINGS, Settings, config_dir
from tests.ui.conftest import label_values


def test_bindings_round_trip_and_bad_entries_fall_back_to_defaults():
    s = Settings()
    s.key_bindings = dict(DEFAULT_KEY_BINDINGS, unsure="Q")
    s.save()
    assert Settings.load().key_bindings["unsure"] == "Q"
    path = config_dir() / "settings.json"
    raw = json.loads(path.read_text())
    raw["key_bindings"] = {"skip": "", "undo": 5, "nonsense": "X", "label_1": "A"}
    raw["tour_seen"] = "yes"
    path.write_text(json.dumps(raw))
    loaded = Settings.load()
    assert loaded.key_bindings == dict(DEFAULT_KEY_BINDINGS, label_1="A")
    assert loaded.tour_seen is False


def test_rebound_keys_label_and_the_old_key_does_nothing(qtbot, window, real_project):
    window.apply_key_bindings(dict(DEFAULT_KEY_BINDINGS, label_1="A", unsure="Q"))
    qtbot.waitUntil(lambda: window.current_scan_id is not None)
    first = window.current_scan_id
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_1)
    assert first not in label_values(real_project)
    qtbot.keyClick(window.viewer, Qt.Key.Key_A)
    assert label_values(real_project)[first] == window.project.classes[0]
    second = window.current_scan_id
    qtbot.keyClick(window.viewer, Qt.Key.Key_Q)
    assert label_values(real_project)[second] == "unsure"
    assert window.act_undo.shortcut() == QKeySequence("Ctrl+Z")
    assert "Q unsure" in window.hint.text() and window.hint.text().startswith("A/2/3/")


def test_key_bindings_dialog_refuses_a_clash_and_saves(qtbot, window, monkeypatch):
    from aldesk.ui.keys import KeyBindingsDialog, key_conflicts

    assert key_conflicts(DEFAULT_KEY_BINDINGS) == []
    assert key_conflicts(dict(DEFAULT_KEY_BINDINGS, skip="U")) == [
        "'U' is bound to both 'Mark unsure' and 'Skip the scan'"]
    dlg = KeyBindingsDialog(DEFAULT_KEY_BINDINGS)
    qtbot.addWidget(dlg)
    dlg.edits["skip"].setKeySequence(QKeySequence("U"))
    dlg.accept()
    assert dlg.result() != KeyBindingsDialog.DialogCode.Accepted and "bound to both" in dlg.error.text()
    dlg.defaults_button.click()
    assert dlg.bindings() == DEFAULT_KEY_BINDINGS

    def fake_exec(self):
        self.edits["prediction"].setKeySequence(QKeySequence("G"))
        self.accept()
        return self.result()

    monkeypatch.setattr(KeyBindingsDialog, "exec", fake_exec)
    window.edit_key_bindings()
    assert window.act_prediction.shortcut() == QKeySequence("G")
    assert Settings.load().key_bindings["prediction"] == "G"


def test_tour_is_shown_once_and_remembered(qtbot, window, monkeypatch):
    from aldesk.ui.keys import KeyTourDialog

    shown = []
    monkeypatch.setattr(KeyTourDialog, "exec", lambda self: shown.append(self.text.text()) or 1)
    window.apply_key_bindings(dict(DEFAULT_KEY_BINDINGS, skip="K"))
    window.maybe_show_tour()
    assert len(shown) == 1
    assert "<b>1</b> normal" in shown[0] and "<b>K</b> skip" in shown[0]
    assert Settings.load().tour_seen is True
    window.maybe_show_tour()
    assert len(shown) == 1  # not again
    window.show_tour()  # Help ▸ Tour of the keys still works
    assert len(shown) == 2


def test_tour_comes_back_when_not_dismissed_for_good(qtbot, window, monkeypatch):
    from aldesk.ui.keys import KeyTourDialog

    def exec_keep(self):
        self.dont_show_again.setChecked(False)
        return 1

    monkeypatch.setattr(KeyTourDialog, "exec", exec_keep)
    window.maybe_show_tour()
    assert window.settings.tour_seen is False and Settings.load().tour_seen is False


def test_shortcuts_help_shows_the_bindings(qtbot, window, message_boxes):
    window.apply_key_bindings(dict(DEFAULT_KEY_BINDINGS, skip="K", prediction="G"))
    window.show_shortcuts()
    text = message_boxes[-1][2]
    assert text.startswith("1–9  label") and "K  skip" in text and "G  show/hide" in text
