"""The log file: rotating, in the platform's log folder, and never a patient identifier."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from aldesk.app import logs
from tests.app.conftest import write_dicom


@pytest.fixture(autouse=True)
def _no_leftover_handler():
    yield
    logs.teardown_logging()


def test_log_goes_to_the_env_folder_and_rotates(tmp_path):
    path = logs.setup_logging()
    assert path == tmp_path / "logs" / "aldesk.log"
    assert logs.setup_logging() == path  # idempotent: still one handler
    ours = [h for h in logging.getLogger("aldesk").handlers if getattr(h, "aldesk_log", False)]
    assert len(ours) == 1
    assert ours[0].maxBytes == logs.MAX_BYTES and ours[0].backupCount == logs.BACKUP_COUNT
    logging.getLogger("aldesk.test").info("hello from the test")
    ours[0].flush()
    assert "hello from the test" in path.read_text(encoding="utf-8")


def test_log_dir_defaults_to_platformdirs(monkeypatch):
    import platformdirs

    monkeypatch.delenv("ALDESK_LOG_DIR")
    assert logs.log_dir() == Path(platformdirs.user_log_dir("aldesk", appauthor=False))


def test_unwritable_log_folder_leaves_logging_off(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ALDESK_LOG_DIR", str(blocker / "logs"))
    logs.setup_logging()
    assert not any(getattr(h, "aldesk_log", False) for h in logging.getLogger("aldesk").handlers)


@pytest.mark.parametrize("text,expected", [
    ("/data/SMITH_JOHN_7731942/img1.dcm: cannot be read", "/*/*/*.dcm: cannot be read"),
    ("line 2: 'SMITH JOHN 12345/x.dcm': no imported scan has this path", "line 2: '*/*.dcm': no imported scan has this path"),
    ("line 3: 'SMITH_JOHN': no imported scan has this path", "line 3: '*': no imported scan has this path"),
    ("line 4: label 'pneumonia' is not a class", "line 4: label 'pneumonia' is not a class"),
    ("[Errno 2] No such file or directory: '/data/Smith John/img 1.dcm'", "[Errno 2] No such file or directory: '/*/*/*.dcm'"),
    ("/data/SMITH JOHN 7731942/x: does not exist; check the path", "/*/*/*: does not exist; check the path"),
    ("C:\\Users\\SMITH\\x.dcm: cannot", "C:\\*\\*\\*.dcm: cannot"),
    ("package SMITH_JOHN_7731942.aldpkg: bad", "package *.aldpkg: bad"),
    ("hand-out to ~/usb/SMITH_JOHN, done", "hand-out to ~/*/*, done"),
    ("splits 70/15/15, 12/100 files; UID 2.25.1234", "splits 70/15/15, 12/100 files; UID 2.25.1234"),
    ("export failed: 3 files are missing (e.g. scan 4)", "export failed: 3 files are missing (e.g. scan 4)"),
])
def test_redact_masks_every_path_component(text, expected):
    assert logs.redact(text) == expected


def test_redact_masks_known_arguments_and_keeps_code_paths():
    assert logs.redact("SMITH_JOHN: already exists", known=["SMITH_JOHN"]) == "*: already exists"
    code = f'File "{logs.__file__}", line 3, in setup_logging'
    assert logs.redact(code) == code  # a traceback through aldesk's code stays readable


def _identifiers(paths: list[Path]) -> set[str]:
    """PatientID / PatientName values of the files, long enough not to match by accident."""
    import pydicom

    found = set()
    for p in paths:
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True, force=True)
        except Exception:  # noqa: BLE001 - unreadable files have no identifiers to leak
            continue
        for value in (str(ds.get("PatientID", "") or ""), str(ds.get("PatientName", "") or "")):
            for part in {value, *value.split("^")}:
                part = part.strip()
                if len(part) >= 5 and not any(part in str(q) for q in paths):
                    found.add(part)
    return found


def test_import_and_labelling_session_logs_no_patient_identifier(tmp_path, dicom_samples, monkeypatch, capsys):
    """A whole session at DEBUG through the CLI and the use cases — import (good, duplicate and broken
    files, real samples) from a folder named after the patient, problems, features, labels from a CSV
    and one by one, undo, ranking, training, export, and failing commands whose messages quote
    patient-named paths (a label CSV line, a missing import folder, a non-empty export folder, a
    package) — with pydicom's own debug output on; the log holds none of the files' Patient IDs or
    names, nor the folder names; the messages on screen keep the paths."""
    import pydicom

    from aldesk.app.labelling import record_label, undo_label
    from aldesk.cli import main as cli
    from aldesk.store import Project

    logs.setup_logging(logging.DEBUG)
    monkeypatch.setattr(logs, "setup_logging", lambda level=logging.DEBUG: None)  # keep DEBUG for the CLI
    pydicom.config.debug(True)  # pydicom dumps tag values at DEBUG: they must not reach our file
    try:
        folder = tmp_path / "scans" / "SMITH_JOHN_7731942"
        rng = np.random.default_rng(0)
        ours = [write_dicom(folder / f"s{i:02d}.dcm", rng.integers(0, 4000, (32, 32)),
                            patient_id=f"MRN-7731{i:02d}", patient_name=f"Smithson^Eleanor{i:02d}")
                for i in range(12)]
        broken = folder / "broken.dcm"
        broken.write_bytes(ours[0].read_bytes()[:400])  # header with identifiers, pixels cut off
        (folder / "dup.dcm").write_bytes(ours[1].read_bytes())
        real = sorted((dicom_samples / "pydicom-test-files").rglob("*.dcm"))[:60]
        assert real, "no real samples found"
        proj = tmp_path / "project"
        labels_csv = tmp_path / "labels.csv"
        labels_csv.write_text("path,label\n" + "".join(f"s{i:02d}.dcm,{['normal', 'pneumonia'][i % 2]}\n"
                                                       for i in range(6)), encoding="utf-8")

        assert cli(["init", str(proj), "--classes", "normal,pneumonia"]) == 0
        assert cli(["import", str(proj), str(folder), "--jobs", "1", "--quiet", "--verbose"]) == 0
        assert cli(["import", str(proj), *map(str, real), "--jobs", "2", "--quiet"]) == 0
        assert cli(["problems", str(proj)]) == 0
        assert cli(["features", str(proj), "--jobs", "1", "--quiet"]) == 0
        assert cli(["label", str(proj), "--csv", str(labels_csv), "--annotator", "dr-reader"]) == 0
        with Project.open(proj) as project:
            scan_ids = [s.id for s in project.scans.rows(None)][6:12]
            last = None
            for k, sid in enumerate(scan_ids):
                last = record_label(project, sid, "dr-reader", ["normal", "pneumonia"][k % 2], note="looks fine")
            undo_label(project, last)
        assert cli(["rank", str(proj), "--batch", "5"]) == 0
        assert cli(["train", str(proj)]) == 0
        assert cli(["label", str(proj), "--csv", str(broken), "--annotator", "dr-reader"]) == 1  # logs an error
        bad_csv = tmp_path / "SMITH_JOHN_7731942-labels.csv"
        bad_csv.write_text("path,label\nSMITH_JOHN_12345/x.dcm,normal\nSMITH JOHN 7731942.dcm,normal\n"
                           "MRN7731942,normal\ns00.dcm,smithson\n", encoding="utf-8")
        capsys.readouterr()
        assert cli(["label", str(proj), "--csv", str(bad_csv), "--annotator", "dr-reader"]) == 1
        assert cli(["import", str(proj), str(tmp_path / "scans" / "DOE_JANE_5551234")]) == 1
        (tmp_path / "SMITH_JOHN_export").mkdir()
        (tmp_path / "SMITH_JOHN_export" / "x").write_text("taken")
        assert cli(["export", str(proj), str(tmp_path / "SMITH_JOHN_export"), "--format", "csv"]) == 1
        assert cli(["export", str(proj), str(tmp_path / "out"), "--format", "folders", "--quiet"]) == 0
        assert cli(["package", "import", str(proj), str(tmp_path / "SMITH_JOHN_7731942.aldpkg")]) == 1
        monkeypatch.chdir(tmp_path)
        assert cli(["package", "handout", str(proj), "SMITH_JOHN_export", "--annotator", "x", "--deidentified"]) == 1
        screen = capsys.readouterr().err
        assert "SMITH_JOHN_12345/x.dcm" in screen and "DOE_JANE_5551234" in screen  # the user sees the paths
    finally:
        pydicom.config.debug(False)

    for h in logging.getLogger("aldesk").handlers:
        h.flush()
    text = (tmp_path / "logs" / "aldesk.log").read_text(encoding="utf-8")
    assert "aldesk.cli: label failed" in text and "aldesk.cli: aldesk " in text  # the session was logged
    assert "line 2: '*/*.dcm': no imported scan has this path" in text  # where, without the names
    for folder_part in ("SMITH", "JOHN", "7731942", "DOE_JANE", "5551234", "12345"):
        assert folder_part not in text, folder_part
    secrets = _identifiers(ours + [broken] + real)
    assert {"MRN-773100", "Smithson", "Eleanor00"} <= secrets
    leaked = sorted(s for s in secrets if s in text)
    assert not leaked, f"patient identifiers in the log: {leaked[:5]}"


def test_every_line_of_the_file_is_redacted_tracebacks_included(tmp_path):
    """Not only the CLI's error line: any aldesk logger (the GUI's error reporter logs the exception
    and its traceback) goes through the redacting formatter."""
    from aldesk.errors import InvalidScanError

    path = logs.setup_logging()
    try:
        raise InvalidScanError("/data/SMITH_JOHN_7731942/img1.dcm", "truncated")
    except InvalidScanError as exc:
        logging.getLogger("aldesk.ui").exception("Import failed: %s", exc)
    logging.getLogger("aldesk.ui").warning("opened '%s'", "/data/SMITH JOHN/study")
    for h in logging.getLogger("aldesk").handlers:
        h.flush()
    text = path.read_text(encoding="utf-8")
    assert "Import failed: /*/*/*.dcm: truncated" in text and "opened '/*/*/*'" in text
    assert "SMITH" not in text and "7731942" not in text
    assert "Traceback (most recent call last)" in text and "InvalidScanError" in text
