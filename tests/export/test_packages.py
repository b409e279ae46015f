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
from aldesk.app.packages import PackageError, export_package, import_package
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


def test_package_content_is_json_lines_signed_and_without_paths(sites):
    master, a, _b, pa, _pb = sites
    with zipfile.ZipFile(pa) as zf:
        assert sorted(zf.namelist()) == ["labels.jsonl", "package.json", "reviews.jsonl", "scans.jsonl"]
        head = json.loads(zf.read("package.json"))
        labels = [json.loads(line) for line in zf.read("labels.jsonl").splitlines()]
        scans = [json.loads(line) for line in zf.read("scans.jsonl").splitlines()]
        assert head["members"]["labels.jsonl"]["sha256"] == hashlib.sha256(zf.read("labels.jsonl")).hexdigest()
        raw = b"".join(zf.read(n) for n in zf.namelist())
    assert head["format"] == "aldesk-annotation-package" and head["version"] == 2
    assert head["counts"] == {"labels": 21, "current": 20, "scans": 20, "annotators": 1, "reviews": 0}
    assert head["signer"] == {"kind": "project"}
    assert [m["key_id"] for m in head["auth"]["macs"]] == [f"project:{master.project_id}"]
    assert set(labels[0]) == {"id", "scan", "annotator", "value", "note", "created_at", "duration_ms",
                              "workstation", "source", "replaced_by"}
    assert uuid.UUID(labels[0]["id"]) and head["annotators"] == [{"name": "alice", "role": "annotator"}]
    assert all(set(s) == {"ref", "pixel_hash"} for s in scans)
    # no path, file or folder name, no UID of the source, no secret of the project
    for _sid, _root, rel in master.scans.iter_paths():
        assert Path(rel).stem.encode() not in raw and rel.encode() not in raw
    for row in master.scans.rows():
        assert row.uid.encode() not in raw
    assert master.meta("package_secret").encode() not in raw and master.patient_salt.encode() not in raw


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


def rows_of(members: dict[str, bytes], name: str) -> list[dict]:
    return [json.loads(line) for line in members[name].splitlines() if line.strip()]


def with_rows(members: dict[str, bytes], name: str, rows: list[dict]) -> dict[str, bytes]:
    return members | {name: b"".join(json.dumps(r).encode() + b"\n" for r in rows)}


def own_keys(project: Project) -> list[tuple[str, bytes]]:
    return [(f"project:{project.project_id}", bytes.fromhex(project.meta("package_secret")))]


def write_package(path: Path, members: dict[str, bytes], *, keys=None, fix_checksum: bool = True,
                  head_change=None) -> Path:
    """Write ``members`` as a package; package.json's digests are recomputed (``fix_checksum``) and it is
    signed again with ``keys`` [(key id, secret)] when given: what a forger holding those keys does."""
    members = dict(members)
    try:
        head = json.loads(members.get("package.json", b""))
    except ValueError:
        head = None  # a malformed package.json stays as the test wrote it
    if head is not None and isinstance(head, dict):
        if fix_checksum and "members" in head:
            head["members"] = {n: {"sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d),
                                   "lines": d.count(b"\n")} for n, d in members.items() if n.endswith(".jsonl")}
        if head_change:
            head_change(head)
        if keys is not None:
            head["auth"]["macs"] = [{"key_id": kid, "mac": pk.package_mac(secret, head)} for kid, secret in keys]
        members["package.json"] = json.dumps(head).encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def edit_head(members: dict[str, bytes], change) -> dict[str, bytes]:
    head = json.loads(members["package.json"])
    change(head)
    return members | {"package.json": json.dumps(head).encode()}


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


