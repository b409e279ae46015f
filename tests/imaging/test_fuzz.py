"""Damaged files: truncating or flipping bytes of real samples yields a ScanInfo or an
InvalidScanError, never another exception, and always quickly."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from aldesk.errors import InvalidScanError
from aldesk.imaging import ScanInfo, read_frames, read_scan_info
from tests.imaging.conftest import SAMPLES

SMALL_SAMPLES = [
    "pydicom-test-files/CT_small.dcm",  # uncompressed, signed
    "pydicom-test-files/MR_small_RLE.dcm",
    "pydicom-test-files/MR_small_jp2klossless.dcm",
    "pylibjpeg-data/JPEGBaseline/JPEGBaseline_1s_1f_u_08_08.dcm",
    "pydicom-test-files/SC_rgb_small_odd.dcm",
]


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.arange(48 * 40).reshape(48, 40) * 7 % 4096).astype(np.uint16)).save(
        buf, "PNG")
    return buf.getvalue()


def _blobs() -> list[bytes]:
    blobs = [_png_bytes()]
    blobs += [(SAMPLES / p).read_bytes() for p in SMALL_SAMPLES if (SAMPLES / p).is_file()]
    return blobs


BLOBS = _blobs()
_DIR = Path(tempfile.mkdtemp(prefix="aldesk-fuzz-"))


@st.composite
def damaged(draw):
    blob = bytearray(draw(st.sampled_from(BLOBS)))
    if draw(st.booleans()):
        blob = blob[: draw(st.integers(0, len(blob) - 1))]
    else:
        # Flip bytes, mostly in the first 2 KiB, where headers and codestream markers live.
        for _ in range(draw(st.integers(1, 8))):
            high = min(len(blob), 2048) if draw(st.booleans()) else len(blob)
            blob[draw(st.integers(0, high - 1))] ^= draw(st.integers(1, 255))
    return bytes(blob)


@pytest.mark.skipif(len(BLOBS) < 2, reason="real DICOM samples not found")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(data=damaged(), frames=st.booleans())
def test_damaged_files_fail_cleanly(data, frames):
    path = _DIR / "damaged.bin"
    path.write_bytes(data)
    try:
        result = read_frames(path) if frames else read_scan_info(path)
    except InvalidScanError as exc:
        assert exc.code in {"not-a-scan", "empty", "not-for-reading", "no-pixel-data", "too-large",
                            "unsupported-syntax", "no-transfer-syntax", "truncated",
                            "corrupt-pixel-data", "invalid-header", "unreadable"}
        assert exc.reason
    else:
        if not frames:
            assert isinstance(result, ScanInfo) and result.preview.dtype == np.uint8
