"""CLI rough edges (issue 13 point 10): help texts, strategy names, early failures, `| head`, wording."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aldesk.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "resources" / "demo" / "scans" / "chest-xray-mnist"


def _walk(parser, prefix=""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{prefix}{name} ")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield f"{prefix}{'/'.join(action.option_strings) or action.dest}", action


def test_every_option_of_every_command_has_help_text():
    options = list(_walk(build_parser()))
    assert len(options) > 120
    assert [name for name, a in options if not (a.help or "").strip()] == []


def test_rank_help_lists_the_strategy_names_and_only_rank_imports_them(capsys):
    with pytest.raises(SystemExit):
        main(["rank", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "one of: random, least_confidence," in out and "hybrid" in out and "cold_start" in out
    code = ("import sys; from aldesk.cli import build_parser; build_parser().parse_args(['info', 'x']); "
            "print('aldesk.learning.strategies' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"      # `aldesk info` does not pay for scikit-learn's import


@pytest.fixture(scope="module")
def small_project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    folder = tmp / "scans"
    folder.mkdir()
    for p in sorted(DEMO.glob("*.png"))[:16]:
        shutil.copy(p, folder / p.name)
    for i in range(1500):                      # not scans: `aldesk problems` lists each, enough to fill a pipe
        (folder / f"notes_{i:04}.txt").write_text("not a scan\n")
    project = tmp / "p"
    assert main(["init", str(project), "--classes", "normal,pneumonia"]) == 0
    assert main(["import", str(project), str(folder), "--jobs", "1", "--quiet"]) == 0
    return project


def test_an_unknown_strategy_fails_before_any_feature_is_extracted(small_project, capsys, monkeypatch):
    import aldesk.app.modelling as modelling

    monkeypatch.setattr(modelling, "rank", lambda *a, **k: pytest.fail("features were extracted"))
    with pytest.raises(SystemExit) as exit_:
        main(["rank", str(small_project), "--strategy", "psychic"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "invalid choice: 'psychic'" in err and "'hybrid'" in err


def test_rank_says_why_it_answers_with_cold_start(small_project, capsys):
    assert main(["rank", str(small_project), "--strategy", "entropy", "--batch", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("strategy cold_start: next 3 of 16 unread scans (0 labelled)")
    assert "(not entropy: " in out and "cold_start picks typical and diverse scans until then" in out


def test_piping_into_head_prints_no_traceback(small_project):
    cmd = f"{sys.executable} -m aldesk problems {small_project} | head -n 1"
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.count("\n") == 1 and "not-a-scan" in out.stdout
    assert "Traceback" not in out.stderr and "BrokenPipeError" not in out.stderr, out.stderr


def test_train_says_5_fold_not_5_0(capsys, monkeypatch, small_project):
    import aldesk.app.modelling as modelling
    from aldesk.app.modelling import _plain

    assert _plain(5) == 5 and isinstance(_plain(5), int) and _plain(0.5) == 0.5 and _plain(True) is True
    report = {"model": "logistic", "extractor": "default", "labels": 40, "per_class": {"normal": 20, "pneumonia": 20},
              "folds": 5.0, "objective": "balanced_accuracy", "balanced_accuracy": 0.8, "accuracy": 0.8}
    monkeypatch.setattr(modelling, "train", lambda *a, **k: report)
    assert main(["train", str(small_project), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "5-fold cross-validation" in out and "5.0-fold" not in out
