"""Edge cases built on the fly: tiny DICOM, PNG, JPEG and TIFF files, each making one point."""

from __future__ import annotations

import io
import os
import tracemalloc
import warnings
import zlib

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate

from aldesk.errors import InvalidScanError
from aldesk.imaging import pixel_hash, read_frames, read_scan_info
from aldesk.imaging import dicom as dicom_module
from tests.imaging.conftest import make_dicom

RAMP = np.arange(64 * 96, dtype=np.uint16).reshape(64, 96) % 4096


def _raises(path, code, kind, match, **kwargs):
    with pytest.raises(InvalidScanError, match=match) as info:
        read_scan_info(path, **kwargs)
    assert (info.value.kind, info.value.code) == (kind, code)
    return info.value


# --- not scans at all ----------------------------------------------------------------------------

def test_zero_byte_file_is_empty(tmp_path):
    (tmp_path / "a.dcm").write_bytes(b"")
    _raises(tmp_path / "a.dcm", "empty", "skipped", r"empty \(0 bytes\)")


def test_text_file_named_dcm_is_not_a_scan(tmp_path):
    (tmp_path / "notes.dcm").write_text("Patient looked fine.\n" * 20)
    _raises(tmp_path / "notes.dcm", "not-a-scan", "skipped", "not a DICOM.*text file")


def test_random_bytes_are_not_a_scan(tmp_path):
    (tmp_path / "x.dcm").write_bytes(np.random.default_rng(0).bytes(4000))
    _raises(tmp_path / "x.dcm", "not-a-scan", "skipped", "matches none of their signatures")


def test_missing_file_is_unreadable(tmp_path):
    _raises(tmp_path / "gone.dcm", "unreadable", "failed", "cannot read the file")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_permission_denied_is_unreadable(tmp_path):
    path = make_dicom(tmp_path / "a.dcm", RAMP)
    path.chmod(0)
    _raises(path, "unreadable", "failed", "permission")


# --- DICOM ----------------------------------------------------------------------------------------

def test_header_over_the_pixel_limit_is_refused_fast_without_allocating(tmp_path):
    path = make_dicom(tmp_path / "huge.dcm", np.zeros((2, 2), np.uint16),
                      Rows=65535, Columns=65535, NumberOfFrames=100)
    tracemalloc.start()
    err = _raises(path, "too-large", "skipped", r"65,535 x 65,535 pixels x 100 frame")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000  # refused from the header: the 800 GB of pixels were never allocated
    assert "raise the pixel limit" in err.reason


def test_pixel_limit_is_a_parameter(tmp_path):
    path = make_dicom(tmp_path / "a.dcm", RAMP)
    _raises(path, "too-large", "skipped", "over the limit of 1,000", max_pixels=1000)
    assert read_scan_info(path, max_pixels=64 * 96).rows == 64


def test_truncated_native_pixel_data(tmp_path):
    path = make_dicom(tmp_path / "a.dcm", RAMP)
    data = path.read_bytes()
    path.write_bytes(data[:-1000])
    _raises(path, "truncated", "failed", "truncated.*copy it again")


def test_file_without_preamble_reads_like_the_full_file(tmp_path):
    full = read_scan_info(make_dicom(tmp_path / "full.dcm", RAMP))
    bare = read_scan_info(make_dicom(tmp_path / "bare.dcm", RAMP, preamble=False))
    assert bare.transfer_syntax == "1.2.840.10008.1.2"  # inferred: implicit VR little endian
    assert bare.pixel_hash == full.pixel_hash == pixel_hash(RAMP)
    np.testing.assert_array_equal(bare.preview, full.preview)


def test_monochrome1_preview_is_the_inverse_of_monochrome2(tmp_path):
    window = {"WindowCenter": 2048, "WindowWidth": 4096}
    m1 = read_scan_info(make_dicom(tmp_path / "m1.dcm", RAMP, photometric="MONOCHROME1", **window))
    m2 = read_scan_info(make_dicom(tmp_path / "m2.dcm", RAMP, **window))
    np.testing.assert_array_equal(m1.preview.astype(int), 255 - m2.preview.astype(int))
    assert m2.preview[0, 0] < 10 and m1.preview[0, 0] > 245


