"""Hand-out copies and the lead's round trip: hand out -> label offline -> package export -> import."""

from __future__ import annotations

import json
import os

import pytest

from aldesk.app.export import ExportOptions, export_labelled_set
from aldesk.app.handout import HANDOUT_NOTE, handout, next_scans_for
from aldesk.app.labelling import final_labels, record_label
from aldesk.app.packages import export_package, import_package
from aldesk.cli import main
from aldesk.errors import ProjectError
from aldesk.store import Project
from tests.export.conftest import label_all, scan_ids_by_name


@pytest.fixture
def read_by_two(study):
    """bob and the lead's model have been at work on the master already."""
    label_all(study, "bob", {"case0_0": "normal", "case1_0": "pneumonia", "img_0": "normal"})
    label_all(study, "alice", {"img_1": "pneumonia"})
    study.models.add(extractor="default", estimator="logistic", n_labels=3, metrics={}, arrays=None)
    return study


def test_blind_handout_holds_only_the_readers_own_labels_and_no_model(read_by_two, tmp_path):
    master = read_by_two
    before = (master.labels.count(), master.scans.count())
    result = handout(master, tmp_path / "alice", annotator="alice", deidentified=False)
    assert result.blind and result.scans == 20 and result.labels_removed == 3
    assert (tmp_path / "alice" / HANDOUT_NOTE).is_file()
    with Project.open(tmp_path / "alice") as copy:
        assert copy.project_id == master.project_id
        assert [(l.annotator, l.value) for l in copy.labels.current()] == [("alice", "pneumonia")]
        assert copy.models.latest() is None
        assert [n for n, _ in copy.labels.annotators()] == ["alice"]
        assert json.loads(copy.meta("handout"))["annotator"] == "alice"
        assert copy.integrity_check() == "ok"
    assert (master.labels.count(), master.scans.count()) == before   # the master is untouched


def test_not_blind_keeps_everyone(read_by_two, tmp_path):
    from aldesk.app.review import update_review_settings

    update_review_settings(read_by_two, blind_reading=False)
    result = handout(read_by_two, tmp_path / "alice", annotator="alice", deidentified=False)
    assert not result.blind and result.labels_removed == 0
    with Project.open(tmp_path / "alice") as copy:
        assert copy.labels.count() == 4 and copy.models.latest() is not None


def test_next_scans_and_scan_files_are_copied_and_relinked(read_by_two, tmp_path):
    master = read_by_two
    wanted, how = next_scans_for(master, "alice", 5)
    assert len(wanted) == 5 and scan_ids_by_name(master)["img_1"] not in wanted and how
    result = handout(master, tmp_path / "h", annotator="alice", scans=5, deidentified=True)
    assert result.scans == 5 and result.files_copied == 5
    with Project.open(tmp_path / "h") as copy:
        kept = {sid for sid, _r, _p in copy.scans.iter_paths()}
        assert kept == set(wanted)
        for _sid, root, rel in copy.scans.iter_paths():
            path = os.path.join(root, rel)
            assert os.path.isfile(path) and path.startswith(str(tmp_path / "h" / "scans"))
        assert len(list(copy.scans.iter_previews())) == 5 and copy.labels.count() == 0
        assert copy.integrity_check() == "ok"


def test_the_leads_round_trip(read_by_two, tmp_path):
    master = read_by_two
    for reader in ("alice", "carol"):
        handout(master, tmp_path / reader, annotator=reader, scans=8, deidentified=True)
    plans = {}
    for reader in ("alice", "carol"):
        with Project.open(tmp_path / reader) as copy:        # offline: the reader labels in the copy
            sids = sorted(sid for sid, _root, _rel in copy.scans.iter_paths())   # the master's ids, kept
            # alice calls everything normal; carol agrees on her first four scans only
            plans[reader] = {n: "normal" if reader == "alice" or i < 4 else "pneumonia" for i, n in enumerate(sids)}
            for sid, value in plans[reader].items():
                record_label(copy, sid, reader, value)
            export_package(copy, tmp_path / f"{reader}.aldpkg")
    for reader in ("alice", "carol"):
        result = import_package(master, tmp_path / f"{reader}.aldpkg")
        assert result.counts.added == 8 and result.counts.resolved == 0
    again = import_package(master, tmp_path / "alice.aldpkg")
    assert again.counts.added == 0
    current = {(l.annotator, l.scan_id) for l in master.labels.current()}
    ids = {sid: sid for sid in plans["alice"]}
    assert all(("alice", ids[n]) in current for n in plans["alice"])
    assert all(("carol", ids[n]) in current for n in plans["carol"])
    assert set(plans["alice"]) == set(plans["carol"])        # the same queue: a double read
    disputed = {n for n in plans["alice"] if plans["alice"][n] != plans["carol"][n]}
    final = final_labels(master)
    assert len(disputed) == 4 and not any(ids[n] in final for n in disputed)   # 1 vs 1: no final label
    assert all(final[ids[n]] == "normal" for n in plans["alice"] if n not in disputed)
    # and the master's export carries what came back
    out = export_labelled_set(master, tmp_path / "export", ExportOptions(format="json"))
    scans = json.loads((tmp_path / "export" / "labels.json").read_text())["scans"]
    agreed = [s for s in scans if set(s["readers"]) == {"alice", "carol"}]
    assert len(agreed) == 4 and all(s["method"] == "consensus" and s["agreement"] == 1.0 for s in agreed)
    assert out.scans == len(final) and out.manifest["counts"]["excluded"]["disputed"] == 4


def test_handout_errors(read_by_two, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(ProjectError, match="not empty"):
        handout(read_by_two, tmp_path / "busy", annotator="alice", deidentified=True)
    with pytest.raises(ProjectError, match="annotator name is empty"):
        handout(read_by_two, tmp_path / "h", annotator=" ", deidentified=True)
    with pytest.raises(ProjectError, match="scans == 0, must be >= 1"):
        handout(read_by_two, tmp_path / "h", annotator="alice", scans=0, deidentified=True)
    assert not (tmp_path / "h").exists() and not list(tmp_path.glob(".h.partial*"))


def test_cli_handout_round_trip(read_by_two, tmp_path, capsys):
    master = str(read_by_two.path)
    copy = tmp_path / "lee"
    assert main(["package", "handout", master, str(copy), "--annotator", "lee", "--scans", "3", "--deidentified"]) == 0
    assert "hand-out for lee" in capsys.readouterr().out
    with Project.open(copy) as p:
        label_all(p, "lee", dict.fromkeys(scan_ids_by_name(p), "normal"))
    assert main(["package", "export", str(copy), str(tmp_path / "lee.aldpkg")]) == 0
    assert main(["package", "import", master, str(tmp_path / "lee.aldpkg")]) == 0
    assert "3 labels added" in capsys.readouterr().out
    assert len(read_by_two.labels.current("lee")) == 3
