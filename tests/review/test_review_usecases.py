"""Use cases and CLI for several readers, on a small generated project (real PNG files, imported)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from aldesk.app import review
from aldesk.app.labelling import final_labels, label_vector, record_label, training_labels
from aldesk.cli import main
from aldesk.errors import InputFileError, NotEnoughLabelsError, ProjectError
from aldesk.learning.base import UNLABELLED
from aldesk.store import Project

N_SCANS = 30


def write_scan(path: Path, bright: bool, seed: int) -> None:
    """A 32 x 32 grey PNG: noise, plus a bright disc for the 'pneumonia' ones."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = rng.normal(80, 20, (32, 32))
    if bright:
        yy, xx = np.mgrid[:32, :32]
        img[(yy - 16) ** 2 + (xx - 16) ** 2 < 100] += 120
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)


@pytest.fixture
def proj(tmp_path):
    """30 imported scans; scan i (ids in file order) is 'pneumonia' when i is odd. Yields (project, ids)."""
    from aldesk.app.importer import import_paths

    folder = tmp_path / "scans"
    for i in range(N_SCANS):
        write_scan(folder / f"s{i:02}.png", bright=i % 2 == 1, seed=i)
    project = Project.create(tmp_path / "proj", ["normal", "pneumonia"])
    import_paths(project, [folder], jobs=1)
    by_name = {Path(r.relpath).name: r.id for r in project.scans.rows()}
    ids = [by_name[f"s{i:02}.png"] for i in range(N_SCANS)]
    yield project, ids
    project.close()


def truth(i: int) -> str:
    return "pneumonia" if i % 2 else "normal"


def read(project, annotator, values: dict[int, str], **kw):
    for scan, value in values.items():
        record_label(project, scan, annotator, value, **kw)


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ------------------------------------------------------------------------------------------ settings, roles
def test_settings_defaults_update_and_validation(proj, capsys):
    project, _ = proj
    assert review.review_settings(project) == {"reads_per_scan": 1, "double_read_fraction": 0.0,
                                               "blind_reading": True, "ordered_classes": False}
    assert review.update_review_settings(project, reads_per_scan=3, ordered_classes=True)["reads_per_scan"] == 3
    assert project.settings()["retrain_every"] == 10  # other settings kept
    for bad in (0, 6, 2.5, True):
        with pytest.raises(ProjectError, match=r"reads_per_scan == .*, must be a whole number from 1 to 5"):
            review.update_review_settings(project, reads_per_scan=bad)
    for bad in (-0.1, 1.5, "x"):
        with pytest.raises(ProjectError, match=r"double_read_fraction == .*, must be between 0 and 1"):
            review.update_review_settings(project, double_read_fraction=bad)
    with pytest.raises(ProjectError, match="blind_reading == 'yes', must be true or false"):
        review.update_review_settings(project, blind_reading="yes")

    rc, out, _ = run(capsys, "settings", project.path, "--reads-per-scan", 2, "--double-read-fraction", "20%",
                     "--blind-reading", "off", "--json")
    assert rc == 0 and json.loads(out) == {"reads_per_scan": 2, "double_read_fraction": 0.2,
                                           "blind_reading": False, "ordered_classes": True,
                                           "audit_fraction": 0.1}
    rc, _, err = run(capsys, "settings", project.path, "--reads-per-scan", 9)
    assert rc == 1 and "reads_per_scan == 9, must be a whole number from 1 to 5" in err
    rc, _, err = run(capsys, "settings", project.path, "--double-read-fraction", "lots")
    assert rc == 1 and "double_read_fraction == 'lots', must be between 0 and 1" in err


