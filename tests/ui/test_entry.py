"""`aldesk` routing (GUI vs CLI), the demo project, themes, and the app's start-up path."""

import pytest

from aldesk import main as entry
from aldesk.store import Project


def test_no_arguments_opens_the_gui_on_the_demo(monkeypatch):
    calls = []
    monkeypatch.setattr("aldesk.ui.app.run", lambda project=None, demo=False: calls.append((project, demo)) or 0)
    assert entry.main([]) == 0
    assert entry.main(["demo"]) == 0
    assert entry.main(["gui", "/data/proj"]) == 0
    assert entry.main(["gui"]) == 0
    assert calls == [(None, True), (None, True), ("/data/proj", False), (None, False)]


def test_other_commands_and_help_go_to_the_cli(monkeypatch, capsys):
    monkeypatch.setattr("aldesk.ui.app.run", lambda *a, **k: pytest.fail("GUI started for a CLI command"))
    with pytest.raises(SystemExit) as exc:
        entry.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: aldesk" in out and "aldesk gui [PROJECT]" in out and "aldesk demo" in out


def test_no_display_is_a_clear_message_not_a_crash(monkeypatch, capsys):
    from aldesk.ui import app

    monkeypatch.setattr(app.sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert app.run() == app.EXIT_NO_DISPLAY
    assert "no display" in capsys.readouterr().err


def test_demo_project_is_built_once_from_shipped_real_scans(tmp_path, monkeypatch):
    from aldesk.ui.demo import demo_project_path, ensure_demo_project

    monkeypatch.setenv("ALDESK_DATA_DIR", str(tmp_path / "data"))
    path, summary = ensure_demo_project()
    assert path == demo_project_path() == tmp_path / "data" / "demo-project"
    assert summary.imported == 205 and not summary.problems
    with Project.open(path) as p:
        assert p.classes == ["normal", "pneumonia"]
        assert p.counts_by if False else p.scans.counts_by("modality") == {None: 200, "CR": 2, "MR": 2, "CT": 1}
        roots = list(p.scans.roots().values())
        assert all(r.startswith(str(path)) for r in roots)  # copied next to the project
    again, summary2 = ensure_demo_project()
    assert again == path and summary2 is None


def test_demo_resources_carry_attribution_and_stay_small():
    from aldesk.ui.settings import resources_dir

    demo = resources_dir() / "demo"
    source = (demo / "SOURCE.md").read_text()
    assert "CC BY 4.0" in source and "MedMNIST" in source and "pydicom" in source
    assert (demo / "LICENSE-pydicom.txt").is_file()
    total = sum(f.stat().st_size for f in demo.rglob("*") if f.is_file())
    assert total < 5_000_000


def test_themes_apply_and_switch(qtbot):
    from PySide6.QtWidgets import QApplication

    from aldesk.ui.theme import apply_theme, stylesheet

    app = QApplication.instance()
    apply_theme(app, "dark")
    assert app.property("aldesk_theme") == "dark" and "#1c1e22" in app.styleSheet()
    assert app.palette().window().color().lightness() < 60
    apply_theme(app, "light")
    assert app.palette().window().color().lightness() > 200
    with pytest.raises(ValueError, match="theme == 'neon'"):
        stylesheet("neon")
    apply_theme(app, "dark")


def test_open_a_bad_folder_shows_why_and_forgets_it(qtbot, tmp_path, message_boxes):
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings

    s = Settings()
    s.remember_project(tmp_path / "nothing")
    win = MainWindow(s, "dr", None)
    qtbot.addWidget(win)
    assert not win.open_project(tmp_path / "nothing")
    assert message_boxes and "no aldesk project here" in message_boxes[-1][2]
    assert s.recent_projects == []
    assert Settings.load().recent_projects == []