def test_rescale_and_window_from_the_file(tmp_path):
    stored = np.array([[864, 1064], [1164, 1263]], dtype=np.int16)  # HU -160, 40, 140, 239
    path = make_dicom(tmp_path / "ct.dcm", stored, RescaleSlope=1, RescaleIntercept=-1024,
                      WindowCenter=40, WindowWidth=400, Modality="CT")
    np.testing.assert_array_equal(read_scan_info(path).preview, [[0, 128], [192, 255]])


def test_multi_valued_windows_keep_their_names(tmp_path):
    path = make_dicom(tmp_path / "w.dcm", RAMP, WindowCenter=[40, 300], WindowWidth=[400, 1500],
                      WindowCenterWidthExplanation=["SOFT", "BONE"])
    windows = read_scan_info(path).windows
    assert [(w.center, w.width, w.name) for w in windows] == [(40, 400, "SOFT"),
                                                              (300, 1500, "BONE")]


def test_view_and_spacing_fallbacks(tmp_path):
    a = read_scan_info(make_dicom(tmp_path / "a.dcm", RAMP, ViewPosition="PA",
                                  ImageLaterality="L", PixelSpacing=[0.2, 0.3]))
    b = read_scan_info(make_dicom(tmp_path / "b.dcm", RAMP, ImageLaterality="L",
                                  ImagerPixelSpacing=[0.15, 0.15], BodyPartExamined="CHEST"))
    assert (a.view, a.pixel_spacing) == ("PA", (0.2, 0.3))
    assert (b.view, b.pixel_spacing, b.body_part) == ("L", (0.15, 0.15), "CHEST")
    assert b.patient_id == "TEST-123"


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.uint32])
def test_signed_and_unsigned_depths(tmp_path, dtype):
    pixels = (RAMP.astype(np.int64) - 2000).astype(dtype)
    info = read_scan_info(make_dicom(tmp_path / "d.dcm", pixels))
    assert info.bits_allocated == np.dtype(dtype).itemsize * 8
    assert info.signed == (np.dtype(dtype).kind == "i")
    assert info.preview.std() > 10
    assert info.pixel_hash == pixel_hash(pixels)


def test_invalid_header_value_names_the_attribute(tmp_path):
    path = make_dicom(tmp_path / "a.dcm", RAMP, BitsStored=40)
    _raises(path, "invalid-header", "failed", r"Bits Stored \(0028,0101\) is 40")


def _encapsulated(tmp_path, ts: str):
    path = make_dicom(tmp_path / "enc.dcm", RAMP)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = ts
    ds.PixelData = encapsulate([b"\x00\x01" * 64])
    ds["PixelData"].VR = "OB"
    ds.save_as(path)
    return path


def test_video_transfer_syntax_is_unsupported(tmp_path):
    path = _encapsulated(tmp_path, "1.2.840.10008.1.2.4.100")
    _raises(path, "unsupported-syntax", "skipped", r"MPEG2.*convert the file")


def test_missing_decoder_plugin_is_named(samples, monkeypatch):
    real = dicom_module.get_decoder

    class _Unavailable:
        is_available = False

    def fake(uid):
        real(uid)  # still raises for syntaxes without any decoder
        return _Unavailable()

    monkeypatch.setattr(dicom_module, "get_decoder", fake)
    path = samples / "pydicom-test-files/MR_small_jp2klossless.dcm"
    _raises(path, "unsupported-syntax", "skipped", r"JPEG 2000.*install pylibjpeg-openjpeg")


def test_compressed_data_far_too_small_for_the_header(tmp_path):
    path = _encapsulated(tmp_path, "1.2.840.10008.1.2.4.90")
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns = 20000, 20000
    ds.save_as(path)
    _raises(path, "truncated", "failed", "more than any codec compresses")


