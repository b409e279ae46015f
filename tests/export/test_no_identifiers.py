"""Proof that no patient identifier leaves the project by default (issue 15, point 6).

As a privacy officer would try it: DICOM files holding a marker in EVERY attribute of PS3.15 Table
E.1-1 (the edition in use; text, names, dates, times, UIDs, numbers, binary values, sequences), the
same attributes nested inside a sequence, private tags, overlays and curves, and a PNG with a text
chunk, stored under folders named after the patient (``SMITH_JOHN_7731942/img1.dcm``). They are
imported and labelled through the CLI, every export path runs with its default options, and no marker
may appear in any byte or any file or folder name of the result (zip members included); the log of
the whole session is checked the same way.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from aldesk.app import logs
from aldesk.cli import main as cli
from aldesk.imaging.deid import profile_ranges, profile_table

PATIENT_FOLDER = "SMITH_JOHN_7731942"
OTHER_FOLDER = "DOE_JANE_5551234"
#: found in no default export: the patient's name and numbers, the marked date, every attribute's tag
WORDS = ("SMITH", "JOHN", "773194", "DOE_JANE", "5551234", "19370412")
_TEXT = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "ST": 1024, "LT": 1024, "UT": 1024, "UC": 1024}
_NUMBERS = ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV")


def marker(tag: int) -> str:
    """The text marker of one attribute: its tag (so a leak names the attribute) and the surname."""
    return f"M{tag:08X}SMITH"  # 15 characters: fits SH, AE, CS


def _value(tag: int, vr: str, uid_index: list[int]):
    if vr in _TEXT:
        return marker(tag)
    if vr == "PN":
        return f"SMITH^JOHN^{marker(tag)}"
    if vr == "DA":
        return "19370412"
    if vr == "DT":
        return "19370412134157"
    if vr == "TM":
        return "134157.773194"
    if vr == "UI":
        uid_index[0] += 1
        return f"1.2.7731942.{uid_index[0]}"
    if vr in ("DS", "IS"):
        return "7731942"
    if vr == "AS":
        return "077Y"
    if vr == "UR":
        return "http://smith7731942.example/"
    if vr in _NUMBERS:
        return 7731 if vr in ("US", "SS") else 7731942
    if vr in ("OB", "OW", "UN", "OD", "OF", "OL", "OV"):
        return (marker(tag) + "X").encode()  # even length
    if vr == "AT":
        return 0x77311942
    raise AssertionError(f"no marker for VR {vr}")


def _vr(tag: int) -> str:
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:  # newer than pydicom's dictionary: written with an explicit VR
        return "LO"


def _marked_item(tag_list: list[int], uid_index: list[int]) -> Dataset:
    """A dataset holding a marked value of every attribute of ``tag_list`` (sequences hold a marked item)."""
    ds = Dataset()
    for tag in tag_list:
        vr = _vr(tag)
        if vr == "SQ":
            item = Dataset()
            item.PatientName = f"SMITH^NESTED^{marker(tag)}"
            item.ReferencedSOPInstanceUID = _value(0, "UI", uid_index)
            item.TextValue = marker(tag)
            item.add_new(0x00190010, "LO", "ACME SMITH")
            item.add_new(0x00191001, "LO", marker(tag))
            ds.add_new(tag, "SQ", Sequence([item]))
        else:
            ds.add_new(tag, vr, _value(tag, vr, uid_index))
    return ds


def table_tags() -> list[int]:
    """Every exact tag of the table that a file's dataset can hold: not the command group (0000, network
    messages only) nor the file meta group (0002: its marked UID and AE title are in the meta header)."""
    return sorted(t for t in profile_table() if Tag(t).group not in (0x0000, 0x0002))


def write_marked_dicom(path: Path, *, nested: bool) -> Path:
    """A secondary-capture image with a marker in every attribute of the table (top level), or in an
    item of a sequence the table does not name (``nested``), plus private tags, overlays and curves."""
    uid_index = [0]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.SourceApplicationEntityTitle = "SMITHPACS"
    tags = table_tags()
    if nested:
        ds = Dataset()
        ds.AnatomicRegionSequence = Sequence([_marked_item(tags, uid_index)])  # not in the table
        ds.PatientID, ds.PatientName = "SMITH7731942", "SMITH^JOHN"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.7731942.900", "1.2.7731942.901"
        ds.SOPInstanceUID = "1.2.7731942.902"
    else:
        ds = _marked_item(tags, uid_index)
    assert len(tags) > 600
    ds.SOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    ds.add_new(0x00090010, "LO", "ACME SMITH")
    ds.add_new(0x00091001, "LO", "private MSMITH 7731942")
    ds.add_new(0x00091002, "OB", b"SMITH7731942")
    for g, e, _gm, _em, _a in profile_ranges():  # curves (5000,xxxx), overlays (6000,3000 / 4000)
        vr = "OW" if e == 0x3000 else "LT" if e == 0x4000 else "OB"
        ds.add_new(Tag(g, e if e else 0x2500), vr if e else "LO", f"M{g:04X}{e:04X}SMITH".encode()
                   if vr in ("OW", "OB") and e else f"curve label M{g:04X}SMITH")
    ds.add_new(0x60000010, "US", 8)    # overlay rows, columns, type: the rest of the overlay group
    ds.add_new(0x60000022, "LO", "overlay SMITH JOHN")
    ds.Modality = "CR"
    ds.Rows, ds.Columns = 8, 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = ((np.arange(64, dtype=np.uint16) * (3 if nested else 1)) % 60).tobytes()  # no letter bytes
    for keyword in ("BurnedInAnnotation",):
        assert keyword not in ds
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_marked_png(path: Path) -> Path:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Patient", "DOE_JANE 5551234 SMITH")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), 30, np.uint8)).save(path, pnginfo=info)
    return path


def markers() -> set[str]:
    return set(WORDS) | {marker(t) for t in profile_table()}


def leaks_in(root: Path) -> list[str]:
    """Every marker found in a name under ``root`` or in a file's bytes (zip members unpacked)."""
    found = []
    wanted = markers()

    def scan(where: str, data: bytes) -> None:
        text = data.decode("latin-1")
        found.extend(f"{where}: {m}" for m in wanted if m in text)
        if data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for name in z.namelist():
                    found.extend(f"{where}!{name} (name): {m}" for m in wanted if m in name)
                    scan(f"{where}!{name}", z.read(name))

    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root).as_posix()
        found.extend(f"{rel} (name): {m}" for m in wanted if m in rel)
        if f.is_file():
            scan(rel, f.read_bytes())
    return found