def test_roles_from_use_case_and_cli(proj, capsys):
    project, _ = proj
    assert review.set_role(project, "dr_lee", "reviewer") == {"name": "dr_lee", "role": "reviewer", "reads": 0}
    with pytest.raises(ProjectError, match="role == 'boss', must be one of annotator, reviewer, lead"):
        review.set_role(project, "dr_lee", "boss")
    rc, out, _ = run(capsys, "annotator", project.path, "dr_kim", "--role", "lead", "--json")
    assert rc == 0 and json.loads(out)["role"] == "lead"
    rc, out, _ = run(capsys, "annotator", project.path, "--json")
    assert {r["name"]: r["role"] for r in json.loads(out)} == {"dr_kim": "lead", "dr_lee": "reviewer"}
    rc, _, err = run(capsys, "annotator", project.path, "--role", "lead")
    assert rc == 2 and "--role needs a NAME" in err


def test_label_csv_records_note_and_duration(proj, tmp_path, capsys):
    project, ids = proj
    csv = tmp_path / "a.csv"
    csv.write_text("path,label,note,duration_ms\ns00.png,normal,clear lungs,4200\ns01.png,pneumonia,,\n")
    rc, _, _ = run(capsys, "label", project.path, "--csv", csv, "--annotator", "ann")
    assert rc == 0
    rows = {r.scan_id: r for r in project.labels.reads(annotator="ann")}
    assert (rows[ids[0]].note, rows[ids[0]].duration_ms, rows[ids[0]].source) == ("clear lungs", 4200, "csv")
    assert rows[ids[0]].workstation and rows[ids[1]].duration_ms is None
    csv.write_text("path,label,duration_ms\ns02.png,normal,abc\n")
    from aldesk.app.labelling import label_from_csv

    with pytest.raises(InputFileError, match="line 2: duration_ms 'abc' is not a whole number of milliseconds"):
        label_from_csv(project, csv, "ann")


# ------------------------------------------------------------------------------------------ assignment
def test_double_read_choice_is_deterministic_and_near_the_fraction():
    uids = [f"1.2.3.{i}" for i in range(10000)]
    chosen = [review.double_read_selected(u, 0.2) for u in uids]
    assert chosen == [review.double_read_selected(u, 0.2) for u in uids]
    assert 0.18 < np.mean(chosen) < 0.22
    assert not any(review.double_read_selected(u, 0.0) for u in uids[:100])
    assert all(review.double_read_selected(u, 1.0) for u in uids[:100])


def test_queue_follows_ranking_and_skips_what_is_done(proj):
    project, ids = proj
    read(project, "ann", {ids[0]: "normal", ids[1]: "pneumonia"})
    read(project, "ann", {ids[2]: "skip"})
    ranking = [ids[5], ids[0], ids[2], ids[4], ids[1], ids[3]]
    # one read per scan: ann's reads are done for everyone; ann's skip is open for others only
    assert review.annotator_queue(project, "bob", ranking) == [ids[5], ids[2], ids[4], ids[3]]
    assert review.annotator_queue(project, "ann", ranking) == [ids[5], ids[4], ids[3]]
    assert review.annotator_queue(project, "bob", ranking, limit=2) == [ids[5], ids[2]]


def test_queue_mixes_in_scans_that_need_a_second_read(proj):
    project, ids = proj
    review.update_review_settings(project, double_read_fraction=1.0)
    read(project, "ann", {ids[0]: "normal", ids[1]: "pneumonia", ids[2]: "normal"})
    ranking = [ids[9], ids[1], ids[8], ids[7]]
    # pending second reads (ranked one first, then by id) alternate with unread ranked scans
    assert review.annotator_queue(project, "bob", ranking) == [ids[1], ids[9], ids[0], ids[8], ids[2], ids[7]]
    read(project, "bob", {ids[1]: "pneumonia"})
    assert ids[1] not in review.annotator_queue(project, "cat", ranking)  # two reads are enough
    review.update_review_settings(project, double_read_fraction=0.0, reads_per_scan=3)
    assert review.annotator_queue(project, "cat", ranking)[:2] == [ids[1], ids[9]]


