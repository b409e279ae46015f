"""Series and study units: assembled at import from the real multi-vendor MR set and generated series."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from aldesk.app.importer import import_paths
from aldesk.app.projects import project_info
from aldesk.app.units import unit_view
from aldesk.errors import ProjectError
from aldesk.store import Project
from tests.app.conftest import write_png
from tests.conftest import SHARED_DATA
from tests.dicom_series import write_series

SERIES_DATA = SHARED_DATA / "dicom-series" / "dcm_qa_table"
GE = SERIES_DATA / "GE" / "Exam1486_Laser794mm"


@pytest.fixture
def series_data() -> Path:
    if not SERIES_DATA.is_dir():
        pytest.skip(f"real DICOM series not found at {SERIES_DATA}")
    return SERIES_DATA


def _create(tmp_path, unit):
    return Project.create(tmp_path / f"p-{unit}", ["normal", "abnormal"], unit=unit)


@pytest.fixture(scope="module")
def study_project(tmp_path_factory):
    """All of the real multi-vendor MR set (4 studies, 22 series, 1,584 files), imported by study."""
    if not SERIES_DATA.is_dir():
        pytest.skip(f"real DICOM series not found at {SERIES_DATA}")
    root = tmp_path_factory.mktemp("units")
    p = Project.create(root / "p", ["normal", "abnormal"], unit="study")
    summary = import_paths(p, [SERIES_DATA], jobs=2)
    yield p, summary
    p.close()


def _views(p):
    return [unit_view(p, sid) for sid in p.scans.ids().tolist()]


def _series(p, description, number=None):
    return next(s for v in _views(p) for s in v.series
                if s.description == description and (number is None or s.number == number))


def test_real_series_become_one_unit_per_study(study_project):
    p, summary = study_project
    assert (summary.imported, summary.failed, summary.units) == (1584, 0, 4)
    assert summary.series_problems == []   # these series are whole and evenly spaced
    info = project_info(p, check_files=False)
    assert (info["unit"], info["units"], info["series"], info["studies"], info["files"]) == ("study", 4, 22, 4, 1584)
    assert sorted(len(v.series) for v in _views(p)) == [2, 4, 8, 8]          # as SOURCE.md lists them
    assert sorted(v.images for v in _views(p)) == [240, 342, 342, 660]


def test_localizer_splits_into_its_three_planes(study_project):
    p, _ = study_project
    localizers = [s for v in _views(p) for s in v.series if s.description == "3-Plane Localizer"]
    assert len(localizers) == 4
    for localizer in localizers:
        assert sorted(s.label for s in localizer.stacks) == ["axial", "coronal", "sagittal"]
        assert [len(s.images) for s in localizer.stacks] == [7, 7, 7]


def test_fmri_repeats_split_by_time_point_and_ordered_along_the_normal(study_project):
    p, _ = study_project
    fmri = _series(p, "Ax fMRI", 2)
    assert [s.label for s in fmri.stacks] == [f"axial t{t}" for t in range(1, 6)]
    for stack in fmri.stacks:
        z = np.array(stack.positions)
        assert len(z) == 10 and np.all(np.diff(z) == pytest.approx(3.0))
        assert stack.problems == []


def test_dual_echo_and_two_echo_series_split_by_echo_and_image_type(study_project):
    import pydicom

    p, _ = study_project
    philips = _series(p, "Dual-echo_iso")
    assert [s.label for s in philips.stacks] == ["axial echo 1 magnitude", "axial echo 1 phase",
                                                 "axial echo 2 magnitude", "axial echo 2 phase"]
    siemens = _series(p, "gre_fm_siemens_baseline", 7)
    assert [(s.label, len(s.images)) for s in siemens.stacks] == [("axial echo 1", 110), ("axial echo 2", 110)]
    assert [len(s.stacks) for s in (_series(p, "gre_fm_siemens_baseline", 8),)] == [1]
    # the order is the headers' order along the normal, checked against the files themselves
    zs = [float(pydicom.dcmread(path, stop_before_pixels=True).ImagePositionPatient[2])
          for path, _ in siemens.stacks[1].images]
    assert zs == sorted(zs) and len(set(zs)) == 110


def test_a_series_project_has_one_unit_per_series(tmp_path, series_data):
    p = _create(tmp_path, "series")
    summary = import_paths(p, [GE / "01_3_Plane_Localizer_FF", GE / "02_Ax_fMRI_FF_I11.1_S15.9"], jobs=1)
    assert summary.units == 2
    info = project_info(p, check_files=False)
    assert (info["units"], info["series"], info["studies"]) == (2, 2, 1)
    uids = {r.uid for r in p.scans.rows()}
    assert uids == {s.uid for s in p.units.series()}  # a series unit is keyed by its Series Instance UID


def test_incremental_import_adds_slices_to_their_series(tmp_path, series_data):
    src = sorted((GE / "02_Ax_fMRI_FF_I11.1_S15.9").iterdir())
    first, second = tmp_path / "data" / "a", tmp_path / "data" / "b"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    for i, f in enumerate(src):
        shutil.copy(f, (first if i % 2 else second) / f.name)
    p = _create(tmp_path, "series")
    import_paths(p, [first], jobs=1)
    [unit] = p.scans.ids().tolist()
    assert unit_view(p, unit).images == 25
    summary = import_paths(p, [second], jobs=1)
    assert summary.imported == 25 and summary.units == 0
    assert p.scans.ids().tolist() == [unit]
    view = unit_view(p, unit)
    assert view.images == 50 and [len(s.images) for s in view.series[0].stacks] == [10] * 5
    again = import_paths(p, [first, second], jobs=1)
    assert (again.imported, again.unchanged) == (0, 50)


def test_same_sop_instance_twice_is_a_duplicate_not_a_second_slice(tmp_path):
    vol = np.zeros((4, 16, 16), np.int16)
    paths = write_series(tmp_path / "d" / "a", vol)
    shutil.copy(paths[0], tmp_path / "d" / "copy.dcm")
    p = _create(tmp_path, "series")
    summary = import_paths(p, [tmp_path / "d"], jobs=1)
    assert (summary.imported, summary.duplicates) == (4, 1)
    assert "same SOP Instance UID" in summary.problems[0]["reason"]


def test_missing_slices_and_blank_slices_are_shown_not_hidden(tmp_path):
    vol = np.zeros((12, 16, 16), np.int16)  # equal pixels everywhere: blank slices are still slices
    write_series(tmp_path / "d", vol, spacing=2.0, skip={4, 5})
    p = _create(tmp_path, "series")
    summary = import_paths(p, [tmp_path / "d"], jobs=1)
    assert (summary.imported, summary.duplicates) == (10, 0)
    [stack] = unit_view(p, p.scans.ids()[0]).series[0].stacks
    assert stack.problems == ["2 missing slices (gaps of 2 mm steps)"]
    assert summary.series_problems == [{"scan_id": int(p.scans.ids()[0]), "series": "S1 generated",
                                        "problems": ["2 missing slices (gaps of 2 mm steps)"]}]
    assert stack.positions == sorted(stack.positions)


def test_png_stays_a_single_image_and_image_projects_are_unchanged(tmp_path):
    write_png(tmp_path / "d" / "x.png", seed=1)
    write_series(tmp_path / "d" / "s", np.zeros((3, 16, 16), np.int16) + np.arange(3)[:, None, None].astype(np.int16))
    series = _create(tmp_path, "series")
    import_paths(series, [tmp_path / "d"], jobs=1)
    assert series.scans.count() == 2
    assert sorted(unit_view(series, sid) is None for sid in series.scans.ids().tolist()) == [False, True]
    image = _create(tmp_path, "image")
    import_paths(image, [tmp_path / "d"], jobs=1)
    assert image.scans.count() == 4 and image.units.slice_count() == 0
    assert project_info(image, check_files=False)["unit"] == "image"


def test_multiframe_file_is_a_series_of_its_own(tmp_path, dicom_samples):
    import pydicom

    multi = [dicom_samples / "DICOMSamples-jl" / "MR_Explicit_Little_MultiFrame.dcm"]
    p = _create(tmp_path, "series")
    summary = import_paths(p, multi, jobs=1)
    assert summary.imported == 1, summary.problems
    [row] = p.scans.rows()
    sop = pydicom.dcmread(multi[0], stop_before_pixels=True).SOPInstanceUID
    assert row.uid == sop and row.frames == unit_view(p, row.id).images > 1


def test_unit_is_chosen_at_creation_and_cannot_change_after_import(tmp_path):
    with pytest.raises(ProjectError, match="must be one of image, series, study"):
        Project.create(tmp_path / "bad", ["a", "b"], unit="slice")
    p = _create(tmp_path, "series")
    write_series(tmp_path / "d", np.zeros((2, 8, 8), np.int16))
    import_paths(p, [tmp_path / "d"], jobs=1)
    with pytest.raises(ProjectError, match="cannot change once scans are imported"):
        p.units.set_kind("study")


def test_version_1_project_migrates_to_image_units(tmp_path):
    import sqlite3

    from aldesk.store.schema import SCHEMA_V1

    folder = tmp_path / "old"
    folder.mkdir()
    conn = sqlite3.connect(folder / "project.sqlite")
    conn.executescript(SCHEMA_V1 + "PRAGMA application_id = 1095517259; PRAGMA user_version = 1;")
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [("name", "old"), ("project_id", "x"), ("patient_salt", "00")])
    conn.executemany("INSERT INTO classes VALUES (?, ?)", [(0, "a"), (1, "b")])
    conn.commit()
    conn.close()
    with Project.open(folder) as p:
        assert p.status.migrated_from == 1
        assert p.units.kind() == "image" and p.units.counts() == {"series": 0, "studies": 0}


# --------------------------------------------------------------------------- learning on units
def _two_class_study_project(tmp_path, n_studies=12, slices=20):
    """Studies of two generated series each; 'abnormal' studies carry a bright block on a few slices."""
    from pydicom.uid import generate_uid

    rng = np.random.default_rng(0)
    truth = {}
    for k in range(n_studies):
        study = generate_uid()
        abnormal = k % 2 == 1
        for s in range(2):
            vol = rng.integers(0, 200, (slices, 32, 32)).astype(np.int16)
            if abnormal and s == 1:
                vol[8:12, 8:24, 8:24] = 3000
            write_series(tmp_path / "d" / f"st{k}" / f"se{s}", vol, study_uid=study, series_number=s + 1,
                         description=f"series {s + 1}", patient_id=f"P{k}")
        truth[study] = "abnormal" if abnormal else "normal"
    p = _create(tmp_path, "study")
    import_paths(p, [tmp_path / "d"], jobs=1)
    return p, truth


def test_unit_features_pool_a_bounded_subset_of_slices_per_series(tmp_path, monkeypatch):
    import aldesk.app.unit_features as uf
    from aldesk.app.features import load_features
    from aldesk.features.pooling import SLICES_PER_STACK

    p, _ = _two_class_study_project(tmp_path, n_studies=2, slices=30)
    reads = []
    real = uf.slice_preview
    monkeypatch.setattr(uf, "slice_preview", lambda path, frame: reads.append(path) or real(path, frame))
    ids, X = load_features(p)
    assert len(ids) == 2 and len(reads) == 2 * 2 * SLICES_PER_STACK     # 8 of 30 slices per series
    from aldesk.features.registry import get_extractor

    d = get_extractor("default").transform([np.zeros((8, 8), np.uint8)]).shape[1]
    assert X.shape == (2, 2 * d)
    assert np.all(X[:, d:] >= X[:, :d] - 1e-5)                           # max >= mean
    reads.clear()
    load_features(p)
    assert reads == []                                                    # cached
    assert p.conn.execute("SELECT COUNT(*) FROM series_features").fetchone()[0] == 4


def test_pool_mean_max_refuses_an_empty_stack():
    from aldesk.features.pooling import pool_mean_max

    assert pool_mean_max(np.array([[1.0, 4.0], [3.0, 0.0]])).tolist() == [2.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match=r"must be \(k >= 1, d\)"):
        pool_mean_max(np.zeros((0, 3)))


def test_answers_by_series_and_study_uid_and_why_this_study_names_a_series(tmp_path):
    from aldesk.app.answers import read_labelled_csv
    from aldesk.app.labelling import record_label
    from aldesk.app.modelling import rank, train
    from aldesk.errors import InputFileError

    p, truth = _two_class_study_project(tmp_path)
    key = tmp_path / "key.csv"
    key.write_text("study_uid,label\n" + "".join(f"{uid},{label}\n" for uid, label in truth.items()))
    rows = read_labelled_csv(p, key)
    rows = getattr(rows, "rows", rows)
    by_uid = {r.uid: r.id for r in p.scans.rows()}
    assert {r.scan_id: r.label for r in rows} == {by_uid[u]: lab for u, lab in truth.items()}
    series_key = tmp_path / "series.csv"
    some_series = p.units.series()[0]
    series_key.write_text(f"series_uid,label\n{some_series.uid},normal\n1.2.3.4,normal\n")
    with pytest.raises(InputFileError, match="line 3: '1.2.3.4': no series or study of this project has this series uid"):
        read_labelled_csv(p, series_key)
    for r in rows[:8]:
        record_label(p, r.scan_id, "dr_a", r.label)
    train(p, folds=2)
    ranking = rank(p, strategy="entropy", batch=3)
    assert all("series S" in r.reason and "least certain of 2" in r.reason for r in ranking.batch)


# --------------------------------------------------------------------------- exports and packages
def _series_project_with_labels(tmp_path):
    from aldesk.app.labelling import record_label

    for k in range(2):
        write_series(tmp_path / "d" / f"s{k}", np.full((5, 16, 16), 100 * k, np.int16), series_number=k + 1,
                     patient_id=f"P{k}")
    p = _create(tmp_path, "series")
    import_paths(p, [tmp_path / "d"], jobs=1)
    for sid, value in zip(p.scans.ids().tolist(), ("normal", "abnormal")):
        record_label(p, sid, "dr_a", value)
    return p


def test_export_lists_each_unit_with_its_uids_and_writes_all_its_files(tmp_path):
    import csv

    import pydicom

    from aldesk.app.export import ExportOptions, export_labelled_set

    p = _series_project_with_labels(tmp_path)
    export_labelled_set(p, tmp_path / "csv", ExportOptions(format="csv"))
    rows = list(csv.DictReader((tmp_path / "csv" / "labels.csv").open()))
    assert [(r["unit"], r["n_files"]) for r in rows] == [("series", "5"), ("series", "5")]
    assert all(r["series_keys"] == r["series_key"] and r["series_key"] for r in rows)
    assert "path" not in rows[0] and "files" not in rows[0]            # no paths unless asked for
    export_labelled_set(p, tmp_path / "folders", ExportOptions(format="folders"))
    files = sorted((tmp_path / "folders" / "normal" / rows[0]["scan_id"]).glob("*.dcm"))
    assert len(files) == 5
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert {h.SeriesInstanceUID for h in headers} == {rows[0]["series_key"]}   # remapped, consistent
    assert [float(h.ImagePositionPatient[2]) for h in headers] == sorted(float(h.ImagePositionPatient[2]) for h in headers)
    export_labelled_set(p, tmp_path / "ids", ExportOptions(format="json", include_identifiers=True))
    doc = json.loads((tmp_path / "ids" / "labels.json").read_text())
    records = doc.get("scans") or doc.get("records") or next(v for v in doc.values() if isinstance(v, list) and v
                                                              and isinstance(v[0], dict))
    assert [len(r["files"].split(";")) for r in records] == [5, 5]


def test_packages_merge_labels_of_units_between_copies(tmp_path):
    from aldesk.app.labelling import record_label
    from aldesk.app.packages import export_package, import_package

    master = _series_project_with_labels(tmp_path)
    master.packages.copy_database(tmp_path / "site")
    with Project.open(tmp_path / "site") as site:
        unit = site.scans.rows()[0]
        record_label(site, unit.id, "dr_b", "abnormal")
        pkg = export_package(site, tmp_path / "site.aldpkg").path
    import_package(master, pkg)
    got = {(r.uid, l.annotator): l.value for l in master.labels.current() for r in master.scans.rows([l.scan_id])}
    assert got[(unit.uid, "dr_b")] == "abnormal" and unit.uid == master.units.series()[0].uid


def test_cli_label_csv_by_series_uid(tmp_path, capsys):
    from aldesk.cli import main

    p = _series_project_with_labels(tmp_path)
    series = p.units.series()
    path = p.path
    p.close()
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("series_uid,label\n" + "".join(f"{s.uid},abnormal\n" for s in series))
    assert main(["label", str(path), "--csv", str(csv_file), "--annotator", "dr_csv"]) == 0
    with Project.open(path) as again:
        mine = {l.scan_id: l.value for l in again.labels.current("dr_csv")}
    assert mine == {s.scan_id: "abnormal" for s in series}


def test_unit_features_from_worker_processes_equal_those_made_in_process(tmp_path, monkeypatch):
    import aldesk.app.unit_features as uf
    from aldesk.app.features import load_features

    p, _ = _two_class_study_project(tmp_path, n_studies=3, slices=10)
    ids, X = load_features(p, jobs=1)
    series_before = p.conn.execute("SELECT series_id, vector FROM series_features ORDER BY series_id").fetchall()
    p.conn.execute("DELETE FROM feature_sets")
    monkeypatch.setattr(uf, "IN_PROCESS_BELOW", 0)
    monkeypatch.setattr(uf, "CHUNK_UNITS", 2)
    ids2, X2 = load_features(p, jobs=2)
    assert ids2.tolist() == ids.tolist() and np.allclose(X2, X)
    assert p.conn.execute("SELECT series_id, vector FROM series_features ORDER BY series_id").fetchall() == series_before
