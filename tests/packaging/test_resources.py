"""resources/: label sets offered at project creation, SVG icons, the Linux .desktop entry."""

from __future__ import annotations

import configparser
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aldesk.app.label_sets import get_label_set, label_sets, resources_dir
from aldesk.errors import ProjectError
from aldesk.store.project import validate_class_names

REPO = Path(__file__).resolve().parents[2]


def test_the_default_label_sets_are_shipped_and_valid():
    sets = label_sets()
    assert {"normal-abnormal", "normal-pneumonia", "birads", "diabetic-retinopathy"} <= set(sets)
    for s in sets.values():
        assert validate_class_names(s.classes) == s.classes
        assert 2 <= len(s.classes) <= 9, "keys 1..9 label the classes"
        assert s.title and s.description
    assert sets["normal-pneumonia"].classes == ["normal", "pneumonia"]
    assert len(sets["birads"].classes) == 7 and sets["birads"].classes[0].endswith("0")
    dr = sets["diabetic-retinopathy"]
    assert dr.ordered and len(dr.classes) == 5 and dr.classes[0].startswith("DR 0")
    assert not sets["normal-abnormal"].ordered


def test_unknown_label_set_names_the_ones_there_are():
    with pytest.raises(ProjectError, match=r"label set 'nope' not found; choose one of: birads, "):
        get_label_set("nope")


def test_damaged_label_set_says_which_file(tmp_path, monkeypatch):
    (tmp_path / "label_sets").mkdir()
    (tmp_path / "label_sets" / "bad.json").write_text("{not json", encoding="utf-8")
    monkeypatch.setenv("ALDESK_RESOURCES_DIR", str(tmp_path))
    with pytest.raises(ProjectError, match=r"bad.json is damaged"):
        label_sets()


def test_init_with_a_label_set_records_classes_and_order(tmp_path, capsys):
    from aldesk.cli import main as cli
    from aldesk.store import Project

    assert cli(["init", str(tmp_path / "dr"), "--label-set", "diabetic-retinopathy"]) == 0
    with Project.open(tmp_path / "dr") as project:
        assert project.classes == get_label_set("diabetic-retinopathy").classes
        assert project.meta("label_set") == "diabetic-retinopathy"
        assert project.meta("classes_ordered") == "yes"
    assert cli(["init", str(tmp_path / "x"), "--label-set", "nope"]) == 1
    assert "label set 'nope' not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --classes and --label-set are alternatives
        cli(["init", str(tmp_path / "y"), "--classes", "a,b", "--label-set", "birads"])


def test_new_project_dialog_offers_the_label_sets(qtbot, tmp_path):
    from aldesk.ui.project_dialogs import NewProjectDialog

    dlg = NewProjectDialog(None, str(tmp_path))
    qtbot.addWidget(dlg)
    titles = [dlg.label_set.itemText(i) for i in range(dlg.label_set.count())]
    index = titles.index(get_label_set("birads").title)
    dlg.label_set.setCurrentIndex(index)
    dlg.label_set.activated.emit(index)
    assert dlg.values()[1] == get_label_set("birads").classes


@pytest.mark.parametrize("name", ["aldesk", "fit", "invert", "reset", "actual-size"])
def test_icons_are_svg_that_qt_can_draw(qtbot, name):
    from PySide6.QtGui import QIcon

    path = resources_dir() / "icons" / f"{name}.svg"
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    icon = QIcon(str(path))
    assert not icon.isNull() and not icon.pixmap(64, 64).isNull()


def test_desktop_entry_runs_the_gui_with_the_icon():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(REPO / "packaging" / "aldesk.desktop", encoding="utf-8")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Exec"] == "aldesk gui" and d["Icon"] == "aldesk"
    assert d["Terminal"] == "false" and d["Categories"].endswith(";")
