"""Folders written in full beside their final place (``.OUT.partial-PID``), and never left behind.

A folder being written (an export, which may hold identified DICOM copies) must not outlive the
process writing it if that process is killed: a tiny watcher process, started with the folder, waits
for the writer to close a pipe (as it finishes, or as the kernel closes it when the writer dies, even
by SIGKILL) and then deletes the folder if it is still there. A folder the watcher could not remove
(power loss, the watcher killed too) is removed by the next run aimed at the same place, once the
process named by its PID is gone. (A frozen bundle has no Python interpreter to run the watcher: there,
only that next-run clean-up applies.)
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from aldesk.store.backups import pid_alive

log = logging.getLogger("aldesk.partial")

# runs with -I -S (no site, no aldesk import): starts in ~20 ms; ignores the terminal's Ctrl-C
_WATCHER = ("import os, shutil, signal, sys\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "sys.stdin.buffer.read()\n"
            "shutil.rmtree(sys.argv[1], ignore_errors=True)\n")


def partial_name(out: Path, pid: int | None = None) -> Path:
    return out.with_name(f".{out.name}.partial-{os.getpid() if pid is None else pid}")


def remove_stale_partials(out: Path) -> list[Path]:
    """Delete ``.OUT.partial-PID`` folders beside ``out`` whose writer is gone (or is this process)."""
    removed = []
    if not out.parent.is_dir():
        return removed
    for p in out.parent.glob(f".{out.name}.partial-*"):
        try:
            pid = int(p.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if pid != os.getpid() and pid_alive(pid):
            continue  # another export to the same place is running right now
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


class PartialDir:
    """``PartialDir.create(out)``: a fresh, empty ``.OUT.partial-PID`` folder guarded by a watcher.

    Rename ``.path`` into place when complete, then ``close()`` (always: in a ``finally``)."""

    def __init__(self, path: Path, watcher: subprocess.Popen | None):
        self.path = path
        self._watcher = watcher

    @classmethod
    def create(cls, out: Path) -> "PartialDir":
        remove_stale_partials(out)
        path = partial_name(out)
        watcher = None
        if getattr(sys, "frozen", False):  # a bundle's executable is aldesk, not Python: the next run cleans up
            log.warning("no watcher in a frozen bundle for %s; a kill leaves it until the next export there", path)
        else:
            watcher = cls._start_watcher(path)  # the watcher first: a kill between the two leaves nothing
        path.mkdir()
        return cls(path, watcher)

    @staticmethod
    def _start_watcher(path: Path) -> subprocess.Popen | None:
        try:
            return subprocess.Popen([sys.executable, "-I", "-S", "-c", _WATCHER, str(path)],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True, close_fds=True)
        except OSError as exc:  # the next run aimed here removes it instead
            log.warning("no watcher for %s (%s); a kill would leave it until the next export there", path, exc)
            return None

    def close(self) -> None:
        """The writer is done (the folder was renamed into place, or removed): release the watcher,
        which removes whatever is still at ``.path``."""
        if self._watcher is None:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        try:
            self._watcher.stdin.close()
            self._watcher.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log.warning("the watcher of %s did not finish", self.path)
        self._watcher = None