def test_read_request_puts_a_scan_first_until_a_new_reader_reads_it(proj):
    project, ids = proj
    review.set_role(project, "rev", "reviewer")
    read(project, "ann", {ids[3]: "pneumonia"})
    read(project, "bob", {ids[3]: "normal"})
    ranking = [ids[10], ids[11]]
    assert review.annotator_queue(project, "cat", ranking) == [ids[10], ids[11]]
    review.request_read(project, ids[3], "rev", "readers split")
    assert review.annotator_queue(project, "cat", ranking) == [ids[3], ids[10], ids[11]]
    assert ids[3] not in review.annotator_queue(project, "ann", ranking)
    with pytest.raises(ProjectError, match=f"scan {ids[3]} already waits for another read"):
        review.request_read(project, ids[3], "rev")
    read(project, "ann", {ids[3]: "normal"})  # a changed read by an earlier reader does not count
    assert review.annotator_queue(project, "cat", ranking)[0] == ids[3]
    read(project, "cat", {ids[3]: "normal"})
    assert [r.status for r in project.reviews.read_requests(ids[3])] == ["read"]
    assert ids[3] not in review.annotator_queue(project, "dan", ranking)
    review.request_read(project, ids[3], "rev")  # met requests do not block a new one


# ------------------------------------------------------------------------------------------ blind reading
def test_blind_reading_hides_others_and_the_model_until_the_own_read_is_saved(proj):
    project, ids = proj
    read(project, "ann", {ids[4]: "pneumonia"}, note="right base")
    view = review.reader_view(project, ids[4], "bob", model_guess=("pneumonia", 0.9))
    assert view.blind and view.own is None and view.other_reads == [] and view.model_guess is None
    read(project, "bob", {ids[4]: "skip"})
    assert review.reader_view(project, ids[4], "bob", model_guess=("pneumonia", 0.9)).blind  # a skip is no read
    read(project, "bob", {ids[4]: "normal"})
    view = review.reader_view(project, ids[4], "bob", model_guess=("pneumonia", 0.9))
    assert not view.blind and view.own.value == "normal" and view.model_guess == ("pneumonia", 0.9)
    assert [(r.annotator, r.value, r.note) for r in view.other_reads] == [("ann", "pneumonia", "right base")]
    review.update_review_settings(project, blind_reading=False)
    assert not review.reader_view(project, ids[4], "cat").blind
    with pytest.raises(ProjectError, match="scan 9999 is not in this project"):
        review.reader_view(project, 9999, "cat")


# ------------------------------------------------------------------------------------------ consensus
def test_final_label_is_adjudicated_then_majority_with_weights(proj):
    project, ids = proj
    review.set_role(project, "rev", "lead")
    read(project, "ann", {ids[0]: "normal", ids[1]: "pneumonia", ids[2]: "normal", ids[3]: "unsure"})
    read(project, "bob", {ids[0]: "normal", ids[1]: "normal", ids[2]: "normal"})
    read(project, "cat", {ids[0]: "pneumonia", ids[2]: "normal"})
    # three scans read twice or more (< MIN_OVERLAP): majority vote; the tie on ids[1] gives no label
    cons = review.project_consensus(project)
    assert cons.method == "majority" and cons.confusion is None
    assert final_labels(project) == {ids[0]: "normal", ids[2]: "normal"}
    y, w = training_labels(project, np.array([ids[0], ids[1], ids[2], ids[3], ids[4]]))
    assert y.tolist() == [0, UNLABELLED, 0, UNLABELLED, UNLABELLED]
    assert w == pytest.approx([2 / 3, 0, 1, 0, 0])
    review.adjudicate(project, ids[1], "Pneumonia", "air bronchogram", "rev")
    assert final_labels(project)[ids[1]] == "pneumonia"
    assert review.project_consensus(project).final[ids[1]].source == "adjudicated"
    assert training_labels(project, np.array([ids[1]]))[1].tolist() == [1.0]
    assert label_vector(project, np.array([ids[1], ids[4]])).tolist() == [1, UNLABELLED]


