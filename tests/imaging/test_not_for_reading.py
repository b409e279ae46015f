"""Non-image DICOM objects (SEG, RT Dose, RT Struct, SR, PR, KO, ...) are not scans to label (issue 13 point 12).

They were imported as scans ("SEG: 2, RTDOSE: 1" in `aldesk info`). Now each is skipped with the code
``not-for-reading`` and a reason saying what it is, and lands in the import report, not the queue.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from aldesk.errors import InvalidScanError
from aldesk.imaging import read_scan_info
from tests.imaging.conftest import SAMPLES, make_dicom

SEG = "1.2.840.10008.5.1.4.1.1.66.4"
RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_IMAGE = "1.2.840.10008.5.1.4.1.1.481.1"
PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"
CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.mark.parametrize(("sop", "modality", "what"), [
    (SEG, "SEG", "a segmentation"),
    (RT_DOSE, "RTDOSE", "radiotherapy object"),
    ("1.2.840.10008.5.1.4.1.1.88.59", "KO", "key object selection"),
    ("1.2.840.10008.5.1.4.1.1.11.1", "PR", "presentation state"),
    ("1.2.840.10008.5.1.4.1.1.66.7", "SEG", "a segmentation"),        # label map segmentation
    (None, "SEG", "a segmentation"),                                   # SOP class missing: by modality
    (None, "RTDOSE", "dose grid"),
])
def test_non_image_objects_with_pixel_data_are_not_for_reading(tmp_path, sop, modality, what):
    attrs = {"Modality": modality}
    if sop:
        attrs["SOPClassUID"] = sop
    path = make_dicom(tmp_path / "x.dcm", np.arange(64, dtype=np.uint8).reshape(8, 8), **attrs)
    if not sop:
        import pydicom

        ds = pydicom.dcmread(path)
        del ds.SOPClassUID
        ds.file_meta.MediaStorageSOPClassUID = "1.2.3"
        ds.save_as(path)
    with pytest.raises(InvalidScanError, match=f"not for reading: .*{what}.*not imported as a scan") as info:
        read_scan_info(path)
    assert (info.value.kind, info.value.code) == ("skipped", "not-for-reading")


@pytest.mark.parametrize(("sop", "modality"), [(RT_IMAGE, "RTIMAGE"), (CT, "CT"), (PARAMETRIC_MAP, "MR")])
def test_images_are_still_read(tmp_path, sop, modality):
    path = make_dicom(tmp_path / "x.dcm", np.arange(64, dtype=np.uint16).reshape(8, 8) * 50,
                      SOPClassUID=sop, Modality=modality)
    assert read_scan_info(path).modality == modality


def test_a_bad_number_of_frames_still_names_the_element(tmp_path):
    """(Was tested on the sample badVR.dcm, which is an RT Dose and so now not for reading.)"""
    path = make_dicom(tmp_path / "x.dcm", np.zeros((2, 8, 8), np.uint8), SOPClassUID=CT, Modality="CT")
    element = b"\x28\x00\x08\x00IS\x02\x002 "          # (0028,0008) IS "2 ", explicit VR little endian
    data = path.read_bytes()
    assert data.count(element) == 1
    path.write_bytes(data.replace(element, element[:-2] + b"1A"))
    with pytest.raises(InvalidScanError, match=r"Number of Frames \(0028,0008\) has an invalid value.*'1A'"):
        read_scan_info(path)


def test_import_lists_seg_and_rt_dose_as_problems_not_scans(tmp_path):
    from aldesk.app.importer import import_paths
    from aldesk.app.projects import project_info
    from aldesk.store import Project

    picks = ["pydicom-data/liver.dcm", "pydicom-test-files/rtdose.dcm", "pydicom-test-files/CT_small.dcm"]
    if not all((SAMPLES / p).is_file() for p in picks):
        pytest.skip("the shared DICOM samples are not here")
    folder = tmp_path / "in"
    folder.mkdir()
    for p in picks:
        shutil.copy(SAMPLES / p, folder / p.split("/")[-1])
    with Project.create(tmp_path / "proj", ["normal", "abnormal"]) as project:
        summary = import_paths(project, [folder], jobs=1)
        assert (summary.imported, summary.skipped) == (1, 2)
        reasons = {pr["code"] for pr in summary.problems}
        assert reasons == {"not-for-reading"}
        assert all("not for reading" in pr["reason"] for pr in summary.problems)
        assert project_info(project)["modalities"] == {"CT": 1}