def _bad_cases(m: dict[str, bytes], master: Project):
    labels = rows_of(m, "labels.jsonl")
    first_scan = rows_of(m, "scans.jsonl")[0]["ref"]

    def label_edit(i, **change):
        return with_rows(m, "labels.jsonl", [dict(r, **change) if k == i else r for k, r in enumerate(labels)])

    keys = own_keys(master)
    return {
        "not a zip file": (None, keys),
        "no package.json": ({"labels.jsonl": m["labels.jsonl"]}, keys),
        r"member '\.\./evil\.json' would be written outside the package folder \(path traversal\)":
            (m | {"../evil.json": b"{}"}, keys),
        "unexpected member 'notes.txt'": (m | {"notes.txt": b"hello"}, keys),
        r"would expand [\d,]+ times .*zip bomb": (m | {"labels.jsonl": b" " * (20 << 20)}, keys),
        r"written by a newer aldesk \(package format version 3": (edit_head(m, _set(["version"], 3)), keys),
        r"an unauthenticated package \(format version 1": (edit_head(m, _set(["version"], 1)), keys),
        "not an aldesk annotation package": (edit_head(m, _set(["format"], "tarball")), keys),
        "checksum mismatch for labels.jsonl": ("tamper", keys),
        r"MAC does not match its content: it was altered after it was written, or forged":
            (label_edit(0, value="pneumonia" if labels[0]["value"] == "normal" else "normal"), None),
        r"made from a copy of this project that does not hold its key": (m, [("x", b"k" * 32)]),
        r"package.json: malformed JSON at line 1 column 2": (m | {"package.json": b"{oops"}, None),
        r"labels.jsonl line 2: malformed JSON": (m | {"labels.jsonl": m["labels.jsonl"].split(b"\n")[0] + b"\n[1,\n"}, keys),
        r"labels.jsonl: line 1.value must be a text": (label_edit(0, value=5), keys),
        r"labels.jsonl: line 1.created_at \('yesterday'\) must be an ISO 8601 time": (label_edit(0, created_at="yesterday"), keys),
        r"labels.jsonl: line 2: id .* appears twice \(lines 1 and 2\)": (label_edit(1, id=labels[0]["id"]), keys),
        r"package.json: annotators\[0\]\.role \('boss'\) must be one of": (
            edit_head(m, _set(["annotators", 0, "role"], "boss")), keys),
        r"labels 'fracture' are not classes of this project": (label_edit(0, value="fracture"), keys),
        r"1 scans of the package are not in this project \(scans.jsonl refs 0000": (
            with_rows(m, "scans.jsonl", [dict(s, ref="0" * 40, pixel_hash="0") if s["ref"] == first_scan else s
                                         for s in rows_of(m, "scans.jsonl")])
            | with_rows({}, "labels.jsonl", [dict(r, scan="0" * 40) if r["scan"] == first_scan else r
                                            for r in labels]), keys),
        r"labels.jsonl: line 1: names a scan missing from scans.jsonl": (label_edit(0, scan="f" * 40), keys),
        "neither in the package nor in this project": (label_edit(0, replaced_by=str(uuid.uuid4())), keys),
    }


def test_each_malformed_or_forged_package_has_its_own_message_and_changes_nothing(good, tmp_path):
    master, members = good
    import_package(master, write_package(tmp_path / "ok.aldpkg", members))   # the master already holds some labels
    before = state(master)
    for i, (message, (content, keys)) in enumerate(_bad_cases(members, master).items()):
        path = tmp_path / f"bad{i}.aldpkg"
        if content is None:
            path.write_text("label,path\nnormal,x.png\n")
        elif content == "tamper":
            tampered = members["labels.jsonl"].replace(b'"normal"', b'"pneumonia"', 1)
            write_package(path, members | {"labels.jsonl": tampered}, fix_checksum=False, keys=keys)
        else:
            write_package(path, content, keys=keys)
        with pytest.raises(PackageError, match=message):
            import_package(master, path)
        assert state(master) == before, message


def test_conflicting_content_for_a_known_label_id_is_refused_whole(good, tmp_path):
    master, members = good
    import_package(master, write_package(tmp_path / "ok.aldpkg", members))
    before = state(master)
    labels = rows_of(members, "labels.jsonl")
    labels.append({**labels[0], "id": str(uuid.uuid4())})    # a harmless new row first ...
    labels[1]["note"] = "edited afterwards"                    # ... then a known id, altered
    bad = write_package(tmp_path / "bad.aldpkg", with_rows(members, "labels.jsonl", labels), keys=own_keys(master))
    with pytest.raises(PackageError, match="in both this project and the package with different content"):
        import_package(master, bad)
    assert state(master) == before


