"""atomic_output: an output appears whole or not at all; a disk error names the output."""

import errno

import pytest

from aldesk.app.outputs import atomic_output
from aldesk.errors import StorageError


def test_the_output_appears_only_when_complete(tmp_path):
    dest = tmp_path / "out" / "x.aldpkg"
    with atomic_output(dest) as tmp:
        tmp.write_bytes(b"abc")
        assert not dest.exists()
    assert dest.read_bytes() == b"abc" and not tmp.exists()


def test_a_full_disk_leaves_nothing_and_names_the_output(tmp_path):
    dest = tmp_path / "x.aldpkg"
    with pytest.raises(StorageError, match=r"x\.aldpkg: the disk is full"):
        with atomic_output(dest) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_other_errors_pass_through_and_leave_nothing(tmp_path):
    with pytest.raises(ValueError, match="boom"):
        with atomic_output(tmp_path / "y.csv") as tmp:
            tmp.write_text("x")
            raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []
