"""train fits once and rank reuses what it fitted; nothing is recomputed while its inputs are unchanged.

Counted by monkeypatching the expensive steps (model selection, fitting, Dawid–Skene), not timed."""

from __future__ import annotations

import numpy as np
import pytest

from aldesk.app import modelling, review
from aldesk.app.labelling import record_label, undo_label
from aldesk.learning import models
from aldesk.store import Project


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from tests.benchmarks.synthetic_project import build

    path = tmp_path_factory.mktemp("reuse") / "p"
    build(path, 400, reads=180, readers=3, double_read=0.5, progress=lambda *_: None)
    return path


@pytest.fixture
def project(built, tmp_path):
    import shutil

    shutil.copytree(built, tmp_path / "p")
    p = Project.open(tmp_path / "p")
    yield p
    p.close()


def _count(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def test_rank_scores_with_the_model_train_stored(project, monkeypatch):
    modelling.train(project)
    fits = _count(monkeypatch, models, "fit_model")
    ranking = modelling.rank(project, batch=5)
    assert len(ranking.batch) == 5 and ranking.strategy == "hybrid"
    assert fits == [], "rank refitted the model train had just stored"
    # a new label makes the stored model stale: rank fits its own again
    unread = next(s for s in project.scans.ids().tolist() if not project.labels.current_for_scan(s))
    record_label(project, unread, "reader_1", "normal")
    modelling.rank(project, batch=5)
    assert fits, "rank scored with a model trained on other labels"


def test_train_chooses_C_once_and_reuses_it_until_labels_grow(project, monkeypatch):
    selections = _count(monkeypatch, models, "select_C")
    first = modelling.train(project)
    assert len(selections) == 1 and first["C_chosen_at"] == first["labels"]
    second = modelling.train(project)
    assert len(selections) == 1, "train chose C again although the labels had not grown"
    assert second["C"] == first["C"] and second["C_chosen_at"] == first["labels"]
    assert {"accuracy", "balanced_accuracy", "auc", "ece", "folds"} <= set(second)
    # 1.5x more labels: C is chosen again
    unread = [s for s in project.scans.ids().tolist() if not project.labels.current_for_scan(s)]
    reader = project.labels.annotator_id("reader_1")
    project.labels.add_many([{"scan_id": s, "annotator_id": reader, "value": ("normal", "pneumonia")[i % 2]}
                             for i, s in enumerate(unread[:int(first["labels"] * 0.6)])], source="test")
    third = modelling.train(project)
    assert len(selections) == 2 and third["C_chosen_at"] == third["labels"]


def test_a_new_session_reuses_the_C_stored_with_the_model(project, monkeypatch):
    first = modelling.train(project)
    path = project.path
    project.close()
    selections = _count(monkeypatch, models, "select_C")
    with Project.open(path) as again:  # as the GUI's worker or the next CLI command opens it
        second = modelling.train(again)
        ranking = modelling.rank(again, batch=3, strategy="entropy")
    assert selections == [], "a new session chose C again although nothing it depends on changed"
    assert second["C"] == first["C"] and second["C_chosen_at"] == first["labels"]
    assert second["feature_version"] == first["feature_version"] != "" and len(ranking.batch) == 3


def test_C_is_chosen_again_for_other_features_or_another_class_set(project, monkeypatch):
    from dataclasses import replace

    modelling.train(project)
    selections = _count(monkeypatch, models, "select_C")
    data = modelling.load_dataset(project)
    modelling.train(project, data=data)
    assert selections == []
    newer = modelling.train(project, data=replace(data, version=data.version + "-next"))  # the extractor changed
    assert len(selections) == 1 and newer["feature_version"] == data.version + "-next"
    assert newer["C_chosen_at"] == newer["labels"]
    modelling.train(project, data=replace(data, version=data.version + "-next"))
    assert len(selections) == 1, "the C chosen on the new features was not reused"
    monkeypatch.setattr(Project, "classes", property(lambda self: ["normal", "viral pneumonia"]))
    renamed = modelling.train(project, data=replace(data, version=data.version + "-next"))
    assert len(selections) == 2 and list(renamed["per_class"]) == ["normal", "viral pneumonia"]


def test_progress_report_reuses_the_arrays_and_the_C_train_stored(project, monkeypatch):
    """"When can I stop?" (run after every GUI retrain while the dashboard shows) reads the standardised
    pool and the labels from the cache and fits with train's C: no second load, no second model selection."""
    from aldesk.app.progress import progress_report

    first = modelling.train(project)
    selections = _count(monkeypatch, models, "select_C")
    matrices = _count(monkeypatch, project.features, "matrix")
    report = progress_report(project, n_boot=20)
    assert selections == [] and matrices == []
    assert report["labels"] == first["labels"] and report["recommendation"]


def test_train_rejects_bad_folds(project):
    with pytest.raises(Exception, match=r"folds == 1, must be an int >= 2"):
        modelling.train(project, folds=1)


def test_consensus_is_recomputed_only_when_labels_change(project, monkeypatch):
    fits = _count(monkeypatch, review, "consensus")
    first = review.project_consensus(project)
    assert review.project_consensus(project) is first and len(fits) == 1
    unread = next(s for s in project.scans.ids().tolist() if not project.labels.current_for_scan(s))
    label_id = record_label(project, unread, "reader_2", "pneumonia")
    after_label = review.project_consensus(project)
    assert len(fits) == 2 and unread in after_label.final
    undo_label(project, label_id)  # a first read undone: no new row, one current label fewer
    assert unread not in review.project_consensus(project).final and len(fits) == 3


def test_dataset_arrays_are_cached_until_their_inputs_change(project, monkeypatch):
    first = modelling.load_dataset(project)
    matrices = _count(monkeypatch, project.features, "matrix")
    labels = _count(monkeypatch, modelling, "training_labels")
    again = modelling.load_dataset(project)
    assert matrices == [] and labels == [] and again.key == first.key
    assert np.array_equal(again.X, first.X) and np.array_equal(again.y, first.y)
    unread = next(s for s in project.scans.ids().tolist() if not project.labels.current_for_scan(s))
    record_label(project, unread, "reader_3", "normal")
    changed = modelling.load_dataset(project)
    assert matrices == [] and len(labels) == 1 and changed.key != first.key
    assert changed.y[np.flatnonzero(changed.ids == unread)[0]] == 0


def test_an_unreadable_cache_is_rebuilt(project):
    first = modelling.load_dataset(project)
    for f in (project.path / "cache").glob("*.npy"):
        f.write_bytes(b"not an array")
    again = modelling.load_dataset(project)
    assert np.array_equal(again.X, first.X) and np.array_equal(again.weights, first.weights)


def test_predictions_map_scan_ids_without_a_python_object_per_scan():
    from aldesk.app.worklist import Predictions

    pred = Predictions(np.array([30, 10, 20]), np.array([1, 0, 1]), np.array([0.9, 0.6, 0.7]), ["normal", "pneumonia"])
    assert pred[10] == ("normal", 0.6) and pred[30] == ("pneumonia", pytest.approx(0.9))
    assert 20 in pred and 25 not in pred and pred.get(25) is None and len(pred) == 3 and sorted(pred) == [10, 20, 30]
    with pytest.raises(KeyError):
        pred[99]


def test_done_ids_are_the_readers_own_and_the_fully_read(project):
    from aldesk.app.worklist import _done_ids

    mine = {l.scan_id for l in project.labels.current("reader_1")}
    counts = {}
    for l in project.labels.current():
        counts[l.scan_id] = counts.get(l.scan_id, 0) + 1
    assert set(_done_ids(project, "reader_1").tolist()) == mine | set(counts)  # reads_per_scan 1: any read
    project.update_settings(reads_per_scan=2)
    assert set(_done_ids(project, "reader_1").tolist()) == mine | {s for s, n in counts.items() if n >= 2}
    assert set(_done_ids(project, "nobody").tolist()) == {s for s, n in counts.items() if n >= 2}


def test_reopening_an_unchanged_project_ranks_without_retraining(project, monkeypatch):
    """The GUI retrains at open: when nothing changed since the stored model (same labels, features, model and
    class weighting) the first ranking of the session reuses it instead of fitting again (issue 14)."""
    from aldesk.app.worklist import refresh_worklist

    first = refresh_worklist(project, "reader_1")
    fits = _count(monkeypatch, models, "fit_model")
    again = refresh_worklist(project, "reader_1")
    assert fits == [] and again.model_id == first.model_id and again.metrics == first.metrics
    assert project.models.latest()["id"] == first.model_id  # no new model row either
    unread = next(s for s in project.scans.ids().tolist() if not project.labels.current_for_scan(s))
    record_label(project, unread, "reader_1", "normal")
    changed = refresh_worklist(project, "reader_1")
    assert fits and changed.model_id != first.model_id  # a new label: trained again
    from aldesk.app.objective import set_objective

    fits.clear()
    set_objective(project, "balanced_accuracy")  # another class weighting: trained again
    assert refresh_worklist(project, "reader_1").model_id != changed.model_id and fits


def test_each_retrain_starts_from_the_previous_model_and_each_fold_from_its_own(project, monkeypatch):
    """The GUI retrains every few labels: the fit starts from the stored model, and each fold (a scan
    keeps its fold: stable_folds of its id) from the previous model of the same fold."""
    def new_label():
        unread = next(s for s in project.scans.ids().tolist() if not project.labels.current_for_scan(s))
        record_label(project, unread, "reader_1", "normal")

    modelling.train(project, folds=3)
    new_label()
    fits: list[dict] = []
    real_fit = models.fit_model
    monkeypatch.setattr(models, "fit_model", lambda *a, **k: fits.append(k) or real_fit(*a, **k))
    modelling.train(project, folds=3)
    start, groups = fits[-1]["start"], fits[-1]["groups"]
    assert isinstance(start, models.LinearModel) and start.n_labels_ == fits[-1]["groups"].size - 1
    data = modelling.load_dataset(project)
    labelled = data.y != modelling.UNLABELLED
    assert np.array_equal(groups, models.stable_folds(data.ids[labelled], 3))
    stored = models.from_arrays(project.models.latest()["arrays"])
    assert len(stored.fold_models_) == 3

    new_label()
    starts: list = []
    real_est = models._fit_estimator
    monkeypatch.setattr(models, "_fit_estimator", lambda *a, **k: starts.append(a[8]) or real_est(*a, **k))
    modelling.train(project, folds=3)
    assert len(starts) == 4  # the final fit, then 3 folds (C reused: no model selection)
    previous = fits[-1]["start"]
    assert starts[0] is previous
    assert [id(s) for s in starts[1:]] == [id(m) for m in previous.fold_models_]