def test_zip_bomb_over_the_total_limit_is_refused_before_reading(good, tmp_path, monkeypatch):
    master, members = good
    monkeypatch.setattr(pk, "MAX_PACKAGE_BYTES", 1000)
    with pytest.raises(PackageError, match=r"would expand to [\d,]+ bytes, over the limit"):
        import_package(master, write_package(tmp_path / "p.aldpkg", members))


def test_a_line_over_the_limit_is_refused(good, tmp_path, monkeypatch):
    master, members = good
    monkeypatch.setattr(pk, "MAX_LINE_BYTES", 100)
    with pytest.raises(PackageError, match=r"labels.jsonl line 1 is longer than 100 bytes"):
        import_package(master, write_package(tmp_path / "p.aldpkg", members))


def test_duplicate_members_are_refused(good, tmp_path):
    master, members = good
    path = write_package(tmp_path / "dup.aldpkg", members)
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "a") as zf:
        zf.writestr("labels.jsonl", b"{}")
    with pytest.raises(PackageError, match="member 'labels.jsonl' appears twice"):
        import_package(master, path)


def test_another_project_needs_the_leads_explicit_trust_and_scans_match_by_content(study, study_folder, tmp_path,
                                                                                   capsys):
    label_all(study, "alice", {"case0_0": "normal", "img_1": "pneumonia"})
    with Project.create(tmp_path / "site2", study.classes) as other:
        import_paths(other, [study_folder], jobs=1)
        summary = export_package(study, tmp_path / "p.aldpkg")
        with pytest.raises(pk.UntrustedPackageError, match="made from another project .* does not trust.*"
                                                           "aldesk package trust"):
            import_package(other, summary.path)
        assert main(["package", "import", str(other.path), str(summary.path), "--allow-other-project"]) == 1
        assert "no longer enough" in capsys.readouterr().err
        # the key is exchanged once: study exports one, the other project's lead adds it
        key = tmp_path / "study.key"
        assert main(["package", "trust", str(study.path), "--export-key", str(key)]) == 0
        assert oct(key.stat().st_mode & 0o777) == "0o600"
        assert main(["package", "trust", str(other.path), "--add-key", str(key)]) == 0
        with pytest.raises(pk.InputFileError, match="a key of this very project"):
            pk.add_trust_key(study, key)
        summary = export_package(study, tmp_path / "p2.aldpkg")   # now also signed with the key given away
        # the DICOM was re-sent with a new SOP Instance UID: matched by its pixels
        members = members_of(summary.path)
        dicom_refs = {pk.scan_ref(r.uid) for r in study.scans.rows() if not r.uid.startswith("sha:")}
        members = with_rows(members, "scans.jsonl", [dict(s, ref="9" * 40) if s["ref"] in dicom_refs else s
                                                     for s in rows_of(members, "scans.jsonl")])
        members = with_rows(members, "labels.jsonl", [dict(r, scan="9" * 40) if r["scan"] in dicom_refs else r
                                                      for r in rows_of(members, "labels.jsonl")])
        trusted = [(k.id, k.secret) for k in study.packages.keys("sign")]
        result = import_package(other, write_package(tmp_path / "q.aldpkg", members, keys=trusted))
        assert result.counts.added == 2 and result.sender.kind == "trusted"
        assert current(other) == current(study)
        capsys.readouterr()
        assert main(["package", "trust", str(other.path), "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert listed["trusted"][0]["project_id"] == study.project_id and "secret" not in json.dumps(listed)


def test_cli_package_round_trip(sites, tmp_path, capsys):
    master, a, _b, _pa, _pb = sites
    out = tmp_path / "cli.aldpkg"
    assert main(["package", "export", str(a.path), str(out), "--annotator", "alice"]) == 0
    assert "21 labels (20 current)" in capsys.readouterr().out
    assert main(["package", "import", str(master.path), str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["added"] == 21 and result["current_added"] == 20 and result["rejected"] == []
    assert result["sender"]["kind"] == "own"
    assert main(["package", "import", str(master.path), str(out)]) == 0
    assert "0 labels added, 21 already here" in capsys.readouterr().out
    (tmp_path / "junk.aldpkg").write_bytes(b"PK\x03\x04 not really")
    assert main(["package", "import", str(master.path), str(tmp_path / "junk.aldpkg")]) == 1
    assert "not a zip file" in capsys.readouterr().err


# ----------------------------------------------------------------------------- a hand-out's packages
# Attacks of issue 16 by someone holding a hand-out (and so its key): each must change nothing it may
# not, name every row it refused, and the summary must count what really changed.
@pytest.fixture
def issued(study, tmp_path):
    """The master: bob read all 20 scans, rev adjudicated one. mallory got a hand-out (annotator) and
    read three scans in it. Returns (master, copy path, mallory's honest package, the hand-out key)."""
    from aldesk.app.handout import handout
    from aldesk.app.review import adjudicate, set_role

    names = scan_ids_by_name(study)
    label_all(study, "bob", {n: "normal" for n in names})
    set_role(study, "rev", "reviewer")
    adjudicate(study, names["case0_0"], "pneumonia", "lateral view", "rev")
    handout(study, tmp_path / "mallory", annotator="mallory", deidentified=False)
    with Project.open(tmp_path / "mallory") as copy:
        label_all(copy, "mallory", {"case1_0": "pneumonia", "case2_0": "normal", "img_0": "pneumonia"})
        summary = export_package(copy, tmp_path / "mallory.aldpkg")
        info = json.loads(copy.meta("handout"))
        key = [(info["id"], bytes.fromhex(copy.meta("handout_secret")))]
        assert copy.meta("package_secret") is None and copy.patient_salt != study.patient_salt
    return study, tmp_path / "mallory", summary.path, key


def finals(project: Project) -> dict[int, str]:
    return dict(final_labels(project))


def honest_finals(master: Project, package: Path, tmp_path: Path) -> dict[int, str]:
    """The final labels after merging mallory's honest package alone (into a raw copy of the master)."""
    twin = copy_of(master, tmp_path / f"twin-{uuid.uuid4().hex[:6]}")
    try:
        import_package(twin, package)
        return finals(twin)
    finally:
        twin.close()


def forge(tmp_path: Path, package: Path, key, *, labels=None, reviews=None, head_change=None) -> Path:
    """mallory's package with extra rows, signed again with her hand-out's key (which she holds)."""
    m = members_of(package)
    if labels is not None:
        m = with_rows(m, "labels.jsonl", rows_of(m, "labels.jsonl") + labels)
    if reviews is not None:
        m = with_rows(m, "reviews.jsonl", rows_of(m, "reviews.jsonl") + reviews)
    return write_package(tmp_path / f"forged-{uuid.uuid4().hex[:6]}.aldpkg", m, keys=key, head_change=head_change)


def bobs_rows(master: Project) -> list[dict]:
    return [{"id": r["id"], "scan": pk.scan_ref(r["scan_uid"]), "annotator": "bob", "value": r["value"],
             "note": r["note"], "created_at": r["created_at"], "duration_ms": r["duration_ms"],
             "workstation": r["workstation"], "source": r["source"], "replaced_by": r["replaced_by"]}
            for r in master.packages.label_rows("bob")]


def test_honest_handout_package_merges_only_its_readers_reads(issued):
    master, _copy, package, _key = issued
    before = current(master)
    result = import_package(master, package)
    assert result.sender.kind == "handout" and result.sender.handout.annotator == "mallory"
    assert result.counts.added == 3 and result.counts.current_added == 3 and result.rejected == []
    assert {k: v for k, v in current(master).items() if k[1] != "mallory"} == before
    assert import_package(master, package).counts.added == 0          # twice = once


def test_future_dated_rows_cannot_override_another_readers_labels(issued, tmp_path):
    master, _copy, package, key = issued
    bob_before = {k: v for k, v in current(master).items() if k[1] == "bob"}
    expected = honest_finals(master, package, tmp_path)
    future = [dict(r, id=str(uuid.uuid4()), value="pneumonia", created_at="2099-01-01T00:00:00+00:00",
                   replaced_by=None) for r in bobs_rows(master)]
    own_future = {**future[0], "id": str(uuid.uuid4()), "annotator": "mallory"}
    result = import_package(master, forge(tmp_path, package, key, labels=future + [own_future]))
    assert {k: v for k, v in current(master).items() if k[1] == "bob"} == bob_before
    assert finals(master) == expected
    assert len(result.rejected) == 21
    reasons = {r["id"]: r["reason"] for r in result.rejected}
    assert all("reader 'bob' is not the reader this hand-out was issued to ('mallory')" in reasons[r["id"]]
               for r in future)
    assert "in the future of this merge" in reasons[own_future["id"]]
    assert result.counts.added == 3                           # mallory's honest reads still merge


def test_self_pointing_rows_cannot_retract_another_readers_labels(issued, tmp_path):
    master, _copy, package, key = issued
    n_bob = len(master.labels.current("bob"))
    retract = [dict(r, replaced_by=r["id"]) for r in bobs_rows(master)]
    result = import_package(master, forge(tmp_path, package, key, labels=retract))
    assert len(master.labels.current("bob")) == n_bob == 20
    assert result.counts.current_retracted == 0 and result.counts.history_updated == 0
    assert sorted(r["id"] for r in result.rejected) == sorted(r["id"] for r in retract)


def test_forged_adjudications_and_roles_are_rejected_and_named(issued, tmp_path, capsys):
    master, _copy, package, key = issued
    expected = honest_finals(master, package, tmp_path)
    refs = {pk.scan_ref(r.uid): r.id for r in master.scans.rows()}
    forged = [{"table": "adjudications", "id": str(uuid.uuid4()), "scan": ref, "reviewer": who, "value": "pneumonia",
               "reason": "forged", "created_at": "2026-01-01T00:00:00+00:00", "workstation": ""}
              for ref in refs for who in ("boss", "mallory")]

    def escalate(head):
        head["annotators"] = [{"name": "mallory", "role": "lead"}, {"name": "boss", "role": "lead"}]

    path = forge(tmp_path, package, key, reviews=forged, head_change=escalate)
    assert main(["package", "import", str(master.path), str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["adjudications_added"] == 0 and out["rejected_count"] == 40
    assert {r["reason"] for r in out["rejected"]} == {
        "the hand-out was issued to 'mallory' as annotator: adjudications and read requests need a hand-out "
        "issued to a reviewer or lead"}
    assert finals(master) == expected
    assert master.labels.role("mallory") == "annotator" and master.labels.role("boss") is None
    assert out["annotators_added"] == []
    # the text summary names every rejected row too
    assert main(["package", "import", str(master.path), str(path)]) == 0
    text = capsys.readouterr().out
    assert "REJECTED 40 rows" in text and all(r["id"] in text for r in forged)


def test_a_reviewers_handout_may_adjudicate_but_only_to_a_class(study, tmp_path, capsys):
    from aldesk.app.handout import handout
    from aldesk.app.review import adjudicate, set_role

    names = scan_ids_by_name(study)
    label_all(study, "bob", {"case0_0": "normal", "case1_0": "normal"})
    label_all(study, "carl", {"case0_0": "pneumonia", "case1_0": "pneumonia"})
    set_role(study, "rev", "reviewer")
    adjudicate(study, names["case0_0"], "pneumonia", "real decision", "rev")
    handout(study, tmp_path / "rev2", annotator="rev2", role="reviewer", deidentified=False)
    with Project.open(tmp_path / "rev2") as copy:
        adjudicate(copy, names["case1_0"], "normal", "seen on the copy", "rev2")
        package = export_package(copy, tmp_path / "rev2.aldpkg").path
        key = [(json.loads(copy.meta("handout"))["id"], bytes.fromhex(copy.meta("handout_secret")))]
    bogus = {"table": "adjudications", "id": str(uuid.uuid4()), "scan": pk.scan_ref(study.scans.get(names["case0_0"]).uid),
             "reviewer": "rev2", "value": "unsure", "reason": "cancel it", "created_at": "2026-01-01T00:00:00+00:00",
             "workstation": ""}
    path = forge(tmp_path, package, key, reviews=[bogus])
    assert main(["package", "import", str(study.path), str(path)]) == 0
    text = capsys.readouterr().out
    assert "1 adjudications and 0 read requests added" in text
    assert "adjudication to 'unsure', which is not a class of this project" in text
    decisions = study.reviews.current_adjudications()
    assert decisions[names["case0_0"]].value == "pneumonia" and decisions[names["case1_0"]].value == "normal"


def test_summary_counts_retracted_and_changed_reads(sites, tmp_path, capsys):
    """A copy of the project (its own key) undoes and changes reads: the summary says so."""
    master, a, _b, pa, _pb = sites
    import_package(master, pa)
    names = scan_ids_by_name(a)
    label_all(a, "alice", {"case0_0": "unsure"})
    first = [l for l in a.labels.current("alice") if l.scan_id == names["img_5"]][0]
    a.labels.undo(first.id)
    path = export_package(a, tmp_path / "again.aldpkg").path
    assert main(["package", "import", str(master.path), str(path)]) == 0
    text = capsys.readouterr().out
    assert "current reads: 0 new, 1 changed, 1 retracted" in text


def test_packages_from_an_unknown_handout_or_with_a_bad_mac_are_refused(issued, tmp_path, study_folder):
    master, _copy, package, key = issued
    before = state(master)
    with pytest.raises(PackageError, match="MAC does not match"):
        import_package(master, forge(tmp_path, package, [(key[0][0], b"x" * 32)]))
    with pytest.raises(PackageError, match="comes from a hand-out this project did not issue"):
        import_package(master, forge(tmp_path, package, key,
                                     head_change=lambda h: h["signer"].update(handout_id=str(uuid.uuid4()))))
    # the project id alone (printed everywhere) opens nothing
    with pytest.raises(PackageError, match="made from a copy of this project that does not hold its key"):
        import_package(master, forge(tmp_path, package, [("k", b"y" * 32)],
                                     head_change=lambda h: h.update(signer={"kind": "project"})))
    assert state(master) == before


def test_a_handout_copy_reads_as_its_reader(issued):
    from aldesk.app.handout import handout_reader

    master, copy_path, _package, _key = issued
    with Project.open(copy_path) as copy:
        assert handout_reader(copy) == "mallory"
    assert handout_reader(master) is None


def test_a_schema_3_project_gets_its_package_key_and_tables_when_opened(tmp_path):
    import sqlite3

    from aldesk.store import PROJECT_DB_NAME, SCHEMA_VERSION

    Project.create(tmp_path / "old", ["a", "b"]).close()
    c = sqlite3.connect(tmp_path / "old" / PROJECT_DB_NAME)
    c.executescript("DROP TABLE handout_scans; DROP TABLE handouts; DROP TABLE package_keys; "
                    "DELETE FROM meta WHERE key = 'package_secret'; PRAGMA user_version = 3;")
    c.close()
    with Project.open(tmp_path / "old") as p:
        assert p.status.migrated_from == 3 and SCHEMA_VERSION >= 4
        assert len(bytes.fromhex(p.meta("package_secret"))) == 32
        assert p.packages.handouts() == [] and p.packages.keys() == []


def test_a_handout_cannot_backdate_new_reads_nor_export_another_readers(issued, tmp_path):
    master, copy_path, package, key = issued
    scan = rows_of(members_of(package), "scans.jsonl")[0]["ref"]
    old = {"id": str(uuid.uuid4()), "scan": scan, "annotator": "mallory", "value": "normal", "note": "",
           "created_at": "2020-01-01T00:00:00+00:00", "duration_ms": None, "workstation": "", "source": "gui",
           "replaced_by": None}
    result = import_package(master, forge(tmp_path, package, key, labels=[old]))
    assert [r["id"] for r in result.rejected] == [old["id"]]
    assert "dated before the hand-out was issued" in result.rejected[0]["reason"]
    assert result.counts.added == 3
    with Project.open(copy_path) as copy:
        with pytest.raises(pk.InputFileError, match="issued to 'mallory': it sends only their labels"):
            export_package(copy, tmp_path / "bob.aldpkg", annotator="bob")
        with pytest.raises(pk.InputFileError, match="is a hand-out copy; its packages are already signed"):
            pk.export_trust_key(copy, tmp_path / "copy.key")
        lead = export_package(master, tmp_path / "lead.aldpkg").path
        with pytest.raises(PackageError, match="is a hand-out copy: .* takes no package in"):
            import_package(copy, lead)
