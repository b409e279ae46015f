"""Write generated DICOM series (one file per slice) for tests, benchmarks and the series simulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_series(folder: Path, volume: np.ndarray, *, study_uid: str | None = None, series_uid: str | None = None,
                 patient_id: str = "PAT-001", modality: str = "CT", spacing: float = 2.5, z0: float = -300.0,
                 series_number: int = 1, description: str = "generated", shuffle_names: bool = True,
                 orientation=(1, 0, 0, 0, 1, 0), instance_offset: int = 0, skip: set[int] | None = None,
                 echo: int | None = None) -> list[Path]:
    """volume (n, h, w) int16 (Hounsfield for CT) -> n files in ``folder``, slice k at z0 + k * spacing.

    File names are shuffled (``shuffle_names``) so a test proves order comes from the headers, not names.
    ``skip``: slice indices not written (a series with missing slices). Returns the written paths.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    n = volume.shape[0]
    names = np.random.default_rng(series_number).permutation(n) if shuffle_names else np.arange(n)
    paths = []
    for k in range(n):
        if skip and k in skip:
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.PatientID, ds.PatientName = patient_id, "Anon^Test"
        ds.Modality, ds.SeriesNumber, ds.SeriesDescription = modality, series_number, description
        ds.InstanceNumber = instance_offset + k + 1
        if echo is not None:
            ds.EchoNumbers = echo
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.ImagePositionPatient = [0.0, 0.0, z0 + k * spacing]
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = spacing
        ds.Rows, ds.Columns = volume.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        if modality == "CT":
            ds.RescaleSlope, ds.RescaleIntercept = 1, 0
            ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelData = volume[k].astype("<i2").tobytes()
        path = folder / f"IM{int(names[k]):05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def ct_volume(n: int, size: int = 512, seed: int = 0) -> np.ndarray:
    """A CT-like (n, size, size) int16 volume: air around a body ellipse with a sphere moving through it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / size - 0.5
    body = (xx / 0.42) ** 2 + (yy / 0.32) ** 2 < 1
    vol = np.full((n, size, size), -1000, np.int16)
    for k in range(n):
        sl = np.where(body, 40, -1000).astype(np.int16)
        r = 0.12 * np.sin(np.pi * k / max(1, n - 1))
        sl[(xx - 0.1) ** 2 + yy ** 2 < r * r] = 700
        sl += rng.integers(-20, 20, sl.shape, dtype=np.int16)
        vol[k] = sl
    return vol
