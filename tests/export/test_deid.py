"""De-identification of single files: the basic profile table, UID remapping, what is left."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.uid import UID, generate_uid

from pathlib import Path

from pydicom.dataset import Dataset

from aldesk.imaging.deid import (
    BASIC_PROFILE,
    IDENTIFYING_KEYWORDS,
    DeidOptions,
    burned_in_reason,
    date_shift_days,
    deidentify_dataset,
    deidentify_file,
    profile_edition,
    profile_ranges,
    profile_table,
    read_identifiers,
    remap_uid,
    save_display_png,
    strip_raster,
)
from tests.app.conftest import write_png
from tests.export.conftest import PATIENTS, identifying_strings, write_study_dicom

SECRET = b"k" * 32


def test_the_table_is_the_newest_edition_the_library_ships():
    """PS3.15 Table E.1-1 comes from dicom-anonymizer's data, newest edition (≥ 2026c), with every
    action of the standard including the combined ones, curves and overlays as repeating groups."""
    import pkgutil

    import dicomanonymizer.dicom_anonymization_databases as editions

    shipped = sorted(m.name.removeprefix("dicomfields_") for m in pkgutil.iter_modules(editions.__path__)
                     if m.name.startswith("dicomfields_"))
    assert profile_edition() == shipped[-1] and profile_edition() >= "2026c"
    table = profile_table()
    assert len(table) >= 650 and set(table.values()) == {"D", "Z", "X", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}
    assert {g for g, _e, _gm, _em, _a in profile_ranges()} == {0x5000, 0x6000}
    for keyword, action in {"PatientName": "Z", "PatientID": "Z/D", "PatientBirthDate": "Z", "StudyInstanceUID": "U",
                            "OtherPatientIDsSequence": "X", "InstitutionName": "X/Z/D", "ReferencedImageSequence": "X/Z/U*",
                            "AcquisitionFieldOfViewLabel": "D", "AnnotationGroupLabel": "D", "CertificateOfSigner": "D",
                            "ClinicalTrialSponsorName": "D", "DeviceLabel": "D", "ContentSequence": "D",
                            "SeriesDate": "X/D", "AcquisitionDate": "X/Z", "ContentDate": "Z/D"}.items():
        assert BASIC_PROFILE[keyword] == action, keyword
    assert "dicom-anonymizer" in Path(__file__).parents[2].joinpath("pyproject.toml").read_text()


def test_each_action_as_applied(tmp_path):
    """X removes, Z empties, D puts a dummy (one empty item for a sequence), U remaps; combined actions
    take the strictest that keeps the object readable; X/Z/U* sequences keep their cleaned items."""
    ds = pydicom.dcmread(write_study_dicom(tmp_path / "a.dcm", np.zeros((4, 4)), patient=0,
                                           study_uid=generate_uid(), seed=1))
    ds.AcquisitionFieldOfViewLabel = "FOV of Secretname"          # D
    ds.ContentSequence = pydicom.Sequence([Dataset()])
    ds.ContentSequence[0].TextValue = "Secretname said"            # D on a sequence
    ds.AcquisitionDate = "20240305"                                # X/Z -> Z
    ds.SeriesDescription = "Secretname chest"                      # X
    ds.ClinicalTrialSubjectID = "SUBJ-SECRET"                      # D
    report = deidentify_dataset(ds, uid_secret=SECRET)
    assert ds.AcquisitionFieldOfViewLabel == "ANONYMIZED" and ds.ClinicalTrialSubjectID == "ANONYMIZED"
    assert len(ds.ContentSequence) == 1 and len(ds.ContentSequence[0]) == 0
    assert ds.AcquisitionDate == "" and "SeriesDescription" not in ds and "SeriesDate" not in ds
    assert ds.InstitutionName == "" and ds.ContentDate == ""
    assert "ImageComments" not in ds and "OtherPatientIDs" not in ds
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID.startswith("2.25.")
    assert report.edition == profile_edition() and profile_edition() in ds.DeidentificationMethod
    assert report.removed > 5 and report.dummied >= 3 and report.uids_remapped >= 4


def test_sequences_are_cleaned_recursively_and_private_tags_go_unless_listed_safe(tmp_path):
    ds = pydicom.dcmread(write_study_dicom(tmp_path / "a.dcm", np.zeros((4, 4)), patient=0,
                                           study_uid=generate_uid(), seed=1))
    inner = Dataset()
    inner.PatientName, inner.OtherPatientIDs, inner.StudyDate = "Nested^Secret", "NESTED-ID", "20240101"
    inner.add_new(0x00110010, "LO", "ACME 1.0")                     # a private creator ...
    inner.add_new(0x00111001, "LO", "nested private SECRET")         # ... and its element
    deep = Dataset()
    deep.PatientAddress, deep.SOPInstanceUID = "Deep Street", "1.2.3.4.5.6.7"
    inner.ReferencedImageSequence = pydicom.Sequence([deep])
    ds.AnatomicRegionSequence = pydicom.Sequence([inner])            # not in the table: its items cleaned
    ds.add_new(0x00290010, "LO", "SAFE CREATOR")
    ds.add_new(0x00291008, "CS", "KEEPME")
    ds.add_new(0x00291009, "LO", "drop me SECRET")
    copy = pydicom.dcmread(tmp_path / "a.dcm")
    copy.update(ds)
    deidentify_dataset(ds, uid_secret=SECRET)
    item = ds.AnatomicRegionSequence[0]
    assert item.PatientName == "" and "OtherPatientIDs" not in item and item.StudyDate == ""
    assert "PatientAddress" not in item.ReferencedImageSequence[0]
    assert item.ReferencedImageSequence[0].SOPInstanceUID == remap_uid("1.2.3.4.5.6.7", SECRET)
    assert not any(e.tag.is_private for e in ds.iterall())
    deidentify_dataset(copy, uid_secret=SECRET, options=DeidOptions(safe_private=frozenset({("SAFE CREATOR", 0x0029, 0x08)})))
    kept = {e.tag: e.value for e in copy.iterall() if e.tag.is_private}
    assert kept == {0x00290010: "SAFE CREATOR", 0x00291008: "KEEPME"}
    assert "113111" in {c.CodeValue for c in copy.DeidentificationMethodCodeSequence}


def test_modified_dates_option_shifts_dates_consistently_per_patient(tmp_path):
    shift = date_shift_days("patient-key-1", SECRET)
    assert shift == date_shift_days("patient-key-1", SECRET) and -3650 <= shift <= -1
    assert shift != date_shift_days("patient-key-2", SECRET) or date_shift_days("patient-key-3", SECRET) != shift
    ds = pydicom.dcmread(write_study_dicom(tmp_path / "a.dcm", np.zeros((4, 4)), patient=0,
                                           study_uid=generate_uid(), seed=1))
    ds.AcquisitionDateTime = "20240306101500.5"
    report = deidentify_dataset(ds, uid_secret=SECRET, options=DeidOptions(date_shift_days=-10))
    assert ds.StudyDate == "20240224" and ds.SeriesDate == "20240224" and ds.ContentDate == "20240224"
    assert ds.AcquisitionDateTime == "20240225101500.5" and ds.StudyTime == "101112"
    assert ds.PatientBirthDate == "" and report.dates_shifted >= 4
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    assert "113107" in {c.CodeValue for c in ds.DeidentificationMethodCodeSequence}


def test_clean_descriptors_option_keeps_descriptions_without_identifying_values(tmp_path):
    ds = pydicom.dcmread(write_study_dicom(tmp_path / "a.dcm", np.zeros((4, 4)), patient=0,
                                           study_uid=generate_uid(), seed=1))
    ds.StudyDescription = f"CHEST PA {PATIENTS[0]} secretname"
    ds.SeriesDescription = "follow-up 7731942 for Person0"
    plain = ds.copy()
    deidentify_dataset(ds, uid_secret=SECRET, options=DeidOptions(clean_descriptors=True))
    assert ds.StudyDescription.startswith("CHEST PA") and PATIENTS[0] not in ds.StudyDescription
    assert "secretname" not in ds.StudyDescription.lower() and "7731942" not in ds.SeriesDescription
    assert "Person0" not in ds.SeriesDescription and "follow-up" in ds.SeriesDescription
    deidentify_dataset(plain, uid_secret=SECRET)
    assert "StudyDescription" not in plain and "SeriesDescription" not in plain


@pytest.mark.parametrize("modality,flag,excluded", [
    ("CR", None, False), ("CR", "YES", True), ("US", None, True), ("US", "NO", False), ("SC", None, True),
    ("XA", None, True), ("XA", "NO", False), ("CT", "NO", False)])
def test_burned_in_reason(modality, flag, excluded):
    ds = Dataset()
    ds.Modality = modality
    if flag:
        ds.BurnedInAnnotation = flag
    assert bool(burned_in_reason(ds)) is excluded


def test_remap_uid_is_a_stable_valid_uid_keyed_by_the_secret():
    uid = generate_uid()
    new = remap_uid(uid, SECRET)
    assert new == remap_uid(uid, SECRET)
    assert new != remap_uid(uid, b"another secret")
    assert new.startswith("2.25.") and len(new) <= 64 and UID(new).is_valid
    assert remap_uid(uid + "1", SECRET) != new


def test_deidentified_copy_has_no_identifying_value_and_keeps_pixels(tmp_path):
    rng = np.random.default_rng(0)
    study = generate_uid()
    a = write_study_dicom(tmp_path / "src" / "a.dcm", rng.integers(0, 4096, (16, 12)), patient=0, study_uid=study, seed=1)
    b = write_study_dicom(tmp_path / "src" / "b.dcm", rng.integers(0, 4096, (16, 12)), patient=0, study_uid=study,
                          seed=2, burned_in="YES")
    ra = deidentify_file(a, tmp_path / "out" / "a.dcm", uid_secret=SECRET, patient_pseudonym="key123")
    rb = deidentify_file(b, tmp_path / "out" / "b.dcm", uid_secret=SECRET, patient_pseudonym="key123")
    assert ra.burned_in == "unknown" and rb.burned_in == "YES"
    secrets = identifying_strings(tmp_path / "src")
    for name in ("a.dcm", "b.dcm"):
        raw = (tmp_path / "out" / name).read_bytes().decode("latin-1")
        assert not [s for s in secrets if s in raw]
    src, out = pydicom.dcmread(a), pydicom.dcmread(tmp_path / "out" / "a.dcm")
    out_b = pydicom.dcmread(tmp_path / "out" / "b.dcm")
    assert out.PatientID == "key123" and out.PatientName == "key123" and out.PatientBirthDate == ""
    assert out.PatientIdentityRemoved == "YES" and out.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert out.LongitudinalTemporalInformationModified == "REMOVED"
    for keyword in ("PatientAddress", "OtherPatientIDs", "InstitutionAddress", "ImageComments", "SeriesDate"):
        assert keyword not in out, keyword
    for keyword in ("InstitutionName", "OperatorsName", "StationName", "DeviceSerialNumber"):  # X/Z/D -> Z
        assert out[keyword].value in ("", None), keyword
    assert out.StudyDate == "" and out.AccessionNumber == "" and out.ReferringPhysicianName == ""
    assert not any(e.tag.is_private for e in out.iterall())
    assert "SourceApplicationEntityTitle" not in out.file_meta
    # UIDs: remapped, valid, consistent within the study, meta agrees with the dataset
    assert out.StudyInstanceUID == out_b.StudyInstanceUID == remap_uid(study, SECRET)
    assert out.SOPInstanceUID == remap_uid(src.SOPInstanceUID, SECRET) == out.file_meta.MediaStorageSOPInstanceUID
    assert out.ReferencedImageSequence[0].ReferencedSOPInstanceUID == remap_uid(
        src.ReferencedImageSequence[0].ReferencedSOPInstanceUID, SECRET)
    assert out.SOPClassUID == src.SOPClassUID  # DICOM-defined UIDs are kept
    assert UID(out.SeriesInstanceUID).is_valid
    assert out_b.BurnedInAnnotation == "YES"
    np.testing.assert_array_equal(out.pixel_array, src.pixel_array)


def test_read_identifiers_of_dicom_and_png(tmp_path):
    src = write_study_dicom(tmp_path / "a.dcm", np.zeros((4, 4)), patient=1, study_uid=generate_uid(), seed=3)
    found = read_identifiers(src)
    assert found["PatientID"] == PATIENTS[1] and set(found) <= set(IDENTIFYING_KEYWORDS)
    assert read_identifiers(write_png(tmp_path / "x.png", seed=1)) == {}


def test_png_conversion_and_raster_stripping_keep_pixels_only(tmp_path):
    from PIL import Image, PngImagePlugin

    src = write_study_dicom(tmp_path / "a.dcm", np.arange(64).reshape(8, 8) * 60, patient=2,
                            study_uid=generate_uid(), seed=4)
    [png] = save_display_png(src, tmp_path / "out" / "a")
    with Image.open(png) as img:
        assert img.size == (8, 8) and img.mode == "L" and not img.text
    info = PngImagePlugin.PngInfo()
    info.add_text("Patient", PATIENTS[3])
    Image.fromarray(np.full((6, 6), 9, np.uint8)).save(tmp_path / "tagged.png", pnginfo=info)
    clean = strip_raster(tmp_path / "tagged.png", tmp_path / "out" / "tagged")
    assert PATIENTS[3].encode() not in clean.read_bytes()
    with Image.open(clean) as img:
        assert np.array_equal(np.asarray(img), np.full((6, 6), 9, np.uint8))


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "rtplan.dcm"])
def test_real_samples_deidentify(dicom_samples, tmp_path, name):
    found = sorted(dicom_samples.rglob(name))
    if not found:
        pytest.skip(f"{name} not in the samples")
    src = found[0]
    before = read_identifiers(src)
    deidentify_file(src, tmp_path / "out.dcm", uid_secret=SECRET)
    raw = (tmp_path / "out.dcm").read_bytes().decode("latin-1")
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "SOPInstanceUID"):
        value = before.get(keyword)
        if value and len(value) > 3:
            assert value not in raw, keyword
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert out.PatientIdentityRemoved == "YES"
