"""read_scan_info on the real public DICOM collection in ../shared/data/dicom-samples.

Each file is read once (cached); the whole module takes a few seconds, most of it in the large
JPEG 2000 radiographs.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from aldesk.errors import InvalidScanError
from aldesk.imaging import ScanInfo, read_frames, read_scan_info, to_display
from tests.imaging.conftest import MANIFEST, SAMPLES, SKIP_REASON, manifest_rows

ROWS = manifest_rows()
_NO_DATA = [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON))]

# Files the manifest marks as failing (or not parsed), with the code each must raise.
EXPECTED_ERRORS = {
    "pydicom-test-files/MR_truncated.dcm": ("failed", "truncated"),
    "pydicom-test-files/rtplan_truncated.dcm": ("failed", "truncated"),
    "pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm": ("failed", "truncated"),
    "pydicom-test-files/JPEG-lossy.dcm": ("failed", "corrupt-pixel-data"),
    "pydicom-test-files/JPEG2000-embedded-sequence-delimiter.dcm": ("failed", "corrupt-pixel-data"),
    "pylibjpeg-data/JPEG2000Lossless/966.dcm": ("failed", "corrupt-pixel-data"),
    "pylibjpeg-data/JPEGExtended/RG2_JPLY.dcm": ("failed", "corrupt-pixel-data"),
    "pydicom-test-files/badVR.dcm": ("skipped", "not-for-reading"),  # an RT Dose (with a bad header too)
    "pydicom-test-files/nested_priv_SQ.dcm": ("failed", "invalid-header"),
    "pydicom-test-files/meta_missing_tsyntax.dcm": ("skipped", "no-transfer-syntax"),
    "pydicom-test-files/zipMR.gz": ("skipped", "not-a-scan"),
    # One stray byte before the first tag: not recognisable as a dataset.
    "pydicom-test-files/no_meta.dcm": ("skipped", "not-a-scan"),
}
# Non-image objects (issue 13): listed in the import report with a reason, never imported as scans.
NOT_FOR_READING_MODALITIES = {"SEG", "RTDOSE", "RTSTRUCT", "RTPLAN", "SR", "ECG", "PR", "KO"}
# Bare datasets (no preamble, no file meta) that the manifest's plain pydicom read could not
# decode: the reader infers their (uncompressed) transfer syntax from the parsed encoding.
HEADLESS_DECODED = {
    "DICOMSamples-jl/CT_Implicit_Little_Headless_Retired.dcm",
    "DICOMSamples-jl/OT_Implicit_Little_Headless.dcm",
    "pydicom-data/OT-PAL-8-face.dcm",
}
MESSAGES = {
    "pydicom-test-files/MR_truncated.dcm": r"8,130 are present",
    "pydicom-test-files/badVR.dcm": r"RT Dose Storage \(modality RTDOSE\), a radiotherapy object",
    "pydicom-data/liver.dcm": r"not for reading: this DICOM file is Segmentation Storage \(modality SEG\)",
    "pydicom-test-files/rtdose.dcm": r"not for reading: .*RT Dose Storage.*not imported as a scan",
    "pydicom-test-files/nested_priv_SQ.dcm": r"Bits Allocated \(0028,0100\).*missing",
    "pydicom-test-files/meta_missing_tsyntax.dcm": r"no Transfer Syntax UID \(0002,0010\)",
    "pydicom-test-files/zipMR.gz": r"gzip-compressed; decompress it",
    "pydicom-test-files/reportsi.dcm": r"Basic Text SR Storage \(modality SR\)",
    "pydicom-test-files/rtplan.dcm": r"RT Plan Storage \(modality RTPLAN\)",
    "pydicom-test-files/waveform_ecg.dcm": r"12-lead ECG Waveform Storage",
    "pydicom-test-files/dicomdirtests/DICOMDIR": r"DICOMDIR.*import the folder",
    "pylibjpeg-data/JPEG2000Lossless/966.dcm": r"JPEG 2000 .*could not be decoded",
}


@functools.cache
def _read(relpath: str) -> ScanInfo | InvalidScanError:
    try:
        return read_scan_info(SAMPLES / relpath)
    except InvalidScanError as exc:
        return exc


def _info(relpath: str) -> ScanInfo:
    result = _read(relpath)
    assert isinstance(result, ScanInfo), f"{relpath}: {result}"
    return result


@pytest.mark.parametrize("row", ROWS or _NO_DATA, ids=lambda r: r["path"] if r else "absent")
def test_manifest_row(row):
    """Decodable rows give a usable preview; every other row a specific, expected error."""
    relpath = row["path"]
    result = _read(relpath)
    if row["modality"] in NOT_FOR_READING_MODALITIES and relpath not in EXPECTED_ERRORS:
        assert isinstance(result, InvalidScanError), f"{relpath} ({row['modality']}) was imported as a scan"
        assert (result.kind, result.code) == ("skipped", "not-for-reading"), result.reason
        return
    if row["decode"] == "ok" or relpath in HEADLESS_DECODED:
        assert isinstance(result, ScanInfo), f"{relpath}: {result}"
        preview = result.preview
        assert preview.dtype == np.uint8 and preview.ndim in (2, 3)
        assert max(preview.shape[:2]) <= 128
        assert int(preview.max()) != int(preview.min()), "preview is one flat value"
        assert len(result.pixel_hash) == 32
        return
    assert isinstance(result, InvalidScanError), f"{relpath} was accepted"
    kind, code = EXPECTED_ERRORS.get(relpath, ("skipped", "no-pixel-data"))
    assert (result.kind, result.code) == (kind, code), result.reason


@pytest.mark.parametrize("relpath", sorted(MESSAGES))
def test_user_visible_messages(samples, relpath):
    with pytest.raises(InvalidScanError, match=MESSAGES[relpath]):
        read_scan_info(samples / relpath)


def test_files_outside_the_manifest_are_not_scans(samples):
    listed = {row["path"] for row in ROWS}
    extras = [p for p in samples.rglob("*") if p.is_file()
              and p.relative_to(samples).as_posix() not in listed]
    assert len(extras) >= 10  # README, LICENSE, json, dump, icc, manifest.csv, SOURCE.md
    for path in extras:
        with pytest.raises(InvalidScanError, match="not a DICOM, PNG, JPEG or TIFF") as info:
            read_scan_info(path)
        assert (info.value.kind, info.value.code) == ("skipped", "not-a-scan")


def test_metadata_of_a_known_ct(samples):
    info = _info("pydicom-test-files/CT_small.dcm")
    assert info.format == "dicom"
    assert (info.modality, info.rows, info.columns, info.frames) == ("CT", 128, 128, 1)
    assert (info.bits_allocated, info.bits_stored, info.signed) == (16, 16, True)
    assert info.photometric == "MONOCHROME2" and info.samples_per_pixel == 1
    assert info.transfer_syntax == "1.2.840.10008.1.2.1"
    assert info.sop_instance_uid and info.study_uid and info.series_uid
    assert info.patient_id == "1CT1"
    assert info.pixel_spacing == pytest.approx((0.661468, 0.661468))
    assert info.preview.shape == (128, 128)


def test_no_patient_name_or_birth_date_anywhere(samples):
    info = _info("pydicom-test-files/CT_small.dcm")
    text = repr({k: v for k, v in vars(info).items() if k != "preview"})
    assert "CompressedSamples" not in text  # PatientName of CT_small is CompressedSamples^CT1
    assert "PatientBirthDate" not in text


def test_window_presets_and_views(samples):
    info = _info("pydicom-data/MR-SIEMENS-DICOM-WithOverlays.dcm")
    assert info.windows and all(w.width > 0 for w in info.windows)
    multi = _info("pydicom-test-files/examples_overlay.dcm")
    assert multi.windows is not None
    cr = _info("pydicom-data/RG1_UNCI.dcm")
    assert cr.photometric == "MONOCHROME1" and cr.modality == "CR"


@pytest.mark.parametrize("relpath", [
    "DICOMSamples-jl/CT_Explicit_Little.dcm",
    "pydicom-data/MR2_UNCI.dcm",
    "pydicom-data/RG1_UNCI.dcm",
    "pydicom-data/US1_UNCR.dcm",
    "pydicom-data/OBXXXX1A.dcm",
])
def test_known_images_have_plausible_contrast(samples, relpath):
    preview = _info(relpath).preview.astype(np.float32)
    assert preview.std() > 20, "preview is nearly flat"
    assert 5 < preview.mean() < 250  # ultrasound is mostly dark


def test_preview_keeps_aspect_and_size(samples):
    info = _info("pydicom-data/RG1_UNCI.dcm")  # 1955 x 1841
    h, w = info.preview.shape
    assert max(h, w) <= 128 and abs(h / w - 1955 / 1841) < 0.05
    small = read_scan_info(samples / "pydicom-data/RG1_UNCI.dcm", preview_size=64)
    assert max(small.preview.shape) <= 64


def test_multiframe_preview_is_the_first_frame(samples):
    info = _info("pydicom-data/emri_small.dcm")
    assert info.frames == 10
    frames, params = read_frames(samples / "pydicom-data/emri_small.dcm")
    assert frames.shape == (10, 64, 64) and frames.dtype == np.float32
    np.testing.assert_array_equal(info.preview, to_display(frames[0], params))


@pytest.mark.parametrize("group", [
    [f"dcm_qa_ts/{i}.dcm" for i in range(1, 10)],
    ["pydicom-test-files/MR_small.dcm", "pydicom-test-files/MR_small_RLE.dcm",
     "pydicom-test-files/MR_small_bigendian.dcm", "pydicom-test-files/MR_small_expb.dcm",
     "pydicom-test-files/MR_small_implicit.dcm", "pydicom-test-files/MR_small_jp2klossless.dcm",
     "pydicom-test-files/MR_small_jpeg_ls_lossless.dcm", "pydicom-test-files/MR_small_padded.dcm"],
    ["pydicom-data/emri_small.dcm", "pydicom-data/emri_small_RLE.dcm",
     "pydicom-data/emri_small_big_endian.dcm", "pydicom-data/emri_small_jpeg_2k_lossless.dcm",
     "pydicom-data/emri_small_jpeg_ls_lossless.dcm"],
    ["pydicom-data/US1_UNCR.dcm", "pydicom-data/US1_J2KR.dcm"],
    ["pydicom-data/SC_rgb.dcm", "pydicom-data/SC_rgb_expb.dcm", "pydicom-test-files/SC_rgb_rle.dcm",
     "pydicom-test-files/SC_rgb_jpeg_gdcm.dcm"],
    ["pydicom-data/SC_rgb_16bit.dcm", "pydicom-data/SC_rgb_expb_16bit.dcm",
     "pydicom-test-files/SC_rgb_rle_16bit.dcm"],
    ["pydicom-data/OBXXXX1A.dcm", "pydicom-data/OBXXXX1A_rle.dcm"],
], ids=["dcm_qa_ts", "MR_small", "emri_small", "US1", "SC_rgb", "SC_rgb_16bit", "OBXXXX1A"])
def test_lossless_encodings_hash_alike(samples, group):
    hashes = {relpath: _info(relpath).pixel_hash for relpath in group}
    assert len(set(hashes.values())) == 1, hashes


def test_lossy_encoding_hashes_differ_but_look_alike(samples):
    lossless = _info("pydicom-test-files/MR_small.dcm")
    for relpath in ("pydicom-data/US1_J2KI.dcm",):  # YBR_ICT, irreversible
        lossy, ref = _info(relpath), _info("pydicom-data/US1_UNCR.dcm")
        assert lossy.pixel_hash != ref.pixel_hash
        diff = np.abs(lossy.preview.astype(int) - ref.preview.astype(int)).mean()
        assert diff < 4
    assert lossless.pixel_hash != _info("pydicom-data/MR2_J2KI.dcm").pixel_hash


@pytest.mark.parametrize("relpath", [
    "pydicom-data/SC_ybr_full_uncompressed.dcm",
    "pydicom-test-files/SC_ybr_full_422_uncompressed.dcm",
    "pydicom-test-files/SC_rgb_dcmtk_+eb+cy+n1.dcm",
    "pydicom-test-files/SC_rgb_dcmtk_+eb+cy+np.dcm",
    "pydicom-data/OBXXXX1A_expb.dcm",  # 16-bit palette entries holding 8-bit values
])
def test_colour_conversions_match_the_rgb_original(samples, relpath):
    ref_path = ("pydicom-data/OBXXXX1A.dcm" if "OBXXXX1A" in relpath else "pydicom-data/SC_rgb.dcm")
    got, ref = _info(relpath).preview, _info(ref_path).preview
    assert got.shape == ref.shape and got.ndim == 3
    assert np.abs(got.astype(int) - ref.astype(int)).mean() < 6


def test_monochrome1_is_shown_inverted(samples):
    """RG1 is MONOCHROME1: bone (high values) must look white, i.e. the image is inverted."""
    info = _info("pydicom-data/RG1_UNCI.dcm")
    frames, params = read_frames(samples / "pydicom-data/RG1_UNCI.dcm")
    assert params.photometric == "MONOCHROME1"
    shown = to_display(frames[0], params)
    as_mono2 = to_display(frames[0], params, invert=True)  # user invert cancels MONOCHROME1
    np.testing.assert_array_equal(shown.astype(int), 255 - as_mono2.astype(int))
    assert info.preview.dtype == np.uint8


def test_read_frames_keeps_full_range(samples):
    frames, params = read_frames(samples / "pydicom-data/MR2_UNCI.dcm")  # 12-bit MR
    assert frames.dtype == np.float32 and frames.shape == (1, 1024, 1024)
    assert frames.max() > 255  # not an 8-bit cut
    assert params.bits_stored == 12
    ct, ct_params = read_frames(samples / "DICOMSamples-jl/CT_Explicit_Little.dcm")
    assert ct.min() < -500  # Hounsfield: rescale applied
    assert ct_params.modality == "CT" and len(ct_params.window_presets()) >= 5
    rgb, rgb_params = read_frames(samples / "pydicom-test-files/examples_ybr_color.dcm")
    assert rgb.shape == (30, 240, 320, 3) and rgb.dtype == np.uint8
    assert rgb_params.is_colour


def test_manifest_is_where_the_tests_look():
    if not MANIFEST.is_file():
        pytest.skip(SKIP_REASON)
    assert len(ROWS) == 279
