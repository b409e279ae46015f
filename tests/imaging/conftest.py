"""Shared helpers for the imaging tests: where the real samples live, and tiny generated files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

# /work/main/tests/imaging/conftest.py -> /work/main/../shared/data
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SAMPLES = (DATA / "dicom-samples").resolve()
MANIFEST = SAMPLES / "manifest.csv"
SKIP_REASON = f"real DICOM samples not found at {SAMPLES} (see /work/shared/data/dicom-samples)"


def manifest_rows() -> list[dict[str, str]]:
    """Rows of manifest.csv, or [] when the shared data is not present."""
    if not MANIFEST.is_file():
        return []
    with MANIFEST.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def samples() -> Path:
    if not MANIFEST.is_file():
        pytest.skip(SKIP_REASON)
    return SAMPLES


def make_dicom(path: Path, pixels: np.ndarray, *, photometric: str = "MONOCHROME2",
               preamble: bool = True, **attrs) -> Path:
    """Write a small uncompressed DICOM image; pixels : (h, w) or (f, h, w) integer array."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "TEST-123"
    ds.Modality = "OT"
    frames = pixels.shape[0] if pixels.ndim == 3 else 1
    ds.Rows, ds.Columns = pixels.shape[-2:]
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = pixels.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(pixels.dtype.kind == "i")
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.PixelData = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<")).tobytes()
    if preamble:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(path, enforce_file_format=True)
    else:  # a bare dataset: no preamble, no file meta, implicit VR little endian
        pydicom.dcmwrite(path, ds, implicit_vr=True, little_endian=True)
    return path
