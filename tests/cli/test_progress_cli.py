"""`aldesk progress`, the audit fields of `aldesk train --json`, `aldesk settings --audit-fraction` (contracts)."""

from __future__ import annotations

import json
import shutil

import pytest

from aldesk.cli import main


@pytest.fixture(scope="module")
def campaign(read_campaign, tmp_path_factory):
    """A copy of the shared read-through project (tests/conftest.py): these tests train and change settings."""
    path = tmp_path_factory.mktemp("cli") / "p"
    shutil.copytree(read_campaign, path)
    return path


def test_train_json_has_audit_accuracy_and_ci(campaign, capsys):
    assert main(["train", str(campaign), "--folds", "2", "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["labels"] == 100 and report["audit_n"] >= 8
    lo, hi = report["audit_ci"]
    assert lo <= report["audit_accuracy"] <= hi


def test_progress_json_contract(campaign, capsys):
    assert main(["progress", str(campaign), "--json", "--more", "50"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("labels", "audit_accuracy", "audit_ci", "stability_kappa", "projected", "recommendation"):
        assert key in report
    assert report["labels"] == 100
    assert report["stability_kappa"] is not None and -1 <= report["stability_kappa"] <= 1
    assert report["recommendation"].startswith(("Keep labelling", "You can stop", "The model has stabilised"))


def test_progress_text(campaign, capsys):
    assert main(["progress", str(campaign), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "audit accuracy" in out and "stability" in out and "100 labels" in out


def test_settings_audit_fraction(campaign, capsys):
    assert main(["settings", str(campaign), "--audit-fraction", "5%", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["audit_fraction"] == pytest.approx(0.05)
    assert main(["settings", str(campaign), "--audit-fraction", "0.9"]) != 0
    assert "audit_fraction == 0.9, must be between 0 and 0.5" in capsys.readouterr().err
    assert main(["settings", str(campaign), "--audit-fraction", "0.1", "--json"]) == 0


def test_progress_on_a_new_project_says_what_is_missing(tmp_path, capsys):
    assert main(["init", str(tmp_path / "new"), "--classes", "a,b"]) == 0
    capsys.readouterr()
    assert main(["progress", str(tmp_path / "new"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("Keep labelling (0 labels): not enough models yet")
    assert "(0 models so far, 4 needed)" in captured.out and "Warning" not in captured.err
