"""De-identification of single files: the basic profile table, UID remapping, what is left."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.uid import UID, generate_uid

from aldesk.imaging.deid import (
    BASIC_PROFILE,
    IDENTIFYING_KEYWORDS,
    deidentify_file,
    read_identifiers,
    remap_uid,
    save_display_png,
    strip_raster,
)
from tests.app.conftest import write_png
from tests.export.conftest import PATIENTS, identifying_strings, write_study_dicom

SECRET = b"k" * 32


def test_every_profile_keyword_is_a_dicom_attribute():
    unknown = [k for k in BASIC_PROFILE if tag_for_keyword(k) is None]
    assert not unknown
    assert set(BASIC_PROFILE.values()) <= {"X", "Z", "D", "U"}
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "SOPInstanceUID",
                    "InstitutionName", "ReferringPhysicianName", "PatientAddress", "StudyDate"):
        assert keyword in BASIC_PROFILE


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
    for keyword in ("PatientAddress", "OtherPatientIDs", "InstitutionName", "InstitutionAddress", "OperatorsName",
                    "StationName", "DeviceSerialNumber", "ImageComments", "SeriesDate"):
        assert keyword not in out, keyword
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
