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


def test_import_and_labelling_session_logs_no_patient_identifier(tmp_path, dicom_samples, monkeypatch):
    """A whole session at DEBUG through the CLI and the use cases — import (good, duplicate and broken
    files, real samples), problems, features, labels from a CSV and one by one, undo, ranking, training,
    a failing command — with pydicom's own debug output on; the log holds none of the files'
    Patient IDs or names."""
    import pydicom

    from aldesk.app.labelling import record_label, undo_label
    from aldesk.cli import main as cli
    from aldesk.store import Project

    logs.setup_logging(logging.DEBUG)
    monkeypatch.setattr(logs, "setup_logging", lambda level=logging.DEBUG: None)  # keep DEBUG for the CLI
    pydicom.config.debug(True)  # pydicom dumps tag values at DEBUG: they must not reach our file
    try:
        folder = tmp_path / "scans"
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
    finally:
        pydicom.config.debug(False)

    for h in logging.getLogger("aldesk").handlers:
        h.flush()
    text = (tmp_path / "logs" / "aldesk.log").read_text(encoding="utf-8")
    assert "aldesk.cli: label failed" in text and "aldesk.cli: aldesk " in text  # the session was logged
    secrets = _identifiers(ours + [broken] + real)
    assert {"MRN-773100", "Smithson", "Eleanor00"} <= secrets
    leaked = sorted(s for s in secrets if s in text)
    assert not leaked, f"patient identifiers in the log: {leaked[:5]}"
