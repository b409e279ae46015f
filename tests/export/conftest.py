"""A small real study for export and package tests: DICOMs of six patients (with identifying
headers, private tags and nested UIDs, like a PACS export) and eight PNGs, imported into a project."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.app.conftest import write_png

PATIENTS = [f"PID-77{k}1-SECRET" for k in range(6)]
NAMES = [f"Secretname^Person{k}" for k in range(6)]
BIRTH_DATE = "19700101"   # write_dicom's own
INSTITUTION = "St Secret Hospital"
REFERRER = "Dr^Referrer^Secret"


def write_study_dicom(path: Path, pixels: np.ndarray, *, patient: int, study_uid: str, seed: int,
                      burned_in: str | None = None) -> Path:
    """A secondary-capture DICOM with what a real one carries about the patient and the visit."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.SourceApplicationEntityTitle = "SECRETPACS"
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.PatientID, ds.PatientName, ds.PatientBirthDate = PATIENTS[patient], NAMES[patient], BIRTH_DATE
    ds.PatientAddress = "1 Secret Street, Hiddentown"
    ds.OtherPatientIDs = f"OTHER-{PATIENTS[patient]}"
    ds.AccessionNumber = f"ACC{seed:05d}SECRET"
    ds.StudyDate, ds.SeriesDate, ds.ContentDate, ds.StudyTime = "20240305", "20240305", "20240305", "101112"
    ds.InstitutionName, ds.InstitutionAddress = INSTITUTION, "Secret Road 5"
    ds.ReferringPhysicianName, ds.OperatorsName = REFERRER, "Operator^Secret"
    ds.StationName, ds.DeviceSerialNumber = "SECRETSTATION", "SN-SECRET-1"
    ds.ImageComments = f"patient {NAMES[patient]} follow-up"
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.ReferencedImageSequence = Sequence([ref])
    ds.add_new(0x00091010, "LO", f"private {PATIENTS[patient]}")
    if burned_in:
        ds.BurnedInAnnotation = burned_in
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def make_study(folder: Path) -> Path:
    """12 DICOMs (6 patients x 2 scans, one study each) and 8 PNGs under ``folder``."""
    from pydicom.uid import generate_uid

    rng = np.random.default_rng(7)
    for p in range(6):
        study = generate_uid()
        for k in range(2):
            write_study_dicom(folder / "dicom" / f"case{p}_{k}.dcm", rng.integers(0, 4096, (24, 20)),
                              patient=p, study_uid=study, seed=10 * p + k, burned_in="YES" if p == 5 else None)
    for i in range(8):
        write_png(folder / "png" / f"img_{i}.png", seed=100 + i, size=24)
    return folder


def identifying_strings(folder: Path) -> set[str]:
    """Every identifying value the source files hold (IDs, names, dates, UIDs, addresses, ...)."""
    import pydicom

    found = {BIRTH_DATE, INSTITUTION, "SECRET"} | set(PATIENTS) | {n.split("^")[0] for n in NAMES}
    for f in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(f)
        found |= {str(ds.SOPInstanceUID), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                  str(ds.FrameOfReferenceUID), str(ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID),
                  str(ds.AccessionNumber)}
    return found


@pytest.fixture
def study_folder(tmp_path) -> Path:
    return make_study(tmp_path / "study")


@pytest.fixture
def study(project, study_folder):
    """The ``project`` fixture with the study imported (20 scans)."""
    from aldesk.app.importer import import_paths

    summary = import_paths(project, [study_folder], jobs=1)
    assert summary.imported == 20, summary.problems
    return project


def scan_ids_by_name(project) -> dict[str, int]:
    return {Path(rel).stem: sid for sid, _root, rel in project.scans.iter_paths()}


def label_all(project, reader: str, values: dict[str, str]) -> None:
    from aldesk.app.labelling import record_label

    ids = scan_ids_by_name(project)
    for name, value in values.items():
        record_label(project, ids[name], reader, value)
