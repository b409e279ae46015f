"""Annotation packages: round trips between offline copies, the merge rule, and hostile packages."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from aldesk.app import packages as pk
from aldesk.app.importer import import_paths
from aldesk.app.labelling import final_labels
from aldesk.app.packages import PackageError, export_package, import_package, read_package
from aldesk.cli import main
from aldesk.store import Project
from tests.export.conftest import label_all, scan_ids_by_name

ALICE = {f"case{p}_{k}": ("pneumonia" if p % 2 else "normal") for p in range(6) for k in range(2)} | {
    f"img_{i}": "normal" for i in range(8)}
BOB = {name: value for name, value in ALICE.items() if name.startswith("case")} | {
    "case1_0": "normal", "case3_1": "normal"}


def copy_of(project: Project, dest: Path) -> Project:
    project.packages.copy_database(dest)
    return Project.open(dest)


def label_set(project: Project) -> set[tuple]:
    """Every label row, history included, as a project-independent tuple."""
    return {(r["id"], r["scan_uid"], r["annotator"], r["value"], r["note"], r["created_at"], r["duration_ms"],
             r["workstation"], r["source"], r["replaced_by"]) for r in project.packages.label_rows()}


def current(project: Project) -> dict[tuple[str, str], str]:
    uid = {r.id: r.uid for r in project.scans.rows()}
    return {(uid[l.scan_id], l.annotator): l.value for l in project.labels.current()}


def state(project: Project) -> tuple:
    return label_set(project), tuple(project.labels.annotators())


@pytest.fixture
def sites(study, tmp_path):
    """The lead's master and two offline copies: alice read everything in A (and changed her mind once),
    bob read the DICOMs in B. Returns (master, A, B, package of A, package of B)."""
    a = copy_of(study, tmp_path / "site_a")
    b = copy_of(study, tmp_path / "site_b")
    label_all(a, "alice", ALICE | {"img_3": "pneumonia"})
    label_all(a, "alice", {"img_3": "normal"})             # changed her mind: history kept
    label_all(b, "bob", BOB)
    pa = export_package(a, tmp_path / "a.aldpkg")
    pb = export_package(b, tmp_path / "b.aldpkg")
    yield study, a, b, pa.path, pb.path
    a.close()
    b.close()


def test_merging_both_ways_gives_identical_labels_and_the_expected_disagreements(sites, tmp_path):
    master, a, b, pa, pb = sites
    master2 = copy_of(master, tmp_path / "master2")
    ra = import_package(b, pa)          # A into B
    rb = import_package(a, pb)          # B into A
    assert ra.counts.added == 21 and rb.counts.added == 12 and ra.counts.resolved == rb.counts.resolved == 0
    import_package(master, pa)
    import_package(master, pb)
    import_package(master2, pb)
    import_package(master2, pa)
    assert label_set(a) == label_set(b) == label_set(master) == label_set(master2)
    assert len(label_set(a)) == 21 + 12
    assert current(a) == current(b)
    names = scan_ids_by_name(master)
    disagree = {name for name in BOB if ALICE[name] != BOB[name]}
    assert disagree == {"case1_0", "case3_1"}
    final = final_labels(master)
    assert {n for n, sid in names.items() if sid not in final} == disagree   # ties: no final label
    assert all(final[names[n]] == ALICE[n] for n in names if n not in disagree)
    history = [l for l in master.labels.history(names["img_3"])]
    assert [l.value for l in history] == ["pneumonia", "normal"]
    master2.close()


def test_importing_twice_changes_nothing(sites):
    master, a, _b, pa, _pb = sites
    first = import_package(master, pa)
    before = state(master)
    again = import_package(master, pa)
    assert first.counts.added == 21
    assert again.counts.added == 0 and again.counts.unchanged == 21 and again.counts.history_updated == 0
    assert state(master) == before
    assert label_set(master) == label_set(a)


def test_same_reader_on_two_copies_newest_wins_and_history_is_kept(study, tmp_path):
    names = scan_ids_by_name(study)
    label_all(study, "alice", {"case0_0": "normal"})              # read before the copies were made
    c1, c2 = copy_of(study, tmp_path / "c1"), copy_of(study, tmp_path / "c2")
    label_all(c1, "alice", {"case0_0": "pneumonia", "img_0": "normal"})
    time.sleep(0.01)
    label_all(c2, "alice", {"case0_0": "unsure", "img_0": "pneumonia"})   # later: wins
    p1, p2 = export_package(c1, tmp_path / "1.aldpkg").path, export_package(c2, tmp_path / "2.aldpkg").path
    r = import_package(c1, p2)
    import_package(c2, p1)
    assert r.counts.resolved == 2
    assert label_set(c1) == label_set(c2)
    assert current(c1) == current(c2)
    now = {l.scan_id: l.value for l in c1.labels.current("alice")}
    assert now[names["case0_0"]] == "unsure" and now[names["img_0"]] == "pneumonia"
    assert [l.value for l in c1.labels.history(names["case0_0"])] == ["normal", "pneumonia", "unsure"]
    assert sum(1 for row in label_set(c1) if row[9] is None) == 2     # one current row per reader and scan
    # and the master, merging both in either order, agrees
    import_package(study, p1)
    import_package(study, p2)
    assert label_set(study) == label_set(c1)
    c1.close()
    c2.close()


def test_annotator_and_since_filters(sites, tmp_path):
    master, a, b, _pa, pb = sites
    import_package(a, pb)
    only_bob = export_package(a, tmp_path / "bob.aldpkg", annotator="bob")
    assert only_bob.annotators == ["bob"] and only_bob.labels == 12
    cut = time.time()
    time.sleep(0.01)
    label_all(a, "alice", {"case5_1": "normal"})
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(cut)) + f".{int(cut % 1 * 1000):03d}+00:00"
    late = export_package(a, tmp_path / "late.aldpkg", since=since)
    assert late.labels == 1 and late.current == 1
    import_package(master, tmp_path / "late.aldpkg")
    assert {l.value for l in master.labels.current("alice")} == {"normal"}
    with pytest.raises(pk.InputFileError, match="no annotator named 'zoe'"):
        export_package(a, tmp_path / "z.aldpkg", annotator="zoe")
    with pytest.raises(pk.InputFileError, match="--since 'last week'"):
        export_package(a, tmp_path / "z.aldpkg", since="last week")


def test_package_content_and_checksum(sites):
    _master, _a, _b, pa, _pb = sites
    with zipfile.ZipFile(pa) as zf:
        assert sorted(zf.namelist()) == ["labels.json", "package.json"]
        head = json.loads(zf.read("package.json"))
        body = json.loads(zf.read("labels.json"))
        assert head["checksum"]["members"]["labels.json"] == hashlib.sha256(zf.read("labels.json")).hexdigest()
    assert head["format"] == "aldesk-annotation-package" and head["version"] == 1
    assert head["counts"] == {"labels": 21, "current": 20, "scans": 20, "annotators": 1, "reviews": 0}
    label = body["labels"][0]
    assert set(label) == {"id", "scan_uid", "annotator", "value", "note", "created_at", "duration_ms",
                          "workstation", "source", "replaced_by"}
    assert uuid.UUID(label["id"]) and body["annotators"] == [{"name": "alice", "role": "annotator"}]
    assert not any(s["path"].endswith(".png") and "pixel" in s for s in body["scans"])
    assert read_package(pa).head["project_id"] == head["project_id"]


def test_reviews_travel_and_adjudicated_labels_export_as_such(study, tmp_path):
    from aldesk.app.export import final_label_table
    from aldesk.app.review import adjudicate, request_read, set_role

    a = copy_of(study, tmp_path / "a")
    names = scan_ids_by_name(a)
    label_all(a, "alice", {"case0_0": "normal", "case0_1": "normal"})
    label_all(a, "bob", {"case0_0": "pneumonia"})
    set_role(a, "rev", "reviewer")
    adjudicate(a, names["case0_0"], "pneumonia", "consolidation on the lateral view", "rev")
    request_read(a, names["case0_1"], "rev", "second opinion")
    summary = export_package(a, tmp_path / "a.aldpkg")
    assert summary.reviews == 2 and "rev" in summary.annotators
    first = import_package(study, summary.path)
    assert first.counts.reviews_added == 2
    assert import_package(study, summary.path).counts.reviews_added == 0
    decision = study.reviews.current_adjudications()[names["case0_0"]]
    assert decision.value == "pneumonia" and dict(study.labels.annotators())["rev"] == "reviewer"
    assert len(study.reviews.read_requests(names["case0_1"])) == 1
    rows, _ = final_label_table(study)
    by_scan = {r.scan_id: r for r in rows}
    assert by_scan[names["case0_0"]].label == "pneumonia" and by_scan[names["case0_0"]].method == "adjudicated"
    assert by_scan[names["case0_1"]].method == "single reader"
    a.close()


# ----------------------------------------------------------------------------- hostile packages
def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def write_package(path: Path, members: dict[str, bytes], *, fix_checksum: bool = True) -> Path:
    members = dict(members)
    try:
        head = json.loads(members.get("package.json", b""))
    except ValueError:
        head = None  # a malformed package.json stays as the test wrote it
    if fix_checksum and head is not None:
        head["checksum"]["members"] = {n: hashlib.sha256(d).hexdigest() for n, d in members.items()
                                       if n in ("labels.json", "reviews.json")}
        members["package.json"] = json.dumps(head).encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def edit(members: dict[str, bytes], member: str, change) -> dict[str, bytes]:
    doc = json.loads(members[member])
    change(doc)
    return members | {member: json.dumps(doc).encode()}


def _set(path: list, value):
    def change(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


@pytest.fixture
def good(sites):
    master, _a, _b, pa, _pb = sites
    return master, members_of(pa)


def _bad_cases(good_members: dict[str, bytes], master: Project):
    label_id = json.loads(good_members["labels.json"])["labels"][0]["id"]
    return {
        "not a zip file": None,
        "no package.json": {"labels.json": good_members["labels.json"]},
        r"member '\.\./evil\.json' would be written outside the package folder \(path traversal\)":
            good_members | {"../evil.json": b"{}"},
        "unexpected member 'notes.txt'": good_members | {"notes.txt": b"hello"},
        r"would expand [\d,]+ times .*zip bomb": good_members | {"labels.json": b" " * (20 << 20)},
        r"written by a newer aldesk \(package format version 2": edit(good_members, "package.json", _set(["version"], 2)),
        "not an aldesk annotation package": edit(good_members, "package.json", _set(["format"], "tarball")),
        "checksum mismatch for labels.json": "tamper",
        r"package.json: malformed JSON at line 1 column 2": good_members | {"package.json": b"{oops"},
        r"labels.json: malformed JSON at line 3 column 1": good_members | {"labels.json": b'{"labels":\n [1,\n'},
        r"labels.json: labels\[0\]\.value must be a text": edit(good_members, "labels.json",
                                                                 _set(["labels", 0, "value"], 5)),
        r"labels.json: annotators\[0\]\.role \('boss'\) must be one of": edit(
            good_members, "labels.json", _set(["annotators", 0, "role"], "boss")),
        r"labels 'fracture' are not classes of this project": edit(good_members, "labels.json",
                                                                   _set(["labels", 0, "value"], "fracture")),
        "made from another project": edit(good_members, "package.json", _set(["project_id"], str(uuid.uuid4()))),
        r"1 scans of the package are not in this project \(png/ghost\.png\)": edit(
            good_members, "labels.json", lambda d: (d["scans"][0].update(uid="sha:0", pixel_hash="0", path="png/ghost.png"),
                                                     [l.update(scan_uid="sha:0") for l in d["labels"]
                                                      if l["scan_uid"] == json.loads(good_members["labels.json"])["scans"][0]["uid"]])),
        "neither in the package nor in this project": edit(
            good_members, "labels.json", _set(["labels", 0, "replaced_by"], str(uuid.uuid4()))),
    }


def test_each_malformed_package_has_its_own_message_and_changes_nothing(good, tmp_path):
    master, members = good
    import_package(master, write_package(tmp_path / "ok.aldpkg", members))   # the master already holds some labels
    before = state(master)
    cases = _bad_cases(members, master)
    for i, (message, content) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.aldpkg"
        if content is None:
            path.write_text("label,path\nnormal,x.png\n")
        elif content == "tamper":
            write_package(path, members, fix_checksum=False)
            tampered = members["labels.json"].replace(b'"normal"', b'"pneumonia"', 1)
            write_package(path, members | {"labels.json": tampered}, fix_checksum=False)
        else:
            write_package(path, content)
        with pytest.raises(PackageError, match=message):
            import_package(master, path)
        assert state(master) == before, message


def test_conflicting_content_for_a_known_label_id_is_refused_whole(good, tmp_path):
    master, members = good
    import_package(master, write_package(tmp_path / "ok.aldpkg", members))
    before = state(master)
    body = json.loads(members["labels.json"])
    body["labels"].append({**body["labels"][0], "id": str(uuid.uuid4())})   # a harmless new row first ...
    body["labels"][1]["note"] = "edited afterwards"                          # ... then a known id, altered
    bad = write_package(tmp_path / "bad.aldpkg", members | {"labels.json": json.dumps(body).encode()})
    with pytest.raises(PackageError, match="in both this project and the package with different content"):
        import_package(master, bad)
    assert state(master) == before


def test_zip_bomb_over_the_total_limit_is_refused_before_reading(good, tmp_path, monkeypatch):
    master, members = good
    monkeypatch.setattr(pk, "MAX_PACKAGE_BYTES", 1000)
    with pytest.raises(PackageError, match=r"would expand to [\d,]+ bytes, over the limit"):
        import_package(master, write_package(tmp_path / "p.aldpkg", members))


def test_duplicate_members_are_refused(good, tmp_path):
    master, members = good
    path = write_package(tmp_path / "dup.aldpkg", members)
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "a") as zf:
        zf.writestr("labels.json", b"{}")
    with pytest.raises(PackageError, match="member 'labels.json' appears twice"):
        import_package(master, path)


def test_other_project_is_allowed_when_asked_and_scans_match_by_content(study, study_folder, tmp_path):
    label_all(study, "alice", {"case0_0": "normal", "img_1": "pneumonia"})
    with Project.create(tmp_path / "site2", study.classes) as other:
        import_paths(other, [study_folder], jobs=1)
        summary = export_package(study, tmp_path / "p.aldpkg")
        with pytest.raises(PackageError, match="made from another project.*--allow-other-project"):
            import_package(other, summary.path)
        # the DICOM was re-sent with a new SOP Instance UID: matched by its pixels
        members = edit(members_of(summary.path), "labels.json",
                       lambda d: [s.update(uid="1.2.3.999") for s in d["scans"] if s["path"].endswith(".dcm")]
                       and [l.update(scan_uid="1.2.3.999") for l in d["labels"] if l["scan_uid"].startswith("1.2")
                            or not l["scan_uid"].startswith("sha:")])
        result = import_package(other, write_package(tmp_path / "q.aldpkg", members), allow_other_project=True)
        assert result.counts.added == 2
        assert current(other) == current(study)


def test_cli_package_round_trip(sites, tmp_path, capsys):
    master, a, _b, _pa, _pb = sites
    out = tmp_path / "cli.aldpkg"
    assert main(["package", "export", str(a.path), str(out), "--annotator", "alice"]) == 0
    assert "21 labels (20 current)" in capsys.readouterr().out
    assert main(["package", "import", str(master.path), str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 21
    assert main(["package", "import", str(master.path), str(out)]) == 0
    assert "0 labels added, 21 already here" in capsys.readouterr().out
    (tmp_path / "junk.aldpkg").write_bytes(b"PK\x03\x04 not really")
    assert main(["package", "import", str(master.path), str(tmp_path / "junk.aldpkg")]) == 1
    assert "not a zip file" in capsys.readouterr().err
