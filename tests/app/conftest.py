"""Small generated scans for import tests (the real samples are in ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_dicom(path: Path, pixels: np.ndarray, *, patient_id: str = "PAT-001", patient_name: str = "Doe^Jane",
                uid: str | None = None, modality: str = "CR") -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = uid or generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.PatientBirthDate = patient_id, patient_name, "19700101"
    ds.Modality = modality
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_png(path: Path, seed: int, size: int = 32) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def scan_folder(tmp_path) -> Path:
    """12 distinct scans: 8 PNGs and 4 DICOMs from two patients."""
    folder = tmp_path / "scans"
    for i in range(8):
        write_png(folder / "png" / f"img_{i}.png", seed=i)
    rng = np.random.default_rng(99)
    for i in range(4):
        write_dicom(folder / "dicom" / f"ct_{i}.dcm", rng.integers(0, 4096, (48, 40)),
                    patient_id=f"PAT-{i % 2}")
    return folder
