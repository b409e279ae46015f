"""`aldesk export`: the labelled set as CSV / JSON / class folders, splits, manifest, no patient data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from aldesk.app.export import (
    ExportOptions,
    export_labelled_set,
    final_label_table,
    grouped_stratified_split,
    parse_splits,
)
from aldesk.cli import main
from aldesk.errors import InputFileError, ProjectError
from tests.export.conftest import PATIENTS, identifying_strings, label_all, scan_ids_by_name

# alice reads everything; bob reads the DICOMs (agrees except on case1_*); carol reads case2_0 as unsure
ALICE = {f"case{p}_{k}": ("pneumonia" if p % 2 else "normal") for p in range(6) for k in range(2)} | {
    f"img_{i}": ("pneumonia" if i % 3 == 0 else "normal") for i in range(8)}
BOB = {f"case{p}_{k}": ALICE[f"case{p}_{k}"] for p in range(6) for k in range(2)} | {
    "case1_0": "normal", "case1_1": "normal"}


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def names_by_key(project) -> dict[str, str]:
    """{scan key: source file stem}: what the test knows and an export must not say."""
    from aldesk.app.export import scan_keys

    keys = scan_keys(project)
    return {keys[sid]: name for name, sid in scan_ids_by_name(project).items()}


@pytest.fixture
def labelled(study):
    label_all(study, "alice", ALICE)
    label_all(study, "bob", BOB)
    label_all(study, "carol", {"case2_0": "unsure"})
    return study


def test_csv_export_has_labels_methods_readers_and_manifest(labelled, tmp_path):
    result = export_labelled_set(labelled, tmp_path / "out", ExportOptions(format="csv", splits=(0.7, 0.15, 0.15)))
    rows = read_csv(tmp_path / "out" / "labels.csv")
    assert {"scan_id", "scan_key", "study_key", "series_key", "label", "split"} <= set(rows[0])
    assert {"method", "agreement", "n_readers", "patient_key", "model_probability", "p_normal", "p_pneumonia",
            "reader:alice", "reader:bob", "reader:carol"} <= set(rows[0])
    assert "path" not in rows[0]  # a path names the patient's folder: only with include_identifiers
    name_of = names_by_key(labelled)
    by_name = {name_of[r["scan_key"]]: r for r in rows}
    # case1_* are disputed (1 vs 1): no final label, not exported
    assert len(rows) == 18 and "case1_0" not in by_name
    assert by_name["case0_0"]["method"] == "consensus" and by_name["case0_0"]["agreement"] == "1.0"
    assert by_name["img_0"]["method"] == "single reader" and by_name["img_0"]["reader:bob"] == ""
    assert by_name["case2_0"]["reader:carol"] == "unsure" and by_name["case2_0"]["n_readers"] == "2"
    assert all(r["label"] == ALICE[name_of[r["scan_key"]]] for r in rows)
    # the two scans of one study share a study key (a remapped UID), rasters have none
    assert by_name["case0_0"]["study_key"] == by_name["case0_1"]["study_key"].strip() != ""
    assert by_name["case0_0"]["series_key"] != by_name["case0_1"]["series_key"]
    assert by_name["img_0"]["study_key"] == "" and by_name["img_0"]["scan_key"].startswith("2.25.")
    assert {r["split"] for r in rows} <= {"train", "val", "test"}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["format"] == "aldesk-export" and manifest["version"] == 1
    assert manifest["project_id"] == labelled.project_id and manifest["identifiers_included"] is False
    assert manifest["options"]["splits"] == [70.0, 15.0, 15.0] and manifest["options"]["format"] == "csv"
    assert manifest["counts"]["scans"] == 18 and manifest["counts"]["excluded"] == {"disputed": 2, "no_class_read": 0,
                                                                                      "burned_in": 0}
    assert sum(sum(v.values()) for v in manifest["counts"]["per_split"].values()) == 18
    # no model yet: probabilities empty, and the manifest says why
    assert all(r["model_probability"] == "" for r in rows)
    assert manifest["model"]["available"] is False and "train" in manifest["model"]["reason"]
    assert result.scans == 18 and any("model probabilities" in w for w in result.warnings)


def test_json_export_matches_the_final_labels(labelled, tmp_path):
    export_labelled_set(labelled, tmp_path / "out", ExportOptions(format="json"))
    doc = json.loads((tmp_path / "out" / "labels.json").read_text())
    finals, _ = final_label_table(labelled)
    assert [(s["scan_id"], s["label"], s["method"]) for s in doc["scans"]] == [(f.scan_id, f.label, f.method) for f in finals]
    assert doc["scans"][0]["readers"] == {"alice": ALICE["case0_0"], "bob": BOB["case0_0"]}
    assert all(s["split"] == "" for s in doc["scans"])


def test_model_probabilities_come_from_the_latest_model(labelled, tmp_path):
    pytest.importorskip("aldesk.learning.models")
    from aldesk.app.modelling import train

    train(labelled, folds=2)
    result = export_labelled_set(labelled, tmp_path / "out", ExportOptions(format="csv"))
    rows = read_csv(tmp_path / "out" / "labels.csv")
    assert result.manifest["model"]["available"] is True
    for r in rows:
        p = {c: float(r[f"p_{c}"]) for c in ("normal", "pneumonia")}
        assert abs(sum(p.values()) - 1) < 1e-4 and float(r["model_probability"]) == pytest.approx(p[r["label"]], abs=1e-6)


def _all_exported_text(out: Path) -> str:
    """Every exported file read back: CSV/JSON as text, DICOM through pydicom (every element value) and raw."""
    parts = []
    for f in sorted(out.rglob("*")):
        if not f.is_file():
            continue
        parts.append(f.relative_to(out).as_posix())
        parts.append(f.read_bytes().decode("latin-1"))
        if f.suffix == ".dcm":
            ds = pydicom.dcmread(f)
            parts += [str(e.value) for e in ds.iterall() if e.VR not in ("OB", "OW")]
            parts += [str(e.value) for e in ds.file_meta]
    return "\n".join(parts)


@pytest.mark.parametrize("fmt,dicom_as", [("csv", "dicom"), ("json", "dicom"), ("folders", "dicom"), ("folders", "png")])
def test_no_identifying_value_of_the_source_in_any_exported_file(labelled, study_folder, tmp_path, fmt, dicom_as):
    out = tmp_path / "out"
    result = export_labelled_set(labelled, out, ExportOptions(format=fmt, dicom_as=dicom_as, splits=(0.8, 0.2)))
    text = _all_exported_text(out)
    leaks = sorted(s for s in identifying_strings(study_folder) if s in text)
    assert not leaks
    if fmt == "folders":
        files = [f for f in out.rglob("*") if f.suffix in (".dcm", ".png")]
        assert len(files) == 16  # case5_*: Burned In Annotation = YES, left out
        suffix = ".dcm" if dicom_as == "dicom" else ".png"
        assert len([f for f in files if f.suffix == suffix and "case" not in f.name]) >= 8
        # layout: <split>/<class>/<scan id>.<ext>, matching the index
        rows = read_csv(out / "labels.csv")
        for r in rows:
            assert r["file"].split("/")[:2] == [r["split"], r["label"]] and (out / r["file"]).is_file()
        if dicom_as == "dicom":
            dicoms = [pydicom.dcmread(out / r["file"]) for r in rows if r["format"] == "dicom"]
            assert all(d.PatientIdentityRemoved == "YES" for d in dicoms)
            keys = {r["patient_key"] for r in rows if r["format"] == "dicom"}
            assert {str(d.PatientID) for d in dicoms} == keys  # the pseudonymous key, consistent with the CSV
            # a row's scan key is its copy's SOP Instance UID: the CSV and the files join without paths
            assert [str(d.SOPInstanceUID) for d in dicoms] == [r["scan_key"] for r in rows if r["format"] == "dicom"]
            # one study per patient in the source -> one remapped study per patient in the export
            assert len({str(d.StudyInstanceUID) for d in dicoms}) == len(keys)
        assert result.manifest["counts"]["excluded"]["burned_in"] == 2 and result.scans == 16
        assert {x["reason"] for x in result.manifest["burned_in_left_out"]} == {"Burned In Annotation = YES"}
        assert any("2 images left out" in w for w in result.warnings)


def test_identifiers_only_when_asked_and_recorded(labelled, tmp_path):
    export_labelled_set(labelled, tmp_path / "out", ExportOptions(format="folders", include_identifiers=True))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["identifiers_included"] is True and manifest["options"]["include_identifiers"] is True
    rows = read_csv(tmp_path / "out" / "labels.csv")
    dicom_rows = [r for r in rows if r["format"] == "dicom"]
    assert {r["patient_id"] for r in dicom_rows} <= set(PATIENTS) and dicom_rows[0]["sop_instance_uid"]
    copy = pydicom.dcmread(tmp_path / "out" / dicom_rows[0]["file"])
    assert str(copy.PatientID) in PATIENTS


def test_export_reimported_as_answers_reproduces_the_labels(labelled, study_folder, tmp_path):
    from aldesk.app.answers import read_labelled_csv
    from aldesk.app.importer import import_paths
    from aldesk.app.labelling import final_labels
    from aldesk.store import Project

    export_labelled_set(labelled, tmp_path / "out", ExportOptions(format="csv", splits=(0.7, 0.15, 0.15)))
    # the project reads its own de-identified export back by scan key
    answers = read_labelled_csv(labelled, tmp_path / "out" / "labels.csv").rows
    final = final_labels(labelled)
    assert {a.scan_id: a.label for a in answers} == final
    assert {a.split for a in answers} <= {"train", "val", "test"}
    # another project has other keys: an export with identifiers (paths) carries labels across, via the CLI
    export_labelled_set(labelled, tmp_path / "ids", ExportOptions(format="csv", splits=(0.7, 0.15, 0.15),
                                                                  include_identifiers=True))
    exported = {r["path"]: (r["label"], r["split"]) for r in read_csv(tmp_path / "ids" / "labels.csv")}
    with Project.create(tmp_path / "fresh", labelled.classes) as fresh:
        import_paths(fresh, [study_folder], jobs=1)
    with pytest.raises(InputFileError, match="no scan of this project has this scan key"):
        with Project.open(tmp_path / "fresh") as fresh:
            read_labelled_csv(fresh, tmp_path / "out" / "labels.csv")
    assert main(["label", str(tmp_path / "fresh"), "--csv", str(tmp_path / "ids" / "labels.csv"),
                 "--annotator", "truth"]) == 0
    with Project.open(tmp_path / "fresh") as fresh:
        got = {Path(r.relpath).as_posix(): final_labels(fresh)[r.id] for r in fresh.scans.rows()
               if r.id in final_labels(fresh)}
    assert got == {p: lab for p, (lab, _split) in exported.items()}


def test_splits_never_put_a_patient_in_two_splits(labelled, tmp_path):
    for seed in range(5):
        out = tmp_path / f"out{seed}"
        export_labelled_set(labelled, out, ExportOptions(format="csv", splits=(0.5, 0.25, 0.25), seed=seed))
        rows = read_csv(out / "labels.csv")
        splits_of: dict[str, set] = {}
        for r in rows:
            if r["patient_key"]:
                splits_of.setdefault(r["patient_key"], set()).add(r["split"])
        assert len(splits_of) == 5 and all(len(s) == 1 for s in splits_of.values())  # patient 1 is disputed


def test_grouped_stratified_split_balances_classes_and_is_reproducible():
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 120, 600).tolist()              # 120 patients, 1-12 scans each
    y = np.array([g % 3 == 0 for g in groups], dtype=np.int64)  # class depends on the patient
    a = grouped_stratified_split(y, groups, (0.7, 0.15, 0.15), seed=3)
    assert np.array_equal(a, grouped_stratified_split(y, groups, (0.7, 0.15, 0.15), seed=3))
    owner: dict[int, int] = {}
    for g, s in zip(groups, a.tolist()):
        assert owner.setdefault(g, s) == s
    for k, frac in enumerate((0.7, 0.15, 0.15)):
        for c in (0, 1):
            share = ((a == k) & (y == c)).sum() / (y == c).sum()
            assert abs(share - frac) < 0.05, (k, c, share)
    assert not np.array_equal(a, grouped_stratified_split(y, groups, (0.7, 0.15, 0.15), seed=4))


def test_bad_options_and_targets(labelled, project, tmp_path):
    with pytest.raises(InputFileError, match=r"give 2 \(train,test\) or 3"):
        parse_splits("50,20,20,10")
    with pytest.raises(InputFileError, match="give 2 or 3 comma-separated"):
        parse_splits("a,b")
    assert parse_splits("80,20") == (0.8, 0.2)
    with pytest.raises(InputFileError, match="format == 'xml'"):
        export_labelled_set(labelled, tmp_path / "x", ExportOptions(format="xml"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ProjectError, match="not empty"):
        export_labelled_set(labelled, tmp_path / "full", ExportOptions())
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_nothing_labelled_and_missing_files(study, study_folder, tmp_path):
    with pytest.raises(ProjectError, match="no scan has a final label"):
        export_labelled_set(study, tmp_path / "out", ExportOptions())
    label_all(study, "alice", {"case0_0": "normal"})
    (study_folder / "dicom" / "case0_0.dcm").unlink()
    with pytest.raises(ProjectError, match=r"files are missing \(e.g. scan \d+;.*relink"):
        export_labelled_set(study, tmp_path / "out", ExportOptions(format="folders"))
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial*"))


def test_cli_export(labelled, tmp_path, capsys):
    project_dir = str(labelled.path)
    assert main(["export", project_dir, str(tmp_path / "o"), "--format", "folders", "--splits", "70,15,15",
                 "--seed", "2", "--dicom-as", "png"]) == 0
    text = capsys.readouterr().out
    assert "exported 16 labelled scans" in text and "identifiers: none" in text
    assert "left out: 2 images that may show burned-in text" in text
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["options"]["dicom_as"] == "png" and manifest["options"]["seed"] == 2
    assert main(["export", project_dir, str(tmp_path / "o"), "--format", "csv"]) == 1
    assert "not empty" in capsys.readouterr().err


def test_cancel_leaves_no_export(labelled, tmp_path):
    from aldesk.errors import CancelledError

    calls = iter(range(1000))
    with pytest.raises(CancelledError, match="export cancelled"):
        export_labelled_set(labelled, tmp_path / "out", ExportOptions(format="folders"),
                            should_stop=lambda: next(calls) >= 5)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial*"))


@pytest.mark.parametrize("fmt", ["csv", "json", "folders"])
def test_default_exports_name_no_file_or_folder_of_the_source(labelled, study_folder, tmp_path, fmt):
    """A source path names the patient (``SMITH_JOHN_7731942/img1.dcm``): no file or folder name of the
    source appears in the contents or names of a default export; the pseudonymous keys do."""
    result = export_labelled_set(labelled, tmp_path / "out", ExportOptions(format=fmt))
    names = {p.stem for p in study_folder.rglob("*") if p.is_file()}  # case0_0, img_3 (folders dicom/, png/: generic)
    for f in (tmp_path / "out").rglob("*"):
        text = f.relative_to(tmp_path / "out").as_posix() + (f.read_bytes().decode("latin-1") if f.is_file() else "")
        assert not [n for n in names if n in text], f
    index = (tmp_path / "out" / ("labels.json" if fmt == "json" else "labels.csv")).read_text()
    assert sum(key in index for key in names_by_key(labelled)) == result.scans == (16 if fmt == "folders" else 18)


def test_the_path_column_comes_only_with_identifiers(labelled, tmp_path):
    export_labelled_set(labelled, tmp_path / "ids", ExportOptions(format="json", include_identifiers=True))
    doc = json.loads((tmp_path / "ids" / "labels.json").read_text())
    name_of = names_by_key(labelled)
    assert all(Path(s["path"]).stem == name_of[s["scan_key"]] for s in doc["scans"])
    export_labelled_set(labelled, tmp_path / "plain", ExportOptions(format="json"))
    assert not any("path" in s for s in json.loads((tmp_path / "plain" / "labels.json").read_text())["scans"])


def test_retention_options_shift_dates_per_patient_and_keep_cleaned_descriptors(labelled, tmp_path):
    result = export_labelled_set(labelled, tmp_path / "out", ExportOptions(format="folders", shift_dates=True,
                                                                           clean_descriptors=True))
    rows = [r for r in read_csv(tmp_path / "out" / "labels.csv") if r["format"] == "dicom"]
    dates: dict[str, set] = {}
    for r in rows:
        ds = pydicom.dcmread(tmp_path / "out" / r["file"])
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED" and ds.StudyDate != "20240305"
        dates.setdefault(r["patient_key"], set()).add(str(ds.StudyDate))
    assert all(len(d) == 1 for d in dates.values()) and len(set().union(*dates.values())) > 1
    assert "dates shifted per patient" in result.manifest["deidentification"]["dicom"]
    assert main(["export", str(labelled.path), str(tmp_path / "cli"), "--format", "folders", "--shift-dates",
                 "--clean-descriptors", "--quiet"]) == 0
    assert json.loads((tmp_path / "cli" / "manifest.json").read_text())["options"]["shift_dates"] is True


def test_images_that_may_show_burned_in_text_are_left_out_of_image_exports(labelled, tmp_path):
    """Burned In Annotation = YES, or US/SC/XA/ES/XC without an explicit NO: left out of a de-identified
    image export with the reason in the manifest; in with --include-burned-in (flagged) or identifiers."""
    from aldesk.app.export import scan_keys

    # case3_*: ultrasound without a Burned In Annotation flag -> left out too
    ids = scan_ids_by_name(labelled)
    keys = scan_keys(labelled)
    for name in ("case3_0", "case3_1"):
        path = Path(labelled.scans.get(ids[name]).path)
        ds = pydicom.dcmread(path)
        ds.Modality = "US"
        ds.save_as(path)
    result = export_labelled_set(labelled, tmp_path / "out", ExportOptions(format="folders", dicom_as="png"))
    left = {x["scan_key"]: x["reason"] for x in result.burned_in_left_out}
    assert set(left) == {keys[ids[n]] for n in ("case3_0", "case3_1", "case5_0", "case5_1")}
    assert left[keys[ids["case3_0"]]].startswith("modality US") and left[keys[ids["case5_0"]]] == "Burned In Annotation = YES"
    rows = read_csv(tmp_path / "out" / "labels.csv")
    assert len(rows) == 14 and not set(left) & {r["scan_key"] for r in rows}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["burned_in_left_out"] == result.burned_in_left_out and manifest["counts"]["excluded"]["burned_in"] == 4
    assert sum(manifest["counts"]["per_class"].values()) == 14
    # csv carries no pixels: nothing to leave out
    assert export_labelled_set(labelled, tmp_path / "csv", ExportOptions(format="csv")).scans == 18
    both = export_labelled_set(labelled, tmp_path / "all", ExportOptions(format="folders", include_burned_in=True))
    assert both.scans == 18 and not both.burned_in_left_out
    assert len(both.manifest["deidentification"]["burned_in_annotation_yes"]) == 2
    assert any("declare burned-in annotation" in w for w in both.warnings)


def test_keep_private_is_an_explicit_safe_private_list(labelled, tmp_path, capsys):
    from aldesk.app.export import parse_private

    assert parse_private("SIEMENS CSA HEADER:0029:08") == ("SIEMENS CSA HEADER", 0x29, 0x08)
    for bad in ("0029:08", "ACME:0028:08", "ACME:0029:1008", "ACME:zz:08"):
        with pytest.raises(InputFileError, match="give CREATOR:GROUP:OFFSET"):
            parse_private(bad)
    # the study's files hold a private creator-less element (0009,1010): listing another one keeps nothing
    assert main(["export", str(labelled.path), str(tmp_path / "o"), "--format", "folders", "--quiet",
                 "--keep-private", "ACME 1.0:0009:10"]) == 0
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["options"]["keep_private"] == ["ACME 1.0:0009:10"]
    assert not any(e.tag.is_private for f in (tmp_path / "o").rglob("*.dcm") for e in pydicom.dcmread(f).iterall())
    assert main(["export", str(labelled.path), str(tmp_path / "p"), "--format", "folders", "--keep-private", "x"]) == 1
    assert "give CREATOR:GROUP:OFFSET" in capsys.readouterr().err


def test_readers_notes_are_in_the_exported_labels_csv(labelled, tmp_path):
    """Issue 13: the notes typed with a label were missing from labels.csv."""
    from aldesk.app.labelling import record_label

    ids = scan_ids_by_name(labelled)
    record_label(labelled, ids["img_0"], "alice", ALICE["img_0"], note="air bronchogram right base")
    record_label(labelled, ids["case0_0"], "bob", BOB["case0_0"], note="clear; compare with prior")
    export_labelled_set(labelled, tmp_path / "out", ExportOptions(format="csv"))
    rows = read_csv(tmp_path / "out" / "labels.csv")
    name_of = names_by_key(labelled)
    notes = {name_of[r["scan_key"]]: r["notes"] for r in rows}
    assert notes["img_0"] == "alice: air bronchogram right base"
    assert notes["case0_0"] == "bob: clear; compare with prior"
    assert notes["img_1"] == ""