@pytest.fixture
def marked_project(tmp_path, monkeypatch):
    """Marked files under patient-named folders, imported and labelled through the CLI, with the
    log on at DEBUG for the whole session."""
    logs.setup_logging(logging.DEBUG)
    monkeypatch.setattr(logs, "setup_logging", lambda level=logging.DEBUG: None)
    data = tmp_path / "hospital export"
    write_marked_dicom(data / PATIENT_FOLDER / "img1.dcm", nested=False)
    write_marked_dicom(data / PATIENT_FOLDER / "img2.dcm", nested=True)
    write_marked_png(data / OTHER_FOLDER / "DOE_JANE_5551234.png")
    proj = tmp_path / "project"
    assert cli(["init", str(proj), "--classes", "normal,pneumonia"]) == 0
    assert cli(["import", str(proj), str(data), "--jobs", "1", "--quiet"]) == 0
    labels = tmp_path / "labels.csv"
    labels.write_text(f"path,label\n{PATIENT_FOLDER}/img1.dcm,normal\n{PATIENT_FOLDER}/img2.dcm,pneumonia\n"
                      f"{OTHER_FOLDER}/DOE_JANE_5551234.png,normal\n", encoding="utf-8")
    assert cli(["label", str(proj), "--csv", str(labels), "--annotator", "dr_reader"]) == 0
    yield proj
    logs.teardown_logging()


def test_the_marked_files_hold_every_marker_and_import(marked_project, tmp_path):
    """The test would catch a leak: the sources hold every marker, and all three files are scans."""
    from aldesk.store import Project

    data = tmp_path / "hospital export"
    raw = (data / PATIENT_FOLDER / "img1.dcm").read_bytes().decode("latin-1")
    text_vrs = {t for t in table_tags() if _vr(t) in (*_TEXT, "PN", "OB", "OW", "UN")}
    assert all(marker(t) in raw for t in text_vrs) and len(text_vrs) > 300
    top = pydicom.dcmread(data / PATIENT_FOLDER / "img1.dcm")
    assert all(t in top for t in table_tags()) and len(table_tags()) > 600
    nested = pydicom.dcmread(data / PATIENT_FOLDER / "img2.dcm")
    assert len(nested.AnatomicRegionSequence[0]) == len(table_tags())
    with Project.open(marked_project) as project:
        assert project.scans.count() == 3


@pytest.mark.parametrize("args", [
    ["--format", "csv"], ["--format", "json"], ["--format", "folders"], ["--format", "folders", "--dicom-as", "png"],
    ["--format", "csv", "--splits", "70,30"]], ids=["csv", "json", "folders", "folders-png", "csv-splits"])
