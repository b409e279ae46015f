"""One file -> ScanInfo (metadata, pixel hash, preview), or an InvalidScanError saying why not.

The importer calls :func:`read_scan_info` in worker processes, so it is a plain top-level function
with picklable arguments and result. The format is detected from the content (DICOM with or
without its 128-byte preamble, PNG, JPEG, TIFF), never from the file name. Failures are classified
by ``InvalidScanError.code``:

skipped: ``not-a-scan``, ``empty``, ``not-for-reading`` (a SEG, RT Dose, report, ...: not an image to
label), ``no-pixel-data``, ``too-large``, ``unsupported-syntax``,
``no-transfer-syntax``; failed: ``truncated``, ``corrupt-pixel-data``, ``invalid-header``,
``unreadable``.

Never modifies the file, never logs or stores the patient ID (it is returned raw for the caller to
hash), never reads the patient's name or birth date.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from aldesk.errors import InvalidScanError
from aldesk.imaging import dicom, limits, raster
from aldesk.imaging.display import (
    IDENTITY_8BIT,
    DisplayParams,
    block_mean,
    preview_factor,
    robust_window,
    to_display,
    ybr_to_rgb,
)
from aldesk.imaging.scan import ScanInfo

_HEAD = 512


_GREY = ("MONOCHROME1", "MONOCHROME2")
_ROBUST_SAMPLES = 65_536


def pixel_hash(stored: np.ndarray) -> str:
    """blake2b-128 hex of shape + dtype + bytes: equal decoded arrays hash alike, any encoding.

    stored : the decoded stored pixels, all frames, native byte order (so big-endian files hash
    like little-endian ones).
    """
    arr = np.ascontiguousarray(stored)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{arr.shape}|{arr.dtype.str}|".encode())
    digest.update(arr.data if arr.size else b"")
    return digest.hexdigest()


def _head(path: str) -> tuple[bytes, int]:
    """First bytes and size of the file, mapping OS errors to ``unreadable``/``empty``."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(_HEAD)
    except IsADirectoryError as exc:
        raise InvalidScanError(path, "this is a folder, not a file; import the folder itself to "
                               "scan what it contains", kind="skipped", code="not-a-scan") from exc
    except OSError as exc:
        raise InvalidScanError(path, f"cannot read the file ({exc.strerror or exc}); check that "
                               "it still exists and that you may read it (permissions, "
                               "network drive)", kind="failed", code="unreadable") from exc
    if size == 0 or not head:
        raise InvalidScanError(path, "the file is empty (0 bytes); it was probably cut off while "
                               "copying — copy it again from the source",
                               kind="skipped", code="empty")
    return head, size


def _not_a_scan(path: str, head: bytes) -> InvalidScanError:
    if head.startswith(b"\x1f\x8b"):
        why = "it is gzip-compressed; decompress it (e.g. `gunzip`) and import the result"
    elif head.startswith(b"PK\x03\x04"):
        why = "it is a ZIP archive; extract it and import the extracted folder"
    elif all(32 <= b < 127 or b in b"\t\r\n\f" for b in head[:256]):
        why = "it is a text file"
    else:
        why = "its content matches none of their signatures"
    return InvalidScanError(path, f"not a DICOM, PNG, JPEG or TIFF file: {why} (the file name "
                            "extension is not used to decide)", kind="skipped", code="not-a-scan")


def _sniff(path: str) -> tuple[str, bytes, int]:
    head, size = _head(path)
    # DICM first: a DICOM preamble may legally hold a TIFF header (dual-personality files).
    fmt = "dicom" if head[128:132] == b"DICM" else raster.sniff_raster(head)
    if fmt is None and dicom.looks_like_dicom(head):
        fmt = "dicom"
    if fmt is None:
        raise _not_a_scan(path, head)
    return fmt, head, size


def read_scan_info(path, *, max_pixels: int = 400_000_000, preview_size: int = 128) -> ScanInfo:
    """Read one scan file: metadata, ``pixel_hash`` and a (h, w) / (h, w, 3) uint8 preview.

    path : str or PathLike. max_pixels : refuse files whose header declares more than
    rows * columns * frames * samples values (checked before decoding). preview_size : longest
    side of the preview, aspect kept, from the first frame, downsampled by block means.
    Raises InvalidScanError (``kind``/``code`` as listed in the module docstring); nothing else.
    """
    path = os.fspath(path)
    fmt, head, size = _sniff(path)
    if fmt != "dicom":
        return _raster_info(path, fmt, max_pixels, preview_size)
    with dicom.quiet(), dicom.header_errors(path):
        return _dicom_info(path, head, size, max_pixels, preview_size)


