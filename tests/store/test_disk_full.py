"""A full, read-only or forbidden disk is a message naming the path and what to free, never a traceback;
partial outputs are removed and the project stays consistent.

The end-to-end tests run on a real 3 MB tmpfs (root only: skipped, saying so, elsewhere); the mapping is
tested on constructed errors."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest

from aldesk.cli import main
from aldesk.errors import StorageError, storage_error
from aldesk.store import Project


@pytest.mark.parametrize("exc, reason, match", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/out/x.aldpkg.writing"), "full",
     r"/data/out/x\.aldpkg: the disk is full .*Free at least .* on that disk"),
    (OSError(errno.EROFS, "Read-only file system", "/media/cd/p"), "read-only",
     r"/media/cd/p: cannot be written, the disk is read-only.*Copy the project to a writable disk"),
    (PermissionError(errno.EACCES, "Permission denied", "/srv/share/out"), "permission",
     r"/srv/share/out: cannot be written, permission denied.*Ask for write access"),
    (sqlite3.OperationalError("database or disk is full"), "full", r"/p: the disk is full"),
])
def test_disk_errors_become_messages(exc, reason, match):
    err = storage_error(exc, "/p")
    assert isinstance(err, StorageError) and err.reason == reason
    with pytest.raises(StorageError, match=match):
        raise err


def test_other_errors_are_not_disk_errors():
    assert storage_error(OSError(errno.ENOENT, "No such file", "/x")) is None
    assert storage_error(sqlite3.OperationalError("no such table: x")) is None
    assert storage_error(ValueError("x")) is None


def test_cli_reports_an_unexpected_disk_error_without_traceback(tmp_path, capsys, monkeypatch):
    """Simulated (monkeypatched) ENOSPC in a command: one line naming the path, exit code 1."""
    from aldesk.cli import learning_commands

    Project.create(tmp_path / "p", ["a", "b"]).close()

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "p" / "cache" / "x.npy"))

    monkeypatch.setattr(learning_commands, "cmd_train", full)
    assert main(["train", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert "the disk is full" in err and "Traceback" not in err and str(tmp_path / "p") in err


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (root only)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the mapping is tested with constructed errors above")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _pngs(folder: Path, n: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (128, 128), dtype=np.uint8)).save(folder / f"s{i:03d}.png")
    return folder


def test_import_onto_a_full_disk_is_a_message_and_keeps_the_project(small_disk, tmp_path, capsys):
    project = small_disk / "p"
    assert main(["init", str(project), "--classes", "normal,pneumonia"]) == 0
    scans = _pngs(tmp_path / "scans", 400)  # ~19 KB of preview each: more than the disk holds
    assert main(["import", str(project), str(scans), "--jobs", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "the disk is full" in err and str(small_disk) in err and "Traceback" not in err
    with Project.open(project) as p:
        assert p.integrity_check() == "ok"
        imported = p.scans.count()
    assert 0 < imported < 400  # the batches written before the disk filled are kept, whole


def test_package_export_onto_a_full_disk_leaves_no_partial_file(small_disk, tmp_path, capsys):
    with Project.create(tmp_path / "p", ["normal", "pneumonia"]) as p:
        from tests.store.test_label_cost import _add_scans

        ids = _add_scans(p, 3000)
        reader = p.labels.annotator_id("dr_a")
        p.labels.add_many([{"scan_id": s, "annotator_id": reader, "value": "normal",
                            "note": uuid.uuid4().hex * 8} for s in ids], source="test")
    (small_disk / "filler").write_bytes(os.urandom(3_100_000))  # leave ~45 KB: the package needs more
    out = small_disk / "x.aldpkg"
    rc = main(["package", "export", str(tmp_path / "p"), str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "the disk is full" in err and "x.aldpkg" in err and "Traceback" not in err
    assert sorted(f.name for f in small_disk.iterdir()) == ["filler"]