def test_dawid_skene_takes_over_with_enough_double_reads(proj):
    project, ids = proj
    rng = np.random.default_rng(0)
    for name, err in (("ann", 0.0), ("bob", 0.1), ("cat", 0.45)):
        read(project, name, {s: truth(i) if rng.random() >= err else truth(i + 1) for i, s in enumerate(ids)})
    cons = review.project_consensus(project)
    assert cons.method == "dawid-skene" and cons.confusion.shape == (3, 2, 2)
    final = final_labels(project)
    assert sum(final[s] == truth(i) for i, s in enumerate(ids)) >= 28
    y, w = training_labels(project, np.array(ids))
    assert (y != UNLABELLED).all() and ((w > 0.5) & (w <= 1.0)).all()
    accuracy = {r["name"]: r["accuracy"] for r in review.agreement(project, n_boot=0)["readers"]}
    assert accuracy["ann"] > accuracy["bob"] > accuracy["cat"]


# ------------------------------------------------------------------------------------------ agreement
def test_agreement_json_from_cli(proj, capsys):
    project, ids = proj
    rng = np.random.default_rng(1)
    given = {}
    for name, err in (("ann", 0.1), ("bob", 0.2), ("cat", 0.3)):
        given[name] = {s: truth(i) if rng.random() >= err else truth(i + 1) for i, s in enumerate(ids[:25])}
        read(project, name, given[name])
    read(project, "cat", {ids[0]: "unsure"})
    rc, out, _ = run(capsys, "agreement", project.path, "--json", "--bootstrap", 200)
    assert rc == 0
    report = json.loads(out)
    pair = next(p for p in report["pairs"] if (p["a"], p["b"]) == ("ann", "cat"))
    shared = ids[1:25]
    assert pair["n"] == 24
    assert pair["cohen_kappa"] == pytest.approx(
        cohen_kappa_score([given["ann"][s] for s in shared], [given["cat"][s] for s in shared]), abs=1e-6)
    assert len(pair["cohen_kappa_ci"]) == 2
    assert isinstance(report["fleiss_kappa"], float) and isinstance(report["krippendorff_alpha"], float)
    assert report["consensus"]["method"] == "dawid-skene"
    readers = {r["name"]: r for r in report["readers"]}
    assert readers["cat"]["unsure"] == 1 and len(readers["cat"]["confusion"]) == 2
    assert "krippendorff_alpha_ordinal" not in report
    rc, out, _ = run(capsys, "agreement", project.path)
    assert rc == 0 and "Fleiss' kappa" in out and "ann" in out
    with pytest.raises(ProjectError, match="bootstrap == -1, must be a whole number >= 0"):
        review.agreement(project, n_boot=-1)


# ------------------------------------------------------------------------------------------ adjudication
def test_review_queue_orders_disputes_and_adjudication_removes_them(proj):
    project, ids = proj
    review.set_role(project, "rev", "reviewer")
    read(project, "ann", {ids[0]: "normal", ids[1]: "pneumonia", ids[2]: "normal", ids[3]: "normal"},
         note="ann's note")
    read(project, "bob", {ids[0]: "pneumonia", ids[1]: "pneumonia", ids[2]: "unsure", ids[3]: "normal"})
    read(project, "cat", {ids[1]: "normal"})
    queue = review.review_queue(project)
    assert [i.scan_id for i in queue] == [ids[0], ids[1], ids[2]]  # tie (no label), 2:1 split, 1 of 2 unsure
    assert queue[0].reasons == ["disagreement"] and queue[0].impact == 1.0
    assert queue[1].impact == pytest.approx((1 - 2 / 3) / 0.5)
    assert queue[2].reasons == ["unsure"] and queue[2].impact == pytest.approx(0.5)
    assert [(r.annotator, r.value, r.note) for r in queue[0].reads] == [
        ("ann", "normal", "ann's note"), ("bob", "pneumonia", "")]
    review.adjudicate(project, ids[0], "normal", "no consolidation", "rev")
    review.request_read(project, ids[1], "rev")
    queue = review.review_queue(project)
    assert [(i.scan_id, i.status) for i in queue] == [(ids[2], "to decide"), (ids[1], "awaiting read")]
    assert [i.scan_id for i in review.review_queue(project, include_waiting=False)] == [ids[2]]
    item = review.review_item(project, ids[0])
    assert item.status == "decided" and item.decisions[-1].reason == "no consolidation"
    review.adjudicate(project, ids[0], "pneumonia", "second look", "rev")  # a new decision, history kept
    assert [d.value for d in review.review_item(project, ids[0]).decisions] == ["normal", "pneumonia"]
    assert final_labels(project)[ids[0]] == "pneumonia"
    review.adjudicate(project, ids[1], "pneumonia", "settled", "rev")
    assert project.reviews.read_requests(ids[1])[0].status == "adjudicated"


