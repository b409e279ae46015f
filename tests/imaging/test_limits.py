"""Bounded inputs: files built to stall an import are refused quickly, from headers or a bounded pass."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aldesk.errors import InvalidScanError
from aldesk.imaging import limits, read_frames, read_scan_info
from tests.imaging.conftest import make_dicom

REPO = Path(__file__).resolve().parents[2]


def _tiff_pages(path: Path, pages: int) -> Path:
    """A little-endian TIFF of ``pages`` 1 x 1 grey pages, written directly (Pillow would take minutes)."""
    entries = [(256, 3, 1), (257, 3, 1), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8), (277, 3, 1),
               (278, 3, 1), (279, 4, 1)]
    ifd_size = 2 + 12 * len(entries) + 4
    first = 9  # header (8) + the one pixel byte every page shares (at offset 8)
    buf = bytearray(first + pages * ifd_size)
    struct.pack_into("<2sHI", buf, 0, b"II", 42, first)
    buf[8] = 128
    entry = struct.Struct("<HHII")
    for k in range(pages):
        at = first + k * ifd_size
        struct.pack_into("<H", buf, at, len(entries))
        for i, (tag, typ, value) in enumerate(entries):
            entry.pack_into(buf, at + 2 + 12 * i, tag, typ, 1, value)
        struct.pack_into("<I", buf, at + 2 + 12 * len(entries), at + ifd_size if k + 1 < pages else 0)
    path.write_bytes(bytes(buf))
    return path


def test_a_100000_page_tiff_is_refused_from_its_first_pages(tmp_path):
    path = _tiff_pages(tmp_path / "stack.tif", 100_000)
    with pytest.raises(InvalidScanError, match=r"10,001 pages or more, over the limit of 10,000") as info:
        read_scan_info(path)
    assert (info.value.kind, info.value.code) == ("skipped", "too-many-frames")
    with pytest.raises(InvalidScanError, match="over the limit"):
        read_frames(path)  # the viewer reads through the same limit


def test_a_tiff_within_the_page_limit_is_read(tmp_path):
    info = read_scan_info(_tiff_pages(tmp_path / "three.tif", 3))
    assert info.frames == 3


def test_decoding_past_the_time_budget_is_refused(tmp_path, monkeypatch):
    """Simulated slow decoder: the budget is checked between pages (no wall-clock assertion)."""
    monkeypatch.setattr(limits, "MAX_DECODE_SECONDS", -1.0)
    monkeypatch.setattr(limits.DecodeBudget.__init__, "__defaults__", (-1.0,))
    with pytest.raises(InvalidScanError, match=r"decoding took longer than") as info:
        read_scan_info(_tiff_pages(tmp_path / "slow.tif", 3))
    assert info.value.code == "too-slow"


def test_a_dicom_declaring_too_many_frames_is_refused_before_decoding(tmp_path):
    path = make_dicom(tmp_path / "frames.dcm", np.zeros((2, 1, 1), np.uint16), NumberOfFrames=20_000)
    with pytest.raises(InvalidScanError, match=r"20,000 frames or more, over the limit of 10,000") as info:
        read_scan_info(path)
    assert info.value.code == "too-many-frames"


def _deflated_dicom(path: Path, pixels: np.ndarray, padding: int = 0) -> Path:
    """A DICOM in Deflated Explicit VR Little Endian (written by pydicom), optionally with ``padding`` zero
    bytes of private data (under 100 KB once deflated, whatever ``padding`` is)."""
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = pydicom.dcmread(make_dicom(path.with_suffix(".plain.dcm"), pixels))
    if padding:
        ds.add_new(0x00091010, "LO", "aldesk test")  # private creator
        ds.add_new(0x00091011, "OB", bytes(padding))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_deflated_dicom_reads_normally(tmp_path):
    pixels = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 3) % 4096
    info = read_scan_info(_deflated_dicom(tmp_path / "ok.dcm", pixels))
    assert (info.rows, info.columns) == (32, 32) and info.transfer_syntax == "1.2.840.10008.1.2.1.99"


def test_a_deflate_bomb_is_refused_before_pydicom_inflates_it(tmp_path):
    import tracemalloc

    path = _deflated_dicom(tmp_path / "bomb.dcm", np.zeros((8, 8), np.uint16), padding=80 * 2**20)
    assert path.stat().st_size < 200_000  # 80 MiB of zeros deflate to under 100 KB
    tracemalloc.start()
    with pytest.raises(InvalidScanError, match=r"inflates to more than 64 MiB") as info:
        read_scan_info(path, max_pixels=1000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert info.value.code == "too-large"
    assert peak < 16 * 2**20  # streamed: never the whole inflated dataset in memory


def test_fifos_and_devices_in_a_folder_do_not_stall_an_import(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.fromarray(np.full((16, 16), 7, np.uint8)).save(folder / "a.png")
    os.mkfifo(folder / "pipe.dcm")  # opening it for reading would block forever
    os.symlink("/dev/zero", folder / "zero.dcm")  # an endless device
    project = tmp_path / "p"
    run = [sys.executable, "-m", "aldesk"]
    assert subprocess.run([*run, "init", str(project), "--classes", "a,b"], cwd=REPO, timeout=120).returncode == 0
    done = subprocess.run([*run, "import", str(project), str(folder), "--jobs", "1", "--json"], cwd=REPO,
                          timeout=120, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "not a regular file" in subprocess.run([*run, "problems", str(project)], cwd=REPO, timeout=120,
                                                   capture_output=True, text=True).stdout
