"""DICOM files -> validated header, decoded pixels and display parameters, or an InvalidScanError.

Every way a real DICOM file goes wrong (no pixel data, cut off, corrupt, missing decoder, nonsense
header values) becomes an :class:`~aldesk.errors.InvalidScanError` with a stable ``code`` and a
message that says what to do, the way pydicom's own ``InvalidDicomError`` does. Header limits are
checked before any pixel is decoded. pydicom's warnings and log records are kept off stderr.

Never reads or returns a patient's name or birth date; never writes to a file.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from aldesk.errors import InvalidScanError
from aldesk.imaging.display import (
    DisplayParams,
    VoiLut,
    rgb_to_uint8,
    robust_window,
    ybr_to_rgb,
)
from aldesk.imaging.scan import WindowPreset

_UNDEFINED = 0xFFFFFFFF
#: Decoded/encoded size ratio no real scan exceeds (deflate tops out at 1032:1, JPEG far lower):
#: beyond it the header promises pixels the file cannot hold, so nothing is decoded.
MAX_COMPRESSION = 4096
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
_DEFER = 1 << 20  # values over 1 MiB are read only when needed, after the size checks
_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"

# Storage SOP classes that are not images a reader labels, even when they carry pixel data (a SEG's
# masks, an RT Dose grid): (SOP class UID or its prefix ending in "."), what it is in plain words.
_NOT_FOR_READING = (
    ("1.2.840.10008.5.1.4.1.1.66", "a segmentation, registration or fiducials object derived from other scans"),
    ("1.2.840.10008.5.1.4.1.1.481.1", None),  # RT Image: a portal image, which is read
    ("1.2.840.10008.5.1.4.1.1.481.", "a radiotherapy object (dose grid, structure set, plan or treatment record)"),
    ("1.2.840.10008.5.1.4.34.", "a radiotherapy object (second-generation RT)"),
    ("1.2.840.10008.5.1.4.1.1.88.59", "a key object selection (a list pointing at other images)"),
    ("1.2.840.10008.5.1.4.1.1.88.", "a structured report (findings and measurements as text)"),
    ("1.2.840.10008.5.1.4.1.1.11.", "a presentation state (how to display another image)"),
    ("1.2.840.10008.5.1.4.1.1.9.", "a waveform (ECG, audio or haemodynamic curves)"),
    ("1.2.840.10008.5.1.4.1.1.104.", "an encapsulated document (PDF, CDA or a 3D model)"),
    ("1.2.840.10008.5.1.4.1.1.67", "a real world value mapping"),
    ("1.2.840.10008.5.1.4.1.1.68.", "a surface scan (mesh or point cloud)"),
    ("1.2.840.10008.5.1.4.1.1.200.", "an acquisition protocol"),
)
# By Modality when the SOP class is missing or unknown.
_NOT_FOR_READING_MODALITIES = {
    "SEG": "a segmentation (regions marked on another scan)", "RTDOSE": "a radiotherapy dose grid",
    "RTSTRUCT": "a radiotherapy structure set (contours)", "RTPLAN": "a radiotherapy plan",
    "RTRECORD": "a radiotherapy treatment record", "SR": "a structured report (findings and measurements as text)",
    "PR": "a presentation state (how to display another image)",
    "KO": "a key object selection (a list pointing at other images)", "REG": "a registration between scans",
    "FID": "spatial fiducials", "RWV": "a real world value mapping", "DOC": "an encapsulated document",
    "ECG": "a waveform (ECG)", "HD": "a waveform (haemodynamic)", "AU": "an audio recording", "PLAN": "a plan",
}
_QUIET_LOGGERS = ("pydicom", "pylibjpeg", "openjpeg", "libjpeg", "rle", "PIL")
_DECODER_HINTS = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg or Pillow (or python-gdcm)",
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.80": "pylibjpeg-libjpeg or pyjpegls (or python-gdcm)",
    "1.2.840.10008.1.2.4.81": "pylibjpeg-libjpeg or pyjpegls (or python-gdcm)",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",
}


class _Swallow(logging.NullHandler):
    """Marks the handler this module adds, so it removes only its own."""


_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: list = []


@contextmanager
def quiet() -> Iterator[list[warnings.WarningMessage]]:
    """Keep pydicom/decoder warnings and log records off stderr; yield the caught warnings.

    pydicom reports many problems by ``warnings.warn`` *and* ``logging``; a folder of 100k files
    would otherwise flood the terminal. The caught warnings are inspected (e.g. "End of file
    reached before delimiter" means the file was cut off). The loggers are silenced once for all
    threads inside (the viewer decodes on two): a thread leaving must not unsilence another still
    reading. The warnings state is global too; the importer calls this in worker processes.
    """
    global _quiet_depth
    with _quiet_lock:   # the viewer decodes in threads: the first one in silences, the last one out restores
        if _quiet_depth == 0:
            _quiet_saved[:] = []
            for name in _QUIET_LOGGERS:
                logger = logging.getLogger(name)
                handler = _Swallow()
                _quiet_saved.append((logger, logger.propagate, handler))
                logger.addHandler(handler)
                logger.propagate = False
        _quiet_depth += 1
    try:
        with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
            warnings.simplefilter("always")
            yield caught
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                for logger, propagate, handler in _quiet_saved:
                    logger.removeHandler(handler)
                    logger.propagate = propagate


@contextmanager
def header_errors(path: str) -> Iterator[None]:
    """Turn a failure inside pydicom's lazy element conversion into ``invalid-header``.

    pydicom parses a value only when it is first accessed, so a damaged element (an unknown VR, a
    number that is not a number) raises wherever it is touched, with any exception type. The
    original message names the tag.
    """
    try:
        yield
    except InvalidScanError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom value conversion raises many types
        raise _fail(path, "invalid-header", f"the DICOM header holds a value that cannot be read "
                    f"({type(exc).__name__}: {_short(exc)}); the file is damaged — fix the "
                    "element or export the image again") from exc


@dataclass(frozen=True)
class PixelHeader:
    """The Image Pixel module of one file, validated; enough to size and decode the pixels."""

    rows: int
    columns: int
    frames: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    transfer_syntax: str  # UID, inferred from the encoding for files without file meta
    keyword: str  # which pixel element: PixelData, FloatPixelData or DoubleFloatPixelData

    @property
    def n_values(self) -> int:
        return self.rows * self.columns * self.frames * self.samples


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(path: str, code: str, reason: str) -> InvalidScanError:
    return InvalidScanError(path, reason, kind="failed", code=code)


def _skip(path: str, code: str, reason: str) -> InvalidScanError:
    return InvalidScanError(path, reason, kind="skipped", code=code)


def looks_like_dicom(head: bytes) -> bool:
    """True for a Part 10 file (``DICM`` at 128) or a bare dataset starting with a plausible tag.

    Only then is ``dcmread(force=True)`` allowed: a text or random file must never be read as DICOM.
    head : the first bytes of the file (>= 132 when the file is that long).
    """
    if head[128:132] == b"DICM" or head[:4] == b"DICM":
        return True
    if len(head) < 8:
        return False
    for order in ("little", "big"):
        group = int.from_bytes(head[0:2], order)
        element = int.from_bytes(head[2:4], order)
        if group not in (0x0002, 0x0008) or element > 0x3FFF:
            continue
        vr = head[4:6]
        if vr.isalpha() and vr.isupper():  # explicit VR: two upper-case letters
            return True
        length = int.from_bytes(head[4:8], order)
        if order == "little" and (length == _UNDEFINED or length < 1 << 16):  # implicit VR
            return True
    return False


def read_dataset(path: str, *, headless: bool, file_size: int) -> Dataset:
    """``dcmread`` with its failures mapped to InvalidScanError; checks for a cut-off dataset.

    Large values (> 1 MiB, i.e. pixel data) are deferred so that a file over the pixel limit is
    refused from its header without reading its pixels.
    """
    with quiet() as caught:
        try:
            ds = pydicom.dcmread(path, defer_size=_DEFER, force=headless)
        except OSError as exc:
            if exc.errno is not None:
                raise _fail(path, "unreadable", f"cannot read the file ({exc.strerror}); check "
                            "that it still exists and that you may read it") from exc
            raise _fail(path, "invalid-header", f"the DICOM dataset cannot be parsed "
                        f"({_short(exc)}); the file is damaged — export it again") from exc
        except EOFError as exc:
            raise _fail(path, "truncated", "the DICOM file ends in the middle of its header "
                        f"({_short(exc)}); it was cut off — copy it again from the source") from exc
        except Exception as exc:  # noqa: BLE001 - pydicom's parser raises many types; keep message
            raise _fail(path, "invalid-header", f"the DICOM dataset cannot be parsed "
                        f"({type(exc).__name__}: {_short(exc)}); the file is damaged or not "
                        "DICOM — export it again from the source system") from exc
    for w in caught:
        if "End of file reached" in str(w.message):
            raise _fail(path, "truncated", "the DICOM file ends before its last element is "
                        "complete; it was cut off — copy it again from the source")
    _check_not_cut_off(path, ds, file_size)
    if headless and len(ds) == 0:
        raise _skip(path, "not-a-scan", "the file starts like a DICOM dataset but holds no "
                    "readable DICOM elements; it is not a scan")
    return ds


def _check_not_cut_off(path: str, ds: Dataset, file_size: int) -> None:
    """A top-level element whose declared length runs past the end of the file means truncation.

    pydicom reads a short last element silently; this catches it cheaply from the raw elements.
    """
    deflated = _file_ts(ds) == DeflatedExplicitVRLittleEndian
    for tag in ds.keys():
        elem = ds.get_item(tag, keep_deferred=True)
        if not isinstance(elem, RawDataElement) or elem.length == _UNDEFINED:
            continue
        short = (elem.value is not None and len(elem.value) < elem.length) or (
            elem.value is None and not deflated and elem.value_tell + elem.length > file_size
        )
        if short:
            have = (len(elem.value) if elem.value is not None
                    else max(0, file_size - elem.value_tell))
            what = "pixel data" if elem.tag in _PIXEL_TAGS else f"element {elem.tag}"
            raise _fail(path, "truncated", f"the file is truncated: {what} declares "
                        f"{elem.length:,} bytes but only {have:,} are present; it was cut off "
                        "— copy it again from the source")


def _file_ts(ds: Dataset) -> str | None:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    return str(ts).strip() or None if ts is not None else None


def _has_meta(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    return meta is not None and len(meta) > 0


def text_value(ds: Dataset, keyword: str) -> str | None:
    """An optional string attribute; a malformed optional value counts as absent."""
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001 - pydicom value conversion; optional field -> absent
        return None
    if value is None:
        return None
    if isinstance(value, pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


def _int(path: str, ds: Dataset, keyword: str, default: int | None = None) -> int:
    """A required integer attribute of the Image Pixel module, or invalid-header naming it."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    label = f"{pydicom.datadict.dictionary_description(tag)} {pydicom.tag.Tag(tag)}"
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            if default is not None:
                return default
            raise _fail(path, "invalid-header", f"{label} is missing, so the pixel data cannot be "
                        "interpreted; the header is incomplete — export the image again")
        if isinstance(value, (list, pydicom.multival.MultiValue)):
            value = value[0]
        number = int(value) if not isinstance(value, str) else int(value.strip())
    except InvalidScanError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom IS/US conversion of a damaged value
        raise _fail(path, "invalid-header", f"{label} has an invalid value ({_short(exc)}); "
                    "fix the value (e.g. with dcmodify) or export the image again") from exc
    return number


def _sop_description(ds: Dataset) -> str:
    sop = text_value(ds, "SOPClassUID")
    meta = getattr(ds, "file_meta", None)
    if sop is None and meta is not None:
        sop = text_value(meta, "MediaStorageSOPClassUID")
    name = UID(sop).name if sop else "an object of unknown SOP class"
    modality = text_value(ds, "Modality")
    return f"{name} (modality {modality})" if modality else name


def not_for_reading(ds: Dataset) -> str | None:
    """What a non-image object is, in plain words (a SEG, RT Dose, SR, PR, KO, ...), or None for an image."""
    sop = text_value(ds, "SOPClassUID")
    meta = getattr(ds, "file_meta", None)
    if sop is None and meta is not None:
        sop = text_value(meta, "MediaStorageSOPClassUID")
    if sop:
        for prefix, what in _NOT_FOR_READING:
            if sop == prefix or (prefix.endswith(".") and sop.startswith(prefix)) or sop.startswith(prefix + "."):
                return what
    return _NOT_FOR_READING_MODALITIES.get((text_value(ds, "Modality") or "").upper())


def pixel_header(path: str, ds: Dataset, max_pixels: int) -> PixelHeader:
    """Validate what the pixels need, cheapest checks first, all before decoding.

    Order: an image at all (not a SEG, RT Dose, report, ...) -> pixel data present -> transfer
    syntax known -> header values sane -> pixel limit -> decoder installed -> enough bytes. Raises
    InvalidScanError with the matching code.
    """
    what = not_for_reading(ds)
    if what is not None:
        raise _skip(path, "not-for-reading", f"not for reading: this DICOM file is {_sop_description(ds)}, "
                    f"{what}, not an image to label; it is listed here and not imported as a scan")
    keyword = next((k for k in _PIXEL_KEYWORDS if k in ds), None)
    if keyword is None:
        meta = getattr(ds, "file_meta", None)
        media = text_value(meta, "MediaStorageSOPClassUID") if meta is not None else None
        if media == _MEDIA_DIRECTORY or "DirectoryRecordSequence" in ds:
            raise _skip(path, "no-pixel-data", "this is a DICOMDIR (the index of a DICOM folder) "
                        "and holds no image; import the folder it indexes instead")
        raise _skip(path, "no-pixel-data", f"no pixel data: this DICOM file is "
                    f"{_sop_description(ds)}, not an image, so there is nothing to label")

    ts = _file_ts(ds)
    raw = ds.get_item(keyword, keep_deferred=True)
    if isinstance(raw, RawDataElement):
        undefined, length = raw.length == _UNDEFINED, raw.length
    else:
        undefined = raw.is_undefined_length
        length = len(raw.value) if isinstance(raw.value, (bytes, bytearray)) else 0
    if ts is None:
        if _has_meta(ds) or undefined:
            raise _skip(path, "no-transfer-syntax", "the file has no Transfer Syntax UID "
                        "(0002,0010) in its file meta information, so its pixel data cannot be "
                        "interpreted; rewrite the file with one (e.g. dcmtk `dcmconv +te`, or set "
                        "ds.file_meta.TransferSyntaxUID in pydicom and save)")
        # A bare dataset (no file meta) can only be uncompressed: its encoding is the one pydicom
        # detected while parsing it.
        implicit, little = ds.original_encoding
        ts = (ImplicitVRLittleEndian if implicit else
              ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ts

    missing = [f"{pydicom.datadict.dictionary_description(k)} "
               f"{pydicom.tag.Tag(pydicom.datadict.tag_for_keyword(k))}"
               for k in ("Rows", "Columns", "BitsAllocated") if ds.get(k) in (None, "")]
    if missing:
        raise _fail(path, "invalid-header", f"the pixel data cannot be interpreted because "
                    f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing from "
                    "the header; the file is incomplete — export the image again")
    rows = _int(path, ds, "Rows")
    columns = _int(path, ds, "Columns")
    frames = _int(path, ds, "NumberOfFrames", default=1)
    samples = _int(path, ds, "SamplesPerPixel", default=1)
    bits_allocated = _int(path, ds, "BitsAllocated")
    bits_stored = _int(path, ds, "BitsStored", default=bits_allocated)
    signed = _int(path, ds, "PixelRepresentation", default=0) == 1
    photometric = text_value(ds, "PhotometricInterpretation")
    for label, value, ok in (
        ("Rows (0028,0010)", rows, rows > 0),
        ("Columns (0028,0011)", columns, columns > 0),
        ("Number of Frames (0028,0008)", frames, frames > 0),
        ("Samples per Pixel (0028,0002)", samples, samples in (1, 3, 4)),
        ("Bits Allocated (0028,0100)", bits_allocated, bits_allocated in (1, 8, 16, 32, 64)),
        ("Bits Stored (0028,0101)", bits_stored, 0 < bits_stored <= max(bits_allocated, 1)),
    ):
        if not ok:
            raise _fail(path, "invalid-header", f"{label} is {value}, which is impossible for an "
                        "image; fix the header (e.g. with dcmodify) or export the image again")
    # Old ACR-NEMA style files omit attributes the decoder insists on; their meaning is implied.
    if photometric is None:
        photometric = "MONOCHROME2" if samples == 1 else "RGB"
        ds.PhotometricInterpretation = photometric
    for keyword, value in (("SamplesPerPixel", samples), ("BitsStored", bits_stored),
                           ("PixelRepresentation", int(signed))):
        if keyword not in ds:
            setattr(ds, keyword, value)

    hdr = PixelHeader(rows, columns, frames, samples, bits_allocated, bits_stored, signed,
                      photometric.upper(), str(ts), keyword)
    if hdr.n_values > max_pixels:
        raise _skip(path, "too-large", f"the image declares {rows:,} x {columns:,} pixels x "
                    f"{frames:,} frame(s) x {samples} sample(s) = {hdr.n_values:,} values, over "
                    f"the limit of {max_pixels:,}; raise the pixel limit in the import settings "
                    "to import it")

    uid = UID(hdr.transfer_syntax)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError as exc:
        name = uid.name if uid.is_transfer_syntax else "an unknown transfer syntax"
        raise _skip(path, "unsupported-syntax", f"the pixel data is encoded as {name} "
                    f"({uid}), which no installed decoder (pydicom, pylibjpeg, python-gdcm) can "
                    "read; convert the file to an uncompressed transfer syntax first (e.g. "
                    "`gdcmconv --raw` or dcmtk `dcmdjpeg`)") from exc
    if not decoder.is_available:
        hint = _DECODER_HINTS.get(str(uid), "python-gdcm")
        raise _skip(path, "unsupported-syntax", f"the pixel data is encoded as {uid.name} "
                    f"({uid}) and no decoder for it is installed; install {hint}")

    if uid.is_encapsulated:
        encoded = len(raw.value) if isinstance(raw.value, (bytes, bytearray)) else length
        decoded = hdr.n_values * max(1, bits_allocated // 8)
        if decoded > MAX_COMPRESSION * encoded + (1 << 20):
            raise _fail(path, "truncated", f"the header declares {decoded:,} bytes of pixels but "
                        f"the compressed pixel data holds only {encoded:,} bytes, more than any "
                        f"codec compresses (> {MAX_COMPRESSION}:1); the file is truncated or its "
                        "header damaged — copy or export it again")
    if not undefined and not uid.is_encapsulated and keyword == "PixelData":
        per_pixel = 2 if hdr.photometric == "YBR_FULL_422" else samples  # 4:2:2 is subsampled
        bits = rows * columns * frames * per_pixel * bits_allocated
        need = (bits + 7) // 8
        have = length
        if have < need:
            raise _fail(path, "truncated", f"the pixel data is truncated: {have:,} of {need:,} "
                        "bytes present; the file was cut off — copy it again from the source")
    return hdr


_J2K_SYNTAXES = ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201",
                 "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203")
_JPEG_SYNTAXES = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                  "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81")


def _j2k_size(frame: bytes) -> tuple[int, int, int] | None:
    """(height, width, components) from a JPEG 2000 SIZ marker (raw codestream or JP2 boxes)."""
    start = frame.find(b"\xff\x4f\xff\x51", 0, 4096)
    if start < 0 or len(frame) < start + 42:
        return None
    siz = frame[start + 4:]
    xsiz, ysiz, xo, yo = (int.from_bytes(siz[i:i + 4], "big") for i in (4, 8, 12, 16))
    csiz = int.from_bytes(siz[36:38], "big")
    return max(0, ysiz - yo), max(0, xsiz - xo), csiz


def _jpeg_size(frame: bytes) -> tuple[int, int, int] | None:
    """(height, width, components) from a JPEG / JPEG-LS SOF marker."""
    from pydicom.pixels.utils import _get_jpg_parameters  # private: guarded, optional check

    info = _get_jpg_parameters(frame)
    if not info:
        return None
    return info["height"], info["width"], info["components"]


def check_codestreams(path: str, ds: Dataset, hdr: PixelHeader) -> None:
    """Refuse compressed frames whose own header declares more pixels than the DICOM header.

    The decoders trust the codestream: a damaged JPEG 2000 SIZ marker can make openjpeg allocate
    gigabytes and spend seconds before pydicom notices the size mismatch. Parsing each frame's
    SIZ/SOF marker first costs microseconds.
    """
    ts = hdr.transfer_syntax
    if ts in _J2K_SYNTAXES:
        size_of = _j2k_size
    elif ts in _JPEG_SYNTAXES:
        size_of = _jpeg_size
    else:
        return
    limit = hdr.rows * hdr.columns * hdr.samples
    from pydicom.encaps import generate_frames

    try:
        frames = generate_frames(ds.PixelData, number_of_frames=hdr.frames)
        for index, frame in zip(range(hdr.frames), frames):
            size = size_of(bytes(frame[:65536]))
            if size is not None and size[0] * size[1] * max(1, size[2]) > limit:
                raise _fail(path, "corrupt-pixel-data", f"frame {index + 1}'s compressed data "
                            f"declares {size[0]:,} x {size[1]:,} pixels x {size[2]} "
                            f"component(s) but the DICOM header says {hdr.rows:,} x "
                            f"{hdr.columns:,} x {hdr.samples}; the compressed data is corrupt — "
                            "export the image again from the source system")
    except InvalidScanError:
        raise
    except Exception:  # noqa: BLE001 - unparseable framing: the decoder will report it precisely
        return


def decode(path: str, ds: Dataset, hdr: PixelHeader) -> tuple[np.ndarray, str]:
    """All frames as stored, decoded but not colour-converted (hashing needs every frame; the
    YBR -> RGB conversion is left to display code, which converts only what it shows).

    Returns ``(stored, photometric)``: stored is (h, w), (h, w, 3), (f, h, w) or (f, h, w, 3) in the
    stored dtype, native byte order, C-contiguous; photometric is its colour space after decoding
    (e.g. RGB for JPEG 2000 YBR_ICT/RCT, whose decoder applies the transform itself).
    """
    decoder = get_decoder(UID(hdr.transfer_syntax))
    check_codestreams(path, ds, hdr)
    with quiet():
        try:
            arr, meta = decoder.as_array(ds, raw=True)
        except MemoryError as exc:
            raise _skip(path, "too-large", "not enough memory to decode the pixel data; lower "
                        "the number of import workers or the pixel limit") from exc
        except BaseException as exc:  # noqa: BLE001 - third-party decoders raise anything
            # Rust decoders (pylibjpeg-rle via pyo3) panic with PanicException, a BaseException.
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            msg = _short(exc)
            if "less than expected" in msg or "too short" in msg or "truncat" in msg.lower():
                raise _fail(path, "truncated", f"the pixel data is truncated ({msg}); the file "
                            "was cut off — copy it again from the source") from exc
            if UID(hdr.transfer_syntax).is_encapsulated:
                raise _fail(path, "corrupt-pixel-data", f"the {UID(hdr.transfer_syntax).name} "
                            f"pixel data could not be decoded: {msg}. The compressed data is "
                            "corrupt (or uses a feature only python-gdcm supports); export the "
                            "image again from the source system") from exc
            raise _fail(path, "invalid-header", f"the pixel data does not match the header: "
                        f"{msg}; fix the header or export the image again") from exc
    photometric = str(meta.get("photometric_interpretation", hdr.photometric)).upper()
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return np.ascontiguousarray(arr), photometric


def first_frame(stored: np.ndarray, hdr: PixelHeader) -> np.ndarray:
    """stored -> (h, w) or (h, w, 3), the first frame."""
    return stored[0] if hdr.frames > 1 else stored


def _frame_group(ds: Dataset, index: int, sequence: str) -> Dataset | None:
    """Item ``sequence`` of frame ``index`` in an enhanced multi-frame object, else shared."""
    for container, i in (("PerFrameFunctionalGroupsSequence", index),
                         ("SharedFunctionalGroupsSequence", 0)):
        try:
            groups = ds.get(container)
            if groups is not None and len(groups) > i and sequence in groups[i]:
                items = groups[i][sequence]
                if len(items):
                    return items[0]
        except Exception:  # noqa: BLE001 - optional functional groups; damaged -> absent
            continue
    return None


def rescale(ds: Dataset, index: int = 0) -> tuple[float, float]:
    """(slope, intercept) of frame ``index``: top level, else the enhanced functional groups."""
    item = ds if "RescaleSlope" in ds or "RescaleIntercept" in ds else \
        _frame_group(ds, index, "PixelValueTransformationSequence")
    if item is None:
        return 1.0, 0.0
    try:
        slope = float(item.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(item.get("RescaleIntercept", 0.0) or 0.0)
    except (TypeError, ValueError):
        return 1.0, 0.0
    if not np.isfinite(slope) or not np.isfinite(intercept) or slope == 0:
        return 1.0, 0.0
    return slope, intercept


def has_modality_lut(ds: Dataset) -> bool:
    """A usable Modality LUT Sequence (descriptor and data present); an empty one is ignored."""
    try:
        item = ds.ModalityLUTSequence[0]
        return len(item.LUTDescriptor) == 3 and len(item.LUTData) > 0
    except (AttributeError, IndexError, KeyError, TypeError):
        return False


def to_modality(ds: Dataset, stored: np.ndarray, index: int = 0,
                out: np.ndarray | None = None) -> np.ndarray:
    """Frame ``index`` stored values (h, w) -> modality values (h, w) float32.

    A Modality LUT Sequence (rare, non-linear) goes through pydicom's helper; the usual
    slope/intercept is one in-place multiply-add.
    """
    if has_modality_lut(ds):
        return np.asarray(apply_modality_lut(stored, ds), dtype=np.float32)
    slope, intercept = rescale(ds, index)
    out = np.multiply(stored, np.float32(slope), out=out, dtype=np.float32, casting="unsafe")
    if intercept:
        out += np.float32(intercept)
    return out


def _floats(value) -> list[float]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return [float(v) for v in value]
    return [float(value)]


def window_presets(ds: Dataset) -> list[WindowPreset]:
    """The file's windows (WindowCenter/Width, multi-valued, named by their Explanation)."""
    item = ds if "WindowCenter" in ds else _frame_group(ds, 0, "FrameVOILUTSequence")
    if item is None:
        return []
    try:
        centers = _floats(item.get("WindowCenter"))
        widths = _floats(item.get("WindowWidth"))
    except (TypeError, ValueError):
        return []
    names = (text_value(item, "WindowCenterWidthExplanation") or "").split("\\")
    presets = []
    for i, (c, w) in enumerate(zip(centers, widths)):
        if np.isfinite(c) and np.isfinite(w) and w > 0:
            presets.append(WindowPreset(c, w, names[i].strip() if i < len(names) else ""))
    return presets


def _voi_lut(ds: Dataset) -> VoiLut | None:
    """The first VOI LUT Sequence item, its output stretched to 0..1 by its own range."""
    try:
        item = ds.VOILUTSequence[0]
        n, first, _bits = (int(v) for v in item.LUTDescriptor)
        data = item.LUTData
        table = np.asarray(data if not isinstance(data, bytes) else
                           np.frombuffer(data, "<u2"), dtype=np.float32)
    except (AttributeError, IndexError, TypeError, ValueError, KeyError):
        return None
    n = n or 65536
    if table.size == 0:
        return None
    table = table[:n]
    lo, hi = float(table.min()), float(table.max())
    table = (table - lo) / (hi - lo) if hi > lo else np.zeros_like(table)
    return VoiLut(first_mapped=first, table=table.astype(np.float32))


def _window_fits(window: WindowPreset, sample: np.ndarray) -> bool:
    """False when the file's window lies wholly beside the data (every value below its lower edge
    or above its upper edge), which would show a blank image: seen in files whose pixels were
    rescaled after the window was written. The window then stays a preset, not the default."""
    if sample.size == 0:
        return True
    lo = window.center - 0.5 - (window.width - 1) / 2
    hi = window.center - 0.5 + (window.width - 1) / 2
    return bool(np.nanmax(sample) > lo and np.nanmin(sample) <= hi)


def display_params(ds: Dataset, hdr: PixelHeader, photometric: str,
                   sample: np.ndarray | None) -> DisplayParams:
    """DisplayParams for this file; ``sample`` (modality values of the first frame, any shape)
    gives the robust window when the file has none. photometric: the decoded colour space."""
    presets = window_presets(ds)
    slope, intercept = rescale(ds, 0)
    voi = _voi_lut(ds) if "VOILUTSequence" in ds else None
    grey = photometric in ("MONOCHROME1", "MONOCHROME2")
    if presets and (sample is None or _window_fits(presets[0], sample)):
        window = presets[0]
    elif grey and sample is not None:
        window = robust_window(sample)
    else:
        window = WindowPreset(128.0, 256.0, "Full 8-bit range")
    lo_stored = -(1 << (hdr.bits_stored - 1)) if hdr.signed else 0
    hi_stored = (1 << (hdr.bits_stored - 1)) - 1 if hdr.signed else (1 << hdr.bits_stored) - 1
    ends = sorted((lo_stored * slope + intercept, hi_stored * slope + intercept))
    return DisplayParams(
        photometric=photometric if grey else "RGB",
        slope=slope, intercept=intercept, window=window, presets=tuple(presets),
        bits_allocated=hdr.bits_allocated, bits_stored=hdr.bits_stored, signed=hdr.signed,
        modality=text_value(ds, "Modality"),
        voi_function=(text_value(ds, "VOILUTFunction") or "LINEAR").upper(),
        voi_lut=voi, value_range=(float(ends[0]), float(ends[1])),
    )


def _palette_table(ds: Dataset, hdr: PixelHeader) -> np.ndarray | None:
    """PALETTE COLOR lookup for every possible stored index: (2**bits_stored, 3) uint8.

    Built once with pydicom's helper (which handles segmented LUTs and first-mapped offsets), then
    applied with fancy indexing to all frames. Tables declared 16-bit whose entries never exceed 255
    (a common writer bug) are taken as 8-bit instead of being shifted to black.
    """
    if hdr.signed or hdr.bits_stored > 16:
        return None
    index = np.arange(1 << hdr.bits_stored, dtype=np.uint16 if hdr.bits_stored > 8 else np.uint8)
    table = np.asarray(apply_color_lut(index, ds))
    if table.dtype != np.uint8:
        table = table >> 8 if table.max() > 255 else table
    return table.astype(np.uint8)


def rgb8(ds: Dataset, hdr: PixelHeader, stored: np.ndarray, photometric: str) -> np.ndarray:
    """Colour pixels -> uint8 RGB. stored : (..., 3) RGB samples or (...) palette indices."""
    if photometric == "PALETTE COLOR":
        try:
            table = _palette_table(ds, hdr)
            if table is not None:
                return table[stored]
            rgb = np.asarray(apply_color_lut(stored, ds))
        except Exception as exc:  # noqa: BLE001 - pydicom's LUT parsing of a damaged table
            raise _fail(str(ds.filename), "invalid-header", "the Palette Color Lookup Table "
                        f"cannot be used ({_short(exc)}); the header is damaged — export the "
                        "image again") from exc
        return rgb_to_uint8(rgb, rgb.dtype.itemsize * 8)
    if stored.shape[-1] > 3:  # retired ARGB/CMYK-like layouts: keep three samples
        stored = stored[..., :3]
    if photometric.startswith("YBR"):
        if stored.ndim == 4:  # frame by frame: bounded float32 temporaries
            return np.stack([ybr_to_rgb(frame, photometric) for frame in stored])
        return ybr_to_rgb(stored, photometric)
    return rgb_to_uint8(stored, hdr.bits_stored)


def pixel_spacing(ds: Dataset) -> tuple[float, float] | None:
    """(row, column) spacing in mm: PixelSpacing, else ImagerPixelSpacing, else enhanced groups."""
    candidates = [ds.get("PixelSpacing") if "PixelSpacing" in ds else None,
                  ds.get("ImagerPixelSpacing") if "ImagerPixelSpacing" in ds else None]
    measures = _frame_group(ds, 0, "PixelMeasuresSequence")
    if measures is not None:
        candidates.append(measures.get("PixelSpacing"))
    for value in candidates:
        try:
            pair = _floats(value)
        except (TypeError, ValueError):
            continue
        if len(pair) == 2 and all(np.isfinite(v) and v > 0 for v in pair):
            return (pair[0], pair[1])
    return None


def view(ds: Dataset) -> str | None:
    """Projection or side: ViewPosition, else ImageLaterality, Laterality, FrameLaterality."""
    for keyword in ("ViewPosition", "ImageLaterality", "Laterality"):
        value = text_value(ds, keyword)
        if value:
            return value
    frame = _frame_group(ds, 0, "FrameAnatomySequence")
    return text_value(frame, "FrameLaterality") if frame is not None else None


def _optional_int(ds: Dataset, keyword: str) -> int | None:
    value = text_value(ds, keyword)
    if value is None:
        return None
    try:
        return int(float(value.split("\\")[0]))
    except ValueError:
        return None


def _optional_floats(ds: Dataset, keyword: str, n: int, group: Dataset | None = None) -> tuple | None:
    for source in (ds, group):
        if source is None or keyword not in source:
            continue
        try:
            values = _floats(source.get(keyword))
        except (TypeError, ValueError):
            continue
        if len(values) == n and all(np.isfinite(v) for v in values):
            return tuple(values)
    return None


def series_attributes(ds: Dataset) -> dict:
    """Where an image sits in its series, as ScanInfo fields (absent or malformed values -> None)."""
    position = _frame_group(ds, 0, "PlanePositionSequence")
    orientation = _frame_group(ds, 0, "PlaneOrientationSequence")
    image_type = text_value(ds, "ImageType")
    parts = image_type.split("\\") if image_type else []
    return {
        "image_position": _optional_floats(ds, "ImagePositionPatient", 3, position),
        "image_orientation": _optional_floats(ds, "ImageOrientationPatient", 6, orientation),
        "instance_number": _optional_int(ds, "InstanceNumber"),
        "echo_number": _optional_int(ds, "EchoNumbers"),
        "temporal_position": _optional_int(ds, "TemporalPositionIdentifier"),
        "acquisition_number": _optional_int(ds, "AcquisitionNumber"),
        "image_type": "\\".join(parts[2:]) or None,
        "series_number": _optional_int(ds, "SeriesNumber"),
        "series_description": text_value(ds, "SeriesDescription"),
    }