def test_adjudication_errors_are_clear(proj):
    project, ids = proj
    review.set_role(project, "ann", "annotator")
    review.set_role(project, "rev", "reviewer")
    with pytest.raises(ProjectError, match="ann is an annotator; only a reviewer or lead can adjudicate"):
        review.adjudicate(project, ids[0], "normal", "x", "ann")
    with pytest.raises(ProjectError, match="no reader named 'nobody' in this project"):
        review.request_read(project, ids[0], "nobody")
    with pytest.raises(ProjectError, match="final label 'unsure' is not a class of this project"):
        review.adjudicate(project, ids[0], "unsure", "x", "rev")
    with pytest.raises(ProjectError, match="give a reason for the final label"):
        review.adjudicate(project, ids[0], "normal", "  ", "rev")
    with pytest.raises(ProjectError, match="scan 9999 is not in this project"):
        review.adjudicate(project, 9999, "normal", "x", "rev")
    with pytest.raises(ProjectError, match="no scan 'nope.png' in this project"):
        review.find_scan(project, "nope.png")


def test_review_from_the_cli(proj, capsys):
    project, ids = proj
    review.set_role(project, "rev", "reviewer")
    read(project, "ann", {ids[5]: "normal", ids[6]: "normal"})
    read(project, "bob", {ids[5]: "pneumonia", ids[6]: "normal"}, duration_ms=3000)
    rc, out, _ = run(capsys, "review", project.path, "--list", "--json")
    listed = json.loads(out)
    assert rc == 0 and [i["scan_id"] for i in listed["items"]] == [ids[5]]
    item = listed["items"][0]
    assert item["reasons"] == ["disagreement"] and item["status"] == "to decide"
    assert {r["annotator"]: (r["label"], r["duration_ms"]) for r in item["reads"]} == {
        "ann": ("normal", None), "bob": ("pneumonia", 3000)}
    rc, out, _ = run(capsys, "review", project.path, "--scan", "s05.png", "--final", "pneumonia",
                     "--reason", "opacity", "--reviewer", "rev")
    assert rc == 0 and f"scan {ids[5]}: final label pneumonia" in out
    rc, out, _ = run(capsys, "review", project.path, "--list")
    assert rc == 0 and "0 scans to review" in out
    rc, out, _ = run(capsys, "review", project.path, "--scan", ids[6], "--request-read", "--reviewer", "rev")
    assert rc == 0
    rc, _, err = run(capsys, "review", project.path, "--scan", ids[6], "--request-read", "--reviewer", "rev")
    assert rc == 1 and "already waits for another read" in err
    rc, out, _ = run(capsys, "review", project.path, "--scan", ids[6], "--json")
    assert json.loads(out)["requests"][0]["status"] == "open"
    rc, _, err = run(capsys, "review", project.path, "--scan", ids[6], "--final", "normal", "--reviewer", "rev")
    assert rc == 2 and "--final needs --reason TEXT" in err
    rc, _, err = run(capsys, "review", project.path, "--scan", ids[6], "--final", "normal", "--reason", "x")
    assert rc == 2 and "need --scan ID and --reviewer NAME" in err
    rc, out, _ = run(capsys, "queue", project.path, "--annotator", "cat", "--limit", 3, "--json")
    assert [q["scan_id"] for q in json.loads(out)["queue"]] == [ids[6], ids[0], ids[1]]