def _dicom_info(path: str, head: bytes, size: int, max_pixels: int,
                preview_size: int) -> ScanInfo:
    headless = head[128:132] != b"DICM"
    ds = _read_bounded(path, head, size, max_pixels)
    hdr = _frames_bounded(path, dicom.pixel_header(path, ds, max_pixels))
    stored, photometric = dicom.decode(path, ds, hdr)
    preview = _dicom_preview(ds, hdr, dicom.first_frame(stored, hdr), photometric, preview_size)
    return ScanInfo(
        format="dicom",
        sop_instance_uid=dicom.text_value(ds, "SOPInstanceUID"),
        study_uid=dicom.text_value(ds, "StudyInstanceUID"),
        series_uid=dicom.text_value(ds, "SeriesInstanceUID"),
        patient_id=dicom.text_value(ds, "PatientID"),
        modality=dicom.text_value(ds, "Modality"),
        body_part=dicom.text_value(ds, "BodyPartExamined"),
        view=dicom.view(ds),
        rows=hdr.rows,
        columns=hdr.columns,
        frames=hdr.frames,
        samples_per_pixel=hdr.samples,
        bits_allocated=hdr.bits_allocated,
        bits_stored=hdr.bits_stored,
        signed=hdr.signed,
        photometric=hdr.photometric,
        pixel_spacing=dicom.pixel_spacing(ds),
        transfer_syntax=hdr.transfer_syntax,
        windows=dicom.window_presets(ds),
        pixel_hash=pixel_hash(stored),
        preview=preview,
        **dicom.series_attributes(ds),
    )


def _read_bounded(path: str, head: bytes, size: int, max_pixels: int):
    """The dataset, after making sure a deflated one cannot inflate past what the pixel limit allows."""
    if head[128:132] == b"DICM" and limits.DEFLATED_SYNTAX in head:
        limits.check_deflated_size(path, max_pixels)
    return dicom.read_dataset(path, headless=head[128:132] != b"DICM", file_size=size)


def _frames_bounded(path: str, hdr: dicom.PixelHeader) -> dicom.PixelHeader:
    if hdr.frames > limits.MAX_FRAMES:
        raise limits.too_many_frames(path, hdr.frames)
    return hdr


def _is_grey(frame: np.ndarray, photometric: str) -> bool:
    return frame.ndim == 2 and photometric != "PALETTE COLOR"


