"""GUI test fixtures: message boxes captured instead of shown, a small real project, a main window."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_SCANS = REPO / "resources" / "demo" / "scans"


@pytest.fixture(autouse=True)
def message_boxes(monkeypatch):
    """Every QMessageBox the app would show, as (icon, title, text); none blocks a test."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[tuple[str, str, str]] = []

    def fake_exec(box):
        shown.append((box.icon().name, box.windowTitle(), box.text()))
        return QMessageBox.StandardButton.Ok

    def fake_static(kind):
        def f(parent, title, text, *args, **kwargs):
            shown.append((kind, title, text))
            return QMessageBox.StandardButton.Ok
        return f

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    for kind in ("information", "warning", "critical", "question"):
        monkeypatch.setattr(QMessageBox, kind, staticmethod(fake_static(kind)))
    return shown


@pytest.fixture
def scans_folder(tmp_path) -> Path:
    """Twelve real scans: ten PneumoniaMNIST chest X-rays and two small real DICOMs (one multi-frame)."""
    folder = tmp_path / "scans"
    (folder / "cxr").mkdir(parents=True)
    pngs = sorted((DEMO_SCANS / "chest-xray-mnist").glob("*.png"))[:10]
    for p in pngs:
        shutil.copy(p, folder / "cxr" / p.name)
    (folder / "dicom").mkdir()
    for name in ("CT_small.dcm", "emri_small_10frames.dcm"):
        shutil.copy(DEMO_SCANS / "dicom" / name, folder / "dicom" / name)
    return folder


@pytest.fixture
def real_project(tmp_path, scans_folder):
    """A project with the twelve real scans imported (in process, no worker pool)."""
    from aldesk.app.importer import import_paths
    from aldesk.store import Project

    path = tmp_path / "real-project"
    with Project.create(path, ["normal", "pneumonia"]) as project:
        summary = import_paths(project, [scans_folder], jobs=1)
        assert summary.imported == 12, summary.problems
    return path


@pytest.fixture
def window(qtbot, real_project):
    """The real main window on the small real project; no background ranking unless a test asks."""
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings

    win = MainWindow(Settings(), "dr_test", real_project, retrain_on_open=False)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def label_values(project_path, annotator="dr_test") -> dict[int, str]:
    from aldesk.store import Project

    with Project.open(project_path) as project:
        return {l.scan_id: l.value for l in project.labels.current(annotator)}


def wait_full_resolution(qtbot, win, timeout=5000):
    qtbot.waitUntil(lambda: win.viewer.frames is not None and not win.viewer.is_preview, timeout=timeout)
    return np.asarray(win.viewer.frames)
