"""PNG, JPEG and TIFF scans (exported radiographs, dataset images) read with Pillow.

Recognised by their magic bytes, never by extension. 16-bit grey keeps its full range (Pillow mode
``I;16``); palette, CMYK and alpha images become RGB for display, while the hash covers the pixels
exactly as stored. The pixel limit is checked from the header, before decoding, and Pillow's own
decompression-bomb guard is set to the same limit for the duration of the call.

Never writes to a file.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageSequence

from aldesk.errors import InvalidScanError
from aldesk.imaging.dicom import MAX_COMPRESSION
from aldesk.imaging.limits import MAX_FRAMES, DecodeBudget, tiff_pages, too_many_frames

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
)
_PIL_FORMATS = {"png": ["PNG"], "jpeg": ["JPEG", "MPO"], "tiff": ["TIFF"]}
_GREY16 = ("I;16", "I;16B", "I;16L", "I;16N")


def sniff_raster(head: bytes) -> str | None:
    """'png' | 'jpeg' | 'tiff' from the first bytes of a file, else None."""
    for magic, fmt in _SIGNATURES:
        if head.startswith(magic):
            return fmt
    return None


@dataclass
class RasterPixels:
    """Decoded frames of one raster file.

    stored : (h, w[, c]) for one frame or (f, h, w[, c]) for several, exactly as Pillow decodes them
        (hash input). display : list of f frames, each (h, w) numeric grey or (h, w, 3) uint8 RGB.
    """

    stored: np.ndarray
    display: list[np.ndarray]
    mode: str
    grey: bool
    bits: int
    signed: bool
    samples: int

    @property
    def frames(self) -> int:
        return len(self.display)


@contextmanager
def _pillow_limit(max_pixels: int) -> Iterator[None]:
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max(1, int(max_pixels))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _display_frame(frame: Image.Image) -> tuple[np.ndarray, bool]:
    """One Pillow frame -> ((h, w) grey numeric | (h, w, 3) uint8 RGB, is_grey)."""
    mode = frame.mode
    if mode in _GREY16 or mode in ("I", "F", "L"):
        return np.asarray(frame), True
    if mode in ("1", "LA", "La", "I;16S"):
        return np.asarray(frame.convert("L")), True
    if mode != "RGB":
        frame = frame.convert("RGB")
    return np.asarray(frame), False


def _count_frames(img: Image.Image, path: str) -> int:
    """Pages of a multi-page image, counted only up to MAX_FRAMES: Pillow's ``n_frames`` walks every page
    of a TIFF (minutes for 100,000 pages) before any limit could be checked."""
    if not getattr(img, "is_animated", False) and img.format != "TIFF":
        return 1
    if img.format != "TIFF":
        n = int(getattr(img, "n_frames", 1))  # PNG (APNG) and the rest say it in a header
        if n > MAX_FRAMES:
            raise too_many_frames(path, n, "pages")
        return n
    tiff_pages(path)  # raises past MAX_FRAMES, from the IFD chain alone
    return int(img.n_frames)


def load(path: str, fmt: str, max_pixels: int) -> RasterPixels:
    """Decode every frame of a PNG/JPEG/TIFF, refusing over-limit images from the header."""
    with _pillow_limit(max_pixels):
        try:
            img = Image.open(path, formats=_PIL_FORMATS[fmt])
        except Image.DecompressionBombError as exc:
            raise InvalidScanError(path, f"the image is larger than the pixel limit of "
                                   f"{max_pixels:,} ({exc}); raise the pixel limit in the "
                                   "import settings to import it",
                                   kind="skipped", code="too-large") from exc
        except OSError as exc:
            if getattr(exc, "errno", None) is not None:
                raise InvalidScanError(path, f"cannot read the file ({exc.strerror}); check that "
                                       "it still exists and that you may read it",
                                       kind="failed", code="unreadable") from exc
            raise InvalidScanError(path, f"the file starts like a {fmt.upper()} image but its "
                                   f"header cannot be read ({exc}); the file is damaged — "
                                   "export it again", kind="failed", code="invalid-header") from exc
        except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise SyntaxError, ValueError...
            raise InvalidScanError(path, f"the {fmt.upper()} header cannot be read "
                                   f"({type(exc).__name__}: {exc}); the file is damaged — export "
                                   "it again", kind="failed", code="invalid-header") from exc
        with img:
            try:
                width, height = img.size
                n_frames = _count_frames(img, path)
                bands = 1 if img.mode in _GREY16 else len(img.getbands())
            except InvalidScanError:
                raise
            except Exception as exc:  # noqa: BLE001 - Pillow walks IFDs/chunks here
                raise InvalidScanError(path, f"the {fmt.upper()} header cannot be read "
                                       f"({type(exc).__name__}: {exc}); the file is damaged — "
                                       "export it again", kind="failed",
                                       code="invalid-header") from exc
            n_values = width * height * bands * n_frames
            if n_values > max_pixels:
                raise InvalidScanError(path, f"the image declares {height:,} x {width:,} pixels x "
                                       f"{n_frames} frame(s) x {bands} sample(s) = {n_values:,} "
                                       f"values, over the limit of {max_pixels:,}; raise the "
                                       "pixel limit in the import settings to import it",
                                       kind="skipped", code="too-large")
            decoded = (n_values // 8 if img.mode == "1" else
                       n_values * (2 if img.mode in _GREY16 else 4 if img.mode in ("I", "F")
                                   else 1))
            encoded = os.path.getsize(path)
            if decoded > MAX_COMPRESSION * encoded + (1 << 20):
                raise InvalidScanError(path, f"the header declares {height:,} x {width:,} pixels "
                                       f"but the file has only {encoded:,} bytes, more than any "
                                       f"codec compresses (> {MAX_COMPRESSION}:1); the file is "
                                       "truncated or its header damaged — copy or export it "
                                       "again", kind="failed", code="truncated")
            if width == 0 or height == 0:
                raise InvalidScanError(path, "the image has no pixels (width or height 0); "
                                       "export it again", kind="failed", code="invalid-header")
            try:
                stored, display, grey = [], [], True
                budget = DecodeBudget(path)
                for frame in ImageSequence.Iterator(img):
                    budget.check(len(stored))
                    frame.load()
                    stored.append(np.asarray(frame))
                    arr, grey_frame = _display_frame(frame)
                    display.append(arr)
                    grey = grey and grey_frame
                mode = img.mode
            except InvalidScanError:
                raise
            except Exception as exc:  # noqa: BLE001 - third-party decoders raise anything
                text = str(exc)
                if "truncated" in text or isinstance(exc, EOFError):
                    raise InvalidScanError(path, f"the {fmt.upper()} image is truncated ({text}); "
                                           "the file was cut off — copy it again from the source",
                                           kind="failed", code="truncated") from exc
                raise InvalidScanError(path, f"the {fmt.upper()} pixel data could not be decoded "
                                       f"({type(exc).__name__}: {text}); the file is corrupt — "
                                       "export it again", kind="failed",
                                       code="corrupt-pixel-data") from exc
    if not grey:  # a mix of grey and colour pages: show all as RGB
        display = [np.repeat(d[..., None], 3, axis=-1).astype(np.uint8) if d.ndim == 2 else d
                   for d in display]
    shapes = {a.shape for a in stored}
    if len(stored) == 1:
        all_stored = stored[0]
    elif len(shapes) == 1 and len({a.dtype for a in stored}) == 1:
        all_stored = np.stack(stored)
    else:  # pages of different sizes: hash them one after another
        all_stored = np.concatenate([a.reshape(-1).view(np.uint8) for a in stored])
    if not all_stored.dtype.isnative:
        all_stored = all_stored.astype(all_stored.dtype.newbyteorder("="))
    first = stored[0]
    bits = first.dtype.itemsize * 8 if first.dtype != bool else 1
    samples = 1 if first.ndim == 2 else first.shape[-1]
    return RasterPixels(
        stored=np.ascontiguousarray(all_stored), display=display, mode=mode, grey=grey,
        bits=bits, signed=first.dtype.kind in "if", samples=samples,
    )
