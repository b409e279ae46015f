"""Workstation settings: JSON in ALDESK_CONFIG_DIR, recent projects, damaged files kept aside."""

import json

from aldesk.ui.settings import MAX_RECENT, Settings, config_dir, data_dir


def test_config_dir_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("ALDESK_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("ALDESK_DATA_DIR", str(tmp_path / "data"))
    assert config_dir() == tmp_path / "cfg"
    assert data_dir() == tmp_path / "data"


def test_round_trip_and_recent_projects_first_unique_bounded(tmp_path):
    s = Settings(annotator="dr_lee", theme="light")
    for i in range(MAX_RECENT + 3):
        s.remember_project(tmp_path / f"p{i}")
    s.remember_project(tmp_path / "p5")
    path = s.save()
    assert path.parent == config_dir()
    loaded = Settings.load()
    assert loaded.annotator == "dr_lee" and loaded.theme == "light"
    assert loaded.recent_projects[0] == str((tmp_path / "p5").resolve())
    assert len(loaded.recent_projects) == MAX_RECENT
    assert len(set(loaded.recent_projects)) == MAX_RECENT
    loaded.forget_project(tmp_path / "p5")
    assert str((tmp_path / "p5").resolve()) not in loaded.recent_projects


def test_missing_file_gives_defaults_dark_theme():
    s = Settings.load()
    assert s.theme == "dark" and s.recent_projects == [] and s.annotator == ""


def test_damaged_file_is_kept_aside_and_defaults_used():
    path = config_dir() / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    s = Settings.load()
    assert s.theme == "dark"
    assert (config_dir() / "settings.damaged.json").read_text() == "{not json"


def test_unknown_keys_ignored_bad_theme_reset():
    path = config_dir() / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"theme": "neon", "annotator": "a", "future_key": 1}))
    s = Settings.load()
    assert s.theme == "dark" and s.annotator == "a"
