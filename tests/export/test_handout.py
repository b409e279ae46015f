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
    result = handout(master, tmp_path / "h", annotator="alice", scans=5, deidentified=False, with_scans=True)
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
    from aldesk.app.progress import set_audit_fraction

    master = read_by_two
    set_audit_fraction(master, 0)  # the queue below (8 scans) is the ranking's alone
    given = {}
    for reader in ("alice", "carol"):
        given[reader] = handout(master, tmp_path / reader, annotator=reader, scans=8, deidentified=True)
        # the burned-in scans the ranking put among the 8 are left out of a de-identified copy, and said so
        assert given[reader].scans == 8 or "burned-in" in " ".join(given[reader].warnings)
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
        assert result.counts.added == len(plans[reader]) == given[reader].scans and result.counts.resolved == 0
    again = import_package(master, tmp_path / "alice.aldpkg")
    assert again.counts.added == 0
    current = {(l.annotator, l.scan_id) for l in master.labels.current()}
    ids = {sid: sid for sid in plans["alice"]}
    assert all(("alice", ids[n]) in current for n in plans["alice"])
    assert all(("carol", ids[n]) in current for n in plans["carol"])
    assert set(plans["alice"]) == set(plans["carol"])        # the same queue: a double read
    disputed = {n for n in plans["alice"] if plans["alice"][n] != plans["carol"][n]}
    final = final_labels(master)
    assert len(disputed) == len(plans["carol"]) - 4 > 0 and not any(ids[n] in final for n in disputed)  # 1 vs 1
    assert all(final[ids[n]] == "normal" for n in plans["alice"] if n not in disputed)
    # and the master's export carries what came back
    out = export_labelled_set(master, tmp_path / "export", ExportOptions(format="json"))
    scans = json.loads((tmp_path / "export" / "labels.json").read_text())["scans"]
    agreed = [s for s in scans if set(s["readers"]) == {"alice", "carol"}]
    assert len(agreed) == 4 and all(s["method"] == "consensus" and s["agreement"] == 1.0 for s in agreed)
    assert out.scans == len(final) and out.manifest["counts"]["excluded"]["disputed"] == len(disputed)


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
        given = p.scans.count()  # 3, less the burned-in scans a de-identified copy leaves out
        label_all(p, "lee", dict.fromkeys(scan_ids_by_name(p), "normal"))
    assert 0 < given <= 3
    assert main(["package", "export", str(copy), str(tmp_path / "lee.aldpkg")]) == 0
    assert main(["package", "import", master, str(tmp_path / "lee.aldpkg")]) == 0
    assert f"{given} labels added" in capsys.readouterr().out
    assert len(read_by_two.labels.current("lee")) == given


def test_a_deidentified_handout_carries_no_identifier_salt_key_or_source_path(read_by_two, study_folder, tmp_path):
    from tests.export.conftest import identifying_strings

    master = read_by_two
    result = handout(master, tmp_path / "h", annotator="alice", deidentified=True)
    # patient 5's two images declare burned-in text: left out, and said so
    assert result.deidentified and result.files_copied == 18 and result.scans == 18
    assert len(result.warnings) == 1 and result.warnings[0].startswith("2 scans left out: their pixels may show")
    secret = identifying_strings(study_folder) | {master.patient_salt, master.meta("package_secret")}
    secret |= {r.patient_key for r in master.scans.rows() if r.patient_key}
    secret |= {rel for _sid, _root, rel in master.scans.iter_paths()} | {str(study_folder)}
    files = [f for f in (tmp_path / "h").rglob("*") if f.is_file()]
    assert {f.suffix for f in files} >= {".dcm", ".png", ".sqlite", ".txt"}
    for f in files:
        data, name = f.read_bytes(), str(f.relative_to(tmp_path / "h"))
        for s in secret:
            assert s.encode() not in data and s not in name, (name, s)
    with Project.open(tmp_path / "h") as copy:
        info = json.loads(copy.meta("handout"))
        assert info["deidentified"] and info["annotator"] == "alice" and "from_path" not in info
        keys = {r.patient_key for r in copy.scans.rows() if r.patient_key}
        assert len(keys) == 5                                   # still groups the patients (5 kept)
        assert copy.meta("package_secret") is None and copy.packages.handouts() == []
        for _sid, root, rel in copy.scans.iter_paths():         # the de-identified files are what it reads
            assert os.path.isfile(os.path.join(root, rel)) and rel.startswith("scan-")
    # the master recorded the hand-out: reader, role and the 18 scans it may send reads for
    issued = master.packages.handout(info["id"])
    assert issued.annotator == "alice" and issued.role == "annotator" and issued.deidentified


def test_an_identified_handout_is_a_choice_and_warns(read_by_two, tmp_path, capsys):
    master = str(read_by_two.path)
    assert main(["package", "handout", master, str(tmp_path / "x"), "--annotator", "lee"]) == 2
    assert "--deidentified" in capsys.readouterr().err and not (tmp_path / "x").exists()
    with pytest.raises(ProjectError, match="choose what the hand-out carries"):
        handout(read_by_two, tmp_path / "x", annotator="lee", deidentified=None)
    assert main(["package", "handout", master, str(tmp_path / "lee"), "--annotator", "lee", "--identified",
                 "--with-scans", "--scans", "2"]) == 0
    captured = capsys.readouterr()
    assert "WARNING: IDENTIFIED hand-out" in captured.err and "IDENTIFIED" in captured.out
    assert "IDENTIFIED hand-out" in (tmp_path / "lee" / HANDOUT_NOTE).read_text()
    with Project.open(tmp_path / "lee") as copy:   # original files, but under pseudonymous names
        assert all(rel.startswith("scan-") for _s, _r, rel in copy.scans.iter_paths())
        assert copy.patient_salt != read_by_two.patient_salt