def test_pydicom_warnings_and_logs_stay_quiet(samples, capfd, caplog):
    noisy = ["pydicom-test-files/badVR.dcm", "pydicom-test-files/J2K_pixelrep_mismatch.dcm",
             "pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm",
             "pydicom-test-files/JPEG2000-embedded-sequence-delimiter.dcm"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for relpath in noisy:
            try:
                read_scan_info(samples / relpath)
            except InvalidScanError:
                pass
    assert caught == []
    assert capfd.readouterr().err == ""
    assert [r for r in caplog.records if r.name.startswith("pydicom")] == []


# --- PNG / JPEG / TIFF --------------------------------------------------------------------------

def _save(image: Image.Image, path, fmt, **kwargs):
    image.save(path, format=fmt, **kwargs)
    return path


def test_png_16_bit_keeps_full_range(tmp_path):
    path = _save(Image.fromarray(RAMP), tmp_path / "a.png", "PNG")
    info = read_scan_info(path)
    assert (info.format, info.bits_allocated, info.samples_per_pixel) == ("png", 16, 1)
    assert (info.rows, info.columns, info.sop_instance_uid, info.transfer_syntax) == (
        64, 96, None, None)
    assert info.pixel_hash == pixel_hash(RAMP)
    assert info.preview.min() <= 5 and info.preview.max() >= 250
    frames, _ = read_frames(path)
    assert frames.shape == (1, 64, 96) and frames.max() == RAMP.max()


def test_png_renamed_txt_is_still_a_png(tmp_path):
    path = _save(Image.fromarray((RAMP // 16).astype(np.uint8)), tmp_path / "scan.txt", "PNG")
    info = read_scan_info(path)
    assert info.format == "png" and info.bits_allocated == 8
    np.testing.assert_array_equal(info.preview, (RAMP // 16).astype(np.uint8))  # 8-bit untouched


def test_tiff_16_bit_and_rgb(tmp_path):
    grey = read_scan_info(_save(Image.fromarray(RAMP), tmp_path / "g.tif", "TIFF"))
    assert (grey.format, grey.bits_allocated) == ("tiff", 16)
    assert grey.pixel_hash == pixel_hash(RAMP)
    rgb_pixels = np.dstack([RAMP % 256, RAMP // 16, 255 - RAMP % 256]).astype(np.uint8)
    rgb = read_scan_info(_save(Image.fromarray(rgb_pixels), tmp_path / "c.tiff", "TIFF"))
    assert (rgb.photometric, rgb.samples_per_pixel, rgb.preview.shape) == ("RGB", 3, (64, 96, 3))


def test_rgb_jpeg(tmp_path):
    pixels = np.zeros((300, 200, 3), np.uint8)
    pixels[..., 0] = 200
    pixels[150:, :, 2] = 255
    info = read_scan_info(_save(Image.fromarray(pixels), tmp_path / "x.bin", "JPEG", quality=95))
    assert (info.format, info.photometric, info.samples_per_pixel) == ("jpeg", "RGB", 3)
    assert info.preview.shape == (100, 66, 3)  # 300x200 by blocks of 3
    assert abs(int(info.preview[10, 10, 0]) - 200) < 6 and info.preview[90, 10, 2] > 240


def test_palette_png_is_shown_in_colour(tmp_path):
    image = Image.fromarray((RAMP // 16).astype(np.uint8)).convert("P")
    info = read_scan_info(_save(image, tmp_path / "p.png", "PNG"))
    assert info.preview.ndim == 3


def test_truncated_png_fails(tmp_path):
    data = (tmp_path / "a.png")
    _save(Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 200), np.uint8)),
          data, "PNG")
    data.write_bytes(data.read_bytes()[:3000])
    err = _raises(data, "truncated", "failed", "truncated")
    assert "copy it again" in err.reason


def test_png_header_declaring_a_bomb_is_refused_fast(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR width, height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(data))
    saved = Image.MAX_IMAGE_PIXELS
    tracemalloc.start()
    _raises(path, "too-large", "skipped", "pixel limit")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000  # refused from the header: 10 gigapixels never allocated
    assert Image.MAX_IMAGE_PIXELS == saved  # Pillow's global guard is restored


def test_runs_in_a_worker_process(tmp_path):
    """The importer maps read_scan_info over a process pool: function and result must pickle."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    path = make_dicom(tmp_path / "a.dcm", RAMP)
    bad = tmp_path / "bad.dcm"
    bad.write_text("not a scan")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        info = pool.submit(read_scan_info, path).result(timeout=60)
        error = pool.submit(read_scan_info, bad).exception(timeout=60)
    assert info.pixel_hash == pixel_hash(RAMP)
    assert isinstance(error, InvalidScanError) and error.code == "not-a-scan"
