"""Limits on what one input file may cost to read, each with the reason a user is told.

An import must never stall on one file: a 100,000-page TIFF, a DICOM declaring 100,000 frames or a few
megabytes of deflated DICOM that inflate to gigabytes are refused quickly, from their headers or a bounded
streaming pass, before anything large is allocated or decoded. Pixel counts have their own limit
(``max_pixels``, an import setting); these are the ones no real scan comes near.

Pure: standard library only. Never imports Qt, sqlite or the store.
"""

from __future__ import annotations

import os
import struct
import time
import zlib

from aldesk.errors import InvalidScanError

#: Frames (DICOM NumberOfFrames) or pages (TIFF) one scan may have. An enhanced CT or a tomosynthesis
#: series in one file has a few thousand; a reader labels a scan, not a hundred thousand pages.
MAX_FRAMES = 10_000
#: Seconds one file may take to decode page by page before the import gives up on it and goes on.
MAX_DECODE_SECONDS = 120.0
#: Bytes a Deflated Explicit VR Little Endian dataset may inflate to, on top of 8 bytes per pixel value
#: the pixel limit allows (headers, overlays, private data): refused before pydicom inflates it whole.
DEFLATE_HEADROOM = 64 * 2**20
DEFLATED_SYNTAX = b"1.2.840.10008.1.2.1.99"


def too_many_frames(path: str, frames: int, what: str = "frames") -> InvalidScanError:
    return InvalidScanError(path, f"the file has {frames:,} {what} or more, over the limit of {MAX_FRAMES:,} "
                            "per scan (no scan a reader labels has more; a file like this stalls an import); "
                            f"split it into files of at most {MAX_FRAMES:,} {what} to import it",
                            kind="skipped", code="too-many-frames")


class DecodeBudget:
    """Wall-clock budget for decoding one file page by page: ``check()`` between pages."""

    def __init__(self, path: str, seconds: float = MAX_DECODE_SECONDS):
        self.path = path
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def check(self, done: int) -> None:
        if time.monotonic() > self.deadline:
            raise InvalidScanError(self.path, f"decoding took longer than {self.seconds:.0f} s ({done:,} pages "
                                   "so far), far more than any scan; the file is damaged or unusually built — "
                                   "convert it (one image per file) to import it", kind="skipped",
                                   code="too-slow")


def tiff_pages(path: str, limit: int = MAX_FRAMES) -> int:
    """Pages of a TIFF (classic or BigTIFF), counted by following the IFD chain up to ``limit + 1``: a few
    small reads per page, where Pillow sets up every page it seeks. Raises too-many-frames past the limit;
    a chain that loops or leaves the file ends the count (Pillow then reports the damage)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            return 1
        e = "<" if head[:2] == b"II" else ">"
        version = struct.unpack(e + "H", head[2:4])[0]
        if version == 43:  # BigTIFF: 8-byte offsets, 20-byte entries
            count_fmt, entry, off_fmt, offset = "Q", 20, "Q", struct.unpack(e + "Q", head[8:16])[0]
        else:
            count_fmt, entry, off_fmt, offset = "H", 12, "I", struct.unpack(e + "I", head[4:8])[0]
        count_size, off_size = struct.calcsize(count_fmt), struct.calcsize(off_fmt)
        size = os.fstat(fh.fileno()).st_size
        pages, seen = 0, set()
        while offset and offset not in seen and offset + count_size <= size:
            seen.add(offset)
            pages += 1
            if pages > limit:
                raise too_many_frames(path, pages, "pages")
            fh.seek(offset)
            n = struct.unpack(e + count_fmt, fh.read(count_size))[0]
            fh.seek(offset + count_size + n * entry)
            raw = fh.read(off_size)
            if len(raw) < off_size:
                break
            offset = struct.unpack(e + off_fmt, raw)[0]
        return max(pages, 1)


def check_deflated_size(path: str, max_pixels: int, chunk: int = 1 << 20) -> None:
    """For a DICOM file in Deflated Explicit VR Little Endian, inflate its dataset in a streaming pass that
    keeps nothing, and refuse it once it passes ``8 * max_pixels + DEFLATE_HEADROOM`` bytes: pydicom
    inflates the whole dataset in memory before any size check (a 3 MB file can become > 4 GiB).
    Does nothing for any other file (one read of the file meta)."""
    with open(path, "rb") as fh:
        start = _deflated_dataset_offset(fh)
        if start is None:
            return
        cap = 8 * int(max_pixels) + DEFLATE_HEADROOM
        fh.seek(start)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        total = 0
        while True:
            data = fh.read(chunk)
            if not data:
                break
            try:  # at most ``chunk`` bytes of output at a time: memory stays flat
                total += len(inflater.decompress(data, chunk))
                while inflater.unconsumed_tail and total <= cap:
                    total += len(inflater.decompress(inflater.unconsumed_tail, chunk))
            except zlib.error:
                return  # not valid deflate: pydicom reports the damage in its own words
            if total > cap:
                raise InvalidScanError(
                    path, f"the deflated dataset inflates to more than {cap / 2**20:,.0f} MiB (the pixel limit "
                    f"of {max_pixels:,} values allows no more); it is damaged or a decompression bomb. Raise the "
                    "pixel limit in the import settings only if it is a genuine scan", kind="skipped",
                    code="too-large")
            if inflater.eof:
                break


def _deflated_dataset_offset(fh) -> int | None:
    """Where the deflated dataset starts, or None when the file is not Deflated Explicit VR Little Endian."""
    head = fh.read(132)
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    pos, syntax = 132, None
    while True:  # the file meta group: explicit VR little endian, group 0002 only
        fh.seek(pos)
        tag = fh.read(8)
        if len(tag) < 8:
            return None
        group, element = struct.unpack("<HH", tag[:4])
        if group != 0x0002:
            break
        vr = tag[4:6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"):
            extra = fh.read(4)
            if len(extra) < 4:
                return None
            length, header = struct.unpack("<I", extra)[0], 12
        else:
            length, header = struct.unpack("<H", tag[6:8])[0], 8
        if length > 1 << 20:
            return None  # not a sane meta group: let pydicom judge
        if element == 0x0010:
            syntax = fh.read(length).rstrip(b"\x00 ")
        pos += header + length
    return pos if syntax == DEFLATED_SYNTAX else None
