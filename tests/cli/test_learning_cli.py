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
    assert out.returncode == 1 and "unknown strategy 'psychic'" in out.stderr and "hybrid" in out.stderr


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