# ------------------------------------------------------------------------------------------ suspected label errors
def test_suspected_label_errors_enter_the_review_queue(proj, capsys):
    project, ids = proj
    review.set_role(project, "rev", "reviewer")
    wrong = {ids[3], ids[8]}
    read(project, "ann", {s: (truth(i + 1) if s in wrong else truth(i)) for i, s in enumerate(ids)})
    report = review.find_suspect_labels(project, folds=3)
    assert report.examined == N_SCANS
    flagged = {s.scan_id for s in report.flagged}
    assert wrong <= flagged and len(flagged) <= 6
    queue = {i.scan_id: i for i in review.review_queue(project)}
    assert wrong <= set(queue)
    assert queue[ids[3]].reasons == ["second opinion suggested"] and queue[ids[3]].suspect.suggested == "pneumonia"
    review.adjudicate(project, ids[3], "pneumonia", "model was right", "rev")
    assert ids[3] not in {i.scan_id for i in review.review_queue(project)}
    rc, out, _ = run(capsys, "review", project.path, "--find-errors", "--folds", 3, "--json")
    assert rc == 0 and ids[3] not in {s["scan_id"] for s in json.loads(out)["flagged"]}


def test_suspect_search_needs_labels(proj):
    project, ids = proj
    read(project, "ann", {ids[0]: "normal", ids[1]: "pneumonia"})
    with pytest.raises(NotEnoughLabelsError, match="2 scans have a training label; label at least two scans"):
        review.find_suspect_labels(project)
    with pytest.raises(ProjectError, match="folds == 1, must be a whole number >= 2"):
        review.find_suspect_labels(project, folds=1)


def test_agreement_cli_judges_each_reader_against_the_others_not_their_own_read(proj, capsys):
    """Issue 13: a reader 25 % wrong on purpose showed 'estimated accuracy 1.000, kappa vs consensus 1.000'."""
    project, ids = proj
    read(project, "ann", {s: truth(i) for i, s in enumerate(ids)})
    read(project, "bob", {s: truth(i) for i, s in enumerate(ids)})
    wrong = set(ids[::4])                                          # 8 of 30 wrong on purpose: accuracy 0.733
    read(project, "eve", {s: (truth(i + 1) if s in wrong else truth(i)) for i, s in enumerate(ids)})
    report = review.agreement(project, n_boot=0)
    eve = {r["name"]: r for r in report["readers"]}["eve"]
    assert eve["accuracy"] == pytest.approx(22 / 30, abs=1e-3) and eve["why"] is None
    assert {v["reader"]: v for v in report["vs_consensus"]}["eve"]["cohen_kappa"] < 0.7
    rc, out, _ = run(capsys, "agreement", project.path, "--bootstrap", 0)
    assert rc == 0 and "eve (annotator): 30 reads, 0 unsure, estimated accuracy 0.733" in out
    assert "estimated accuracy 1.000" in out                       # ann and bob were right on every scan


def test_agreement_cli_says_why_two_readers_cannot_be_told_apart(proj, capsys):
    project, ids = proj
    read(project, "ann", {s: truth(i) for i, s in enumerate(ids)})
    read(project, "eve", {s: (truth(i + 1) if i % 4 == 0 else truth(i)) for i, s in enumerate(ids)})
    rc, out, _ = run(capsys, "agreement", project.path, "--bootstrap", 0)
    assert rc == 0 and out.count("estimated accuracy n/a") == 2
    assert "not estimated: each scan eve shares with others was read by one other reader only" in out
    assert "estimated accuracy 1.000" not in out
