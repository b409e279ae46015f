"""Help ▸ About / diagnostics: versions, decoders and paths, copied for a bug report."""

from __future__ import annotations

from aldesk import __version__


def test_diagnostics_name_versions_decoders_and_paths(tmp_path):
    from aldesk.ui.about import diagnostics

    d = diagnostics("/some/project")
    for key in ("aldesk", "Python", "Qt", "numpy", "pydicom", "pylibjpeg", "pylibjpeg-openjpeg", "scikit-learn"):
        assert d["versions"][key] and d["versions"][key] != "not installed", key
    assert d["versions"]["aldesk"] == __version__
    assert d["paths"]["config"] == str(tmp_path / "config")  # the test's own folders
    assert d["paths"]["log file"] == str(tmp_path / "logs" / "aldesk.log")
    assert d["paths"]["project"] == "/some/project"
    assert any("openjpeg" in v for v in d["decoders"].values()), d["decoders"]
    assert d["versions"]["onnxruntime"] != "not installed"


def test_diagnostics_name_the_shipped_network_and_its_licence(monkeypatch, tmp_path):
    from aldesk.features import shipped_model
    from aldesk.ui.about import diagnostics

    models = diagnostics()["models"]
    assert "EfficientNet-Lite0" in models["imagenet (default extractor)"] and "Apache-2.0" in models["licence"]
    assert models["model check"].startswith("ok (sha256 b6f0acd2")
    assert str(shipped_model.LICENCE_FILE) in models["licence"] and shipped_model.LICENCE_FILE.is_file()
    assert "Apache License" in shipped_model.LICENCE_FILE.read_text()
    monkeypatch.setattr(shipped_model, "MODEL_FILE", tmp_path / "gone.onnx")
    assert "is missing; reinstall aldesk" in diagnostics()["models"]["model check"]


def test_about_dialog_copies_everything_to_the_clipboard(qtbot, tmp_path):
    from PySide6.QtGui import QGuiApplication

    from aldesk.ui.about import AboutDialog

    dlg = AboutDialog("/some/project")
    qtbot.addWidget(dlg)
    QGuiApplication.clipboard().setText("")
    dlg.copy_button.click()
    copied = QGuiApplication.clipboard().text()
    assert copied == dlg.text.toPlainText()
    assert any(line.split()[:2] == ["aldesk", __version__] for line in copied.splitlines())
    assert "[versions]" in copied and "[models]" in copied and "[paths]" in copied and "[decoders]" in copied
    assert "/some/project" in copied and str(tmp_path / "logs") in copied
    assert dlg.copy_button.text() == "Copied"


def test_help_menu_opens_about_with_the_open_project(window, monkeypatch):
    from aldesk.ui import about

    opened = []
    monkeypatch.setattr(about.AboutDialog, "exec", lambda self: opened.append(self.text.toPlainText()) or 0)
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    action = next(a for a in help_menu.actions() if "diagnostics" in a.text())
    action.trigger()
    assert len(opened) == 1 and str(window.project.path) in opened[0]