def test_no_marker_in_any_default_export(marked_project, tmp_path, args):
    out = tmp_path / "export"
    assert cli(["export", str(marked_project), str(out), "--quiet", *args]) == 0
    leaks = leaks_in(out)
    assert not leaks, leaks[:20]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["scans"] == 3 and manifest["identifiers_included"] is False
    if "folders" in args:
        written = [f for f in out.rglob("*") if f.suffix in (".dcm", ".png")]
        assert len(written) == 3  # the images are there, only cleaned
    if args[-1] == "folders":
        for f in out.rglob("*.dcm"):
            ds = pydicom.dcmread(f)
            assert ds.PatientIdentityRemoved == "YES" and not any(e.tag.is_private for e in ds.iterall())
            assert not any(0x5000 <= e.tag.group <= 0x60FF for e in ds.iterall())


def test_with_identifiers_the_markers_do_leave(marked_project, tmp_path):
    """The check is not blind: an export asked to include identifiers carries them."""
    out = tmp_path / "ids"
    assert cli(["export", str(marked_project), str(out), "--format", "folders", "--include-identifiers",
                "--quiet"]) == 0
    leaks = leaks_in(out)
    assert any(x.endswith(": SMITH") for x in leaks) and any(x.endswith(": 773194") for x in leaks)


def test_the_whole_session_log_holds_no_marker(marked_project, tmp_path, capsys):
    """Import, label, every export, package and hand-out, and failures quoting patient-named paths:
    none in the log file."""
    data = tmp_path / "hospital export"
    bad = tmp_path / "bad.csv"
    bad.write_text(f"path,label\n{PATIENT_FOLDER}/img9.dcm,normal\n{OTHER_FOLDER}/x.png,nope\n", encoding="utf-8")
    assert cli(["label", str(marked_project), "--csv", str(bad), "--annotator", "dr_reader"]) == 1
    assert cli(["import", str(marked_project), str(data / "SMITH_JOHN_0000000"), "--quiet"]) == 1
    assert cli(["import", str(marked_project), str(data), "--quiet"]) == 0  # unchanged files
    for fmt in ("csv", "json", "folders"):
        assert cli(["export", str(marked_project), str(tmp_path / f"out-{fmt}"), "--format", fmt, "--quiet"]) == 0
    assert cli(["export", str(marked_project), str(data), "--format", "csv"]) == 1  # not empty
    assert cli(["package", "export", str(marked_project), str(tmp_path / "work.aldpkg")]) == 0
    assert cli(["package", "handout", str(marked_project), str(tmp_path / "lee"), "--annotator", "dr_lee",
                "--deidentified", "--quiet"]) == 0
    assert cli(["package", "handout", str(marked_project), str(data), "--annotator", "dr_lee",
                "--deidentified"]) == 1  # not empty
    assert cli(["package", "import", str(marked_project), str(data / PATIENT_FOLDER / "img1.dcm")]) == 1
    assert "SMITH_JOHN_0000000" in capsys.readouterr().err  # on screen, the full path
    for h in logging.getLogger("aldesk").handlers:
        h.flush()
    text = (tmp_path / "logs" / "aldesk.log").read_text(encoding="utf-8")
    assert "label failed" in text and "import failed" in text and "export failed" in text and "package failed" in text
    leaks = [m for m in markers() | {"hospital export", "img9", "0000000"} if m in text]
    assert not leaks, leaks


@pytest.mark.parametrize("kind", ["package", "handout"])
def test_no_marker_in_any_default_package(marked_project, tmp_path, kind):
    """Annotation packages and de-identified hand-outs (the de-identified one is the hand-out that may
    leave without identifiers; an identified one is an explicit, warned choice)."""
    out = tmp_path / "pkg"
    if kind == "package":
        out.mkdir()
        assert cli(["package", "export", str(marked_project), str(out / "work.aldpkg")]) == 0
    else:
        assert cli(["package", "handout", str(marked_project), str(out), "--annotator", "dr_other", "--quiet",
                    "--deidentified"]) == 0
        assert len([f for f in out.rglob("*") if f.suffix in (".dcm", ".png")]) == 3
        # the hand-out's own package goes back as well
        assert cli(["package", "export", str(out), str(tmp_path / "back.aldpkg")]) == 0
        leaks = leaks_in(tmp_path)  # includes the marked sources: only the package file is checked here
        assert not [x for x in leaks if x.startswith("back.aldpkg")], leaks[:20]
    leaks = leaks_in(out)
    assert not leaks, leaks[:20]