def _modality_sample(ds, frame: np.ndarray) -> np.ndarray:
    """A strided subsample (<= ~65k values) of the frame in modality units, for robust_window."""
    flat = frame.reshape(-1)
    return dicom.to_modality(ds, flat[:: max(1, flat.size // _ROBUST_SAMPLES)])


def _dicom_preview(ds, hdr: dicom.PixelHeader, frame: np.ndarray, photometric: str,
                   preview_size: int) -> np.ndarray:
    """frame (h, w) or (h, w, 3) stored -> preview uint8 (h', w') or (h', w', 3).

    Grey: block-mean the stored values first, then rescale and window the small image (rescale is
    linear, so this equals downsampling modality values, at 1/16 of the cost for 512 -> 128).
    """
    factor = preview_factor(hdr.rows, hdr.columns, preview_size)
    if _is_grey(frame, photometric):
        if dicom.has_modality_lut(ds):
            small = block_mean(dicom.to_modality(ds, frame), factor)
        else:
            small = block_mean(frame, factor)
            slope, intercept = dicom.rescale(ds, 0)
            small *= np.float32(slope)
            small += np.float32(intercept)
        grey = photometric if photometric in _GREY else "MONOCHROME2"
        params = dicom.display_params(ds, hdr, grey, _modality_sample(ds, frame))
        return to_display(small, params)
    if photometric.startswith("YBR") and frame.ndim == 3:  # linear: shrink, then convert
        return ybr_to_rgb(block_mean(frame[..., :3], factor), photometric)
    return _rgb_preview(dicom.rgb8(ds, hdr, frame, photometric), factor)


def _rgb_preview(rgb: np.ndarray, factor: int) -> np.ndarray:
    """(h, w, 3) uint8 -> (h', w', 3) uint8 block mean."""
    if factor <= 1:
        return np.ascontiguousarray(rgb)
    small = block_mean(rgb, factor)
    small += np.float32(0.5)
    return np.clip(small, 0, 255).astype(np.uint8)


def _raster_params(pixels: raster.RasterPixels, first: np.ndarray) -> DisplayParams:
    if not pixels.grey:
        return DisplayParams(photometric="RGB", bits_allocated=8, bits_stored=8)
    if first.dtype == np.uint8:
        window = IDENTITY_8BIT
        lo, hi = 0.0, 255.0
    else:  # 16/32-bit or float grey: window the full range, not an 8-bit cut
        window = robust_window(first)
        info = np.iinfo(first.dtype) if first.dtype.kind in "iu" else None
        lo, hi = (float(info.min), float(info.max)) if info else (float(np.nanmin(first)),
                                                                   float(np.nanmax(first)))
    return DisplayParams(photometric="MONOCHROME2", window=window, bits_allocated=pixels.bits,
                         bits_stored=pixels.bits, signed=pixels.signed, value_range=(lo, hi))


def _raster_info(path: str, fmt: str, max_pixels: int, preview_size: int) -> ScanInfo:
    pixels = raster.load(path, fmt, max_pixels)
    first = pixels.display[0]
    rows, columns = first.shape[:2]
    factor = preview_factor(rows, columns, preview_size)
    params = _raster_params(pixels, first)
    if pixels.grey:
        preview = to_display(block_mean(first, factor), params)
    else:
        preview = _rgb_preview(first, factor)
    return ScanInfo(
        format=fmt, sop_instance_uid=None, study_uid=None, series_uid=None, patient_id=None,
        modality=None, body_part=None, view=None, rows=rows, columns=columns,
        frames=pixels.frames, samples_per_pixel=pixels.samples,
        bits_allocated=pixels.bits, bits_stored=pixels.bits, signed=pixels.signed,
        photometric="MONOCHROME2" if pixels.grey else "RGB", pixel_spacing=None,
        transfer_syntax=None, windows=[], pixel_hash=pixel_hash(pixels.stored), preview=preview,
    )


def read_frames(path, *, max_pixels: int = 400_000_000) -> tuple[np.ndarray, DisplayParams]:
    """All frames for the viewer: (f, h, w) float32 modality values or (f, h, w, 3) uint8 RGB.

    Grey frames keep the full stored range (16-bit stays 16-bit), each frame rescaled with its own
    slope/intercept; the DisplayParams carry the default window and presets. Raises
    InvalidScanError exactly like read_scan_info.
    """
    path = os.fspath(path)
    fmt, head, size = _sniff(path)
    if fmt != "dicom":
        pixels = raster.load(path, fmt, max_pixels)
        params = _raster_params(pixels, pixels.display[0])
        if pixels.grey:
            return np.stack(pixels.display).astype(np.float32), params
        return np.stack(pixels.display), params

    with dicom.quiet(), dicom.header_errors(path):
        return _dicom_frames(path, head, size, max_pixels)


def _dicom_frames(path: str, head: bytes, size: int,
                  max_pixels: int) -> tuple[np.ndarray, DisplayParams]:
    ds = _read_bounded(path, head, size, max_pixels)
    hdr = _frames_bounded(path, dicom.pixel_header(path, ds, max_pixels))
    stored, photometric = dicom.decode(path, ds, hdr)
    if hdr.frames == 1:
        stored = stored[None]
    if _is_grey(stored[0], photometric):
        frames = np.empty(stored.shape, dtype=np.float32)
        for i in range(hdr.frames):
            frames[i] = dicom.to_modality(ds, stored[i], i, out=frames[i])
        grey = photometric if photometric in _GREY else "MONOCHROME2"
        sample = frames[0].reshape(-1)[:: max(1, frames[0].size // _ROBUST_SAMPLES)]
        return frames, dicom.display_params(ds, hdr, grey, sample)
    return dicom.rgb8(ds, hdr, stored, photometric), dicom.display_params(ds, hdr, "RGB", None)
