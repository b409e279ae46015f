"""The learning commands end to end on a small real project: label, train, rank, simulate (CLI contracts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aldesk.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mnist_subset(tmp_path_factory):
    """A small MedMNIST-style .npz cut from the real PneumoniaMNIST (120 pool + 60 test images)."""
    from tests.conftest import PNEUMONIAMNIST

    if not PNEUMONIAMNIST.is_file():
        pytest.skip(f"PneumoniaMNIST not found at {PNEUMONIAMNIST}")
    data = np.load(PNEUMONIAMNIST)
    rng = np.random.default_rng(0)
    tr = rng.choice(len(data["train_labels"]), 120, replace=False)
    te = rng.choice(len(data["test_labels"]), 60, replace=False)
    path = tmp_path_factory.mktemp("npz") / "small.npz"
    np.savez(path, train_images=data["train_images"][tr], train_labels=data["train_labels"][tr],
             test_images=data["test_images"][te], test_labels=data["test_labels"][te])
    return path


@pytest.fixture(scope="module")
def labelled_project(tmp_path_factory, mnist_subset):
    from aldesk.app.simulate import npz_to_folder

    work = tmp_path_factory.mktemp("proj")
    images, answers, _ = npz_to_folder(mnist_subset, work / "data")
    project = work / "p"
    assert main(["init", str(project), "--classes", "normal,pneumonia"]) == 0
    assert main(["import", str(project), str(images), "--jobs", "1", "--quiet"]) == 0
    rows = answers.read_text().splitlines()[1:41]  # the first 40 answers as one reader's labels
    csv = work / "labels.csv"
    csv.write_text("path,label\n" + "\n".join(",".join(r.split(",")[:2]) for r in rows) + "\n")
    assert main(["label", str(project), "--csv", str(csv), "--annotator", "dr_a"]) == 0
    return project, answers


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aldesk", *args], capture_output=True, text=True, cwd=REPO)


def test_rank_json_contract(labelled_project):
    project, _ = labelled_project
    out = _run("rank", str(project), "--strategy", "hybrid", "--batch", "7", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["strategy"] == "hybrid" and len(data["batch"]) == 7
    for item in data["batch"]:
        assert set(item) >= {"scan_id", "path", "score", "reason"}
        assert Path(item["path"]).is_file() and item["reason"]
    ids = [b["scan_id"] for b in data["batch"]]
    assert len(set(ids)) == 7


@pytest.mark.parametrize("strategy", ["entropy", "margin", "coreset", "badge", "bald", "random"])
def test_rank_every_strategy_from_the_cli(labelled_project, strategy):
    project, _ = labelled_project
    out = _run("rank", str(project), "--strategy", strategy, "--batch", "3", "--json")
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["batch"]) == 3


def test_rank_unknown_strategy_is_a_clear_error(labelled_project):
    project, _ = labelled_project
    out = _run("rank", str(project), "--strategy", "psychic")
    # refused by the argument parser (issue 13): exit 2, the names listed, before any feature is extracted
    assert out.returncode == 2 and "invalid choice: 'psychic'" in out.stderr and "hybrid" in out.stderr


def test_train_reports_cross_validated_metrics(labelled_project):
    project, _ = labelled_project
    out = _run("train", str(project), "--json", "--folds", "3")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["labels"] == 40
    for key in ("accuracy", "balanced_accuracy", "auc", "ece"):
        assert 0.0 <= report[key] <= 1.0
    assert report["accuracy"] > 0.55  # real chest X-rays: better than a coin


def test_label_csv_with_an_unknown_path_names_the_line_and_records_nothing(labelled_project, tmp_path):
    project, _ = labelled_project
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\ntrain/train_000.png,normal\nnope/missing.png,normal\n")
    out = _run("label", str(project), "--csv", str(bad), "--annotator", "dr_b")
    assert out.returncode == 1 and "line 3" in out.stderr and "nothing was recorded" in out.stderr
    info = json.loads(_run("info", str(project), "--json").stdout)
    assert "dr_b" not in info["annotators"]


def test_simulate_from_npz_writes_results_and_curves(tmp_path, mnist_subset):
    out_dir = tmp_path / "sim"
    out = _run("simulate", str(tmp_path / "simproj"), "--npz", str(mnist_subset), "--classes", "normal,pneumonia",
               "--strategies", "random,entropy,hybrid", "--seeds", "2", "--initial", "10", "--batch", "10",
               "--budget", "40", "--out", str(out_dir), "--quiet")
    assert out.returncode == 0, out.stderr
    results = json.loads((out_dir / "results.json").read_text())
    assert set(results["strategies"]) >= {"random", "entropy", "hybrid"}
    for name, res in results["strategies"].items():
        assert len(res["runs"]) == 2 and "aulc" in res and "labels_to_match_random" in res
        for run in res["runs"]:
            assert run["labels"] == [10, 20, 30, 40]
            assert {"seed", "accuracy", "balanced_accuracy", "auc"} <= set(run)
            assert len(run["accuracy"]) == len(run["auc"]) == 4
    assert (out_dir / "curves.png").stat().st_size > 10_000
    assert "random" in out.stdout and "hybrid" in out.stdout


def test_simulate_with_an_answer_key(labelled_project, tmp_path):
    project, answers = labelled_project
    out = _run("simulate", str(project), "--answers", str(answers), "--strategies", "margin", "--seeds", "2",
               "--initial", "10", "--batch", "10", "--budget", "30", "--out", str(tmp_path / "sim2"), "--quiet")
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "sim2" / "results.json").read_text())
    assert results["setup"]["test"] == 60  # the answer key's split=test rows are held out
    assert set(results["strategies"]) == {"random", "margin"}


def _conflicting_key(answers: Path, tmp_path: Path) -> Path:
    """The answer key with one pool image repeated with the other label (line 2 vs the last line) and one pool
    image repeated in the test split with its own label (line 3 vs the line before last)."""
    lines = answers.read_text().splitlines()
    first, second = lines[1].split(","), lines[2].split(",")
    other = "0" if first[1] == "1" else "1"
    key = tmp_path / "conflicting.csv"
    key.write_text("\n".join(lines + [f"{second[0]},{second[1]},test", f"{first[0]},{other},pool"]) + "\n")
    return key


def test_simulate_reports_conflicts_and_leaves_the_image_out(labelled_project, tmp_path):
    project, answers = labelled_project
    key = _conflicting_key(answers, tmp_path)
    n_lines = len(key.read_text().splitlines())
    out = _run("simulate", str(project), "--answers", str(key), "--strategies", "random,default", "--seeds", "2",
               "--initial", "10", "--batch", "10", "--budget", "30", "--out", str(tmp_path / "sim"), "--quiet")
    assert out.returncode == 0, out.stderr
    assert f"lines 2 and {n_lines} are the same image" in out.stdout and "dropped" in out.stdout
    assert f"line 3 (pool) is the same image as line {n_lines - 1} (test split): held out of the pool" in out.stdout
    results = json.loads((tmp_path / "sim" / "results.json").read_text())
    conflict, = results["answers"]["conflicts"]
    assert conflict == {"file": "conflicting.csv", "line": 2, "label": conflict["label"], "other_line": n_lines,
                        "other_label": conflict["other_label"], "resolution": "dropped"}
    assert {conflict["label"], conflict["other_label"]} == {"normal", "pneumonia"}
    assert results["answers"]["held_out_of_pool"] == [{"file": "conflicting.csv", "line": 3, "test_line": n_lines - 1}]
    # 180 images, one dropped (the conflict), one moved from the pool to the test split
    assert results["setup"]["test"] == 61 and results["setup"]["pool"] == 118
    # the contract: the default runs under its own name and is named at the top level
    assert results["default"] == "hybrid" and set(results["strategies"]) == {"random", "hybrid"}
    assert results["objective"] == "accuracy"
    strict = _run("simulate", str(project), "--answers", str(key), "--strict", "--strategies", "random",
                  "--seeds", "1", "--budget", "30", "--out", str(tmp_path / "sim-strict"), "--quiet")
    assert strict.returncode == 1 and f"line {n_lines}:" in strict.stderr and "same image as line 2" in strict.stderr


def test_label_csv_conflict_keeps_the_latest_line_with_a_warning(labelled_project, tmp_path):
    project, answers = labelled_project
    path = answers.read_text().splitlines()[5].split(",")[0]
    csv = tmp_path / "twice.csv"
    csv.write_text(f"path,label\n{path},normal\n{path},pneumonia\n")
    strict = _run("label", str(project), "--csv", str(csv), "--annotator", "dr_c", "--strict")
    assert strict.returncode == 1 and "line 3" in strict.stderr and "nothing was recorded" in strict.stderr
    out = _run("label", str(project), "--csv", str(csv), "--annotator", "dr_c", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["added"] == 1 and report["conflicts"] == [
        {"file": "twice.csv", "line": 2, "label": "normal", "other_line": 3, "other_label": "pneumonia",
         "resolution": "latest line kept"}]
    plain = _run("label", str(project), "--csv", str(csv), "--annotator", "dr_c")
    assert plain.returncode == 0 and "warning: twice.csv: lines 2 and 3 are the same image" in plain.stderr
    from aldesk.store import Project

    with Project.open(project) as p:
        assert [r.value for r in p.labels.current("dr_c")] == ["pneumonia"]  # the latest line is the label


def test_objective_setting_drives_train_json(labelled_project):
    project, _ = labelled_project
    out = _run("objective", str(project), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["objective"] == "accuracy"  # two unordered classes
    assert _run("objective", str(project), "balanced_accuracy").returncode == 0
    report = json.loads(_run("train", str(project), "--json", "--quiet").stdout)
    assert list(report)[:2] == ["objective", "balanced_accuracy"] and report["class_weight"] == "balanced"
    bad = _run("objective", str(project), "kappa")
    assert bad.returncode == 1 and "unknown objective 'kappa'" in bad.stderr
    assert _run("objective", str(project), "accuracy").returncode == 0
    report = json.loads(_run("train", str(project), "--json", "--quiet").stdout)
    assert list(report)[:2] == ["objective", "accuracy"] and report["class_weight"] == "none"


def test_graded_classes_train_the_ordinal_model_and_report_kappa(tmp_path, mnist_subset):
    """A project whose classes are ordered grades learns them with the ordinal model and is judged by
    quadratic-weighted kappa (with mean absolute grade error beside it), in train --json and simulate."""
    out_dir = tmp_path / "sim"
    project = tmp_path / "graded"
    assert _run("simulate", str(project), "--npz", str(mnist_subset), "--classes", "grade0,grade1",
                "--strategies", "random", "--seeds", "1", "--initial", "10", "--batch", "10", "--budget", "20",
                "--out", str(out_dir), "--quiet").returncode == 0
    assert _run("settings", str(project), "--ordered-classes", "on").returncode == 0
    answers = out_dir / "data" / "answers.csv"
    rows = answers.read_text().splitlines()[1:41]
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "\n".join(",".join(r.split(",")[:2]) for r in rows) + "\n")
    assert _run("label", str(project), "--csv", str(labels), "--annotator", "a").returncode == 0
    report = json.loads(_run("train", str(project), "--json", "--quiet").stdout)
    assert report["objective"] == "quadratic_kappa" and report["model"] == "ordinal_logistic"
    assert list(report)[:2] == ["objective", "quadratic_kappa"] and "grade_mae" in report
    out = _run("simulate", str(project), "--answers", str(answers), "--strategies", "default", "--seeds", "2",
               "--initial", "10", "--batch", "10", "--budget", "30", "--out", str(tmp_path / "sim2"), "--json",
               "--quiet")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["objective"] == "quadratic_kappa" and summary["setup"]["model"] == "ordinal_logistic"
    assert {"quadratic_kappa", "grade_mae", "ece", "accuracy"} <= set(summary["strategies"]["hybrid"]["final"])
