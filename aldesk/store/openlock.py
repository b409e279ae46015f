"""Who has a project open, and how many commits it has recorded: one small file, PROJECT/project.lock.

Every open ``Project`` holds a shared ``flock`` on this file for its whole life; a restore takes the
exclusive lock, so it can never swap the database under a session that would go on writing into the
replaced file. The kernel drops the lock when a process dies, so a crash leaves nothing stale.

The file also holds the commit counter: after every committed write the writer stores the counter it
just committed into ``meta`` (see ``Project.transaction``). On open, a database whose counter is below
the recorded one has lost committed transactions (its -wal file was deleted or damaged, or an older
copy was put in its place): that is reported, never ignored. The counter is written after the commit,
so it can lag the database (a crash between the two) but never lead it.

POSIX only (``fcntl``); elsewhere the lock is not taken and the counter is still kept.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = "project.lock"
_FORMAT = b"aldesk-commits %020d\n"
_SIZE = len(_FORMAT % 0)


class ProjectLock:
    """A shared (open) or exclusive (restore) hold on a project folder, plus its commit counter."""

    def __init__(self, folder: Path, fd: int | None, exclusive: bool):
        self.folder = folder
        self._fd = fd
        self.exclusive = exclusive

    @classmethod
    def acquire(cls, folder: Path, *, exclusive: bool = False, wait_s: float = 0.0,
                writable: bool = True) -> "ProjectLock | None":
        """The lock, or None when it is held incompatibly for longer than ``wait_s`` seconds.

        ``writable=False`` (read-only medium): opens an existing lock file read-only, or goes without."""
        path = folder / LOCK_NAME
        fd = None
        for flags in ((os.O_RDWR | os.O_CREAT,) if writable else ()) + (os.O_RDONLY,):
            try:
                fd = os.open(path, flags, 0o644)
                break
            except OSError:  # another user's file, a read-only medium: lock (and count) what we can
                continue
        if fd is None:
            return cls(folder, None, exclusive)
        if fcntl is None:
            return cls(folder, fd, exclusive)
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        end = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, mode)
                return cls(folder, fd, exclusive)
            except BlockingIOError:
                if time.monotonic() >= end:
                    os.close(fd)
                    return None
                time.sleep(0.02)
            except OSError:  # a file system without flock (some network shares): go on unguarded
                return cls(folder, fd, exclusive)

    def share(self) -> None:
        """Turn an exclusive hold into a shared one (after the housekeeping only a lone opener may do)."""
        if fcntl is not None and self._fd is not None and self.exclusive:
            fcntl.flock(self._fd, fcntl.LOCK_SH)
        self.exclusive = False

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    # ------------------------------------------------------------ commit counter
    def recorded_commits(self) -> int | None:
        """The counter written after the last commit, or None (new file, unreadable, or not ours)."""
        if self._fd is None:
            return None
        data = os.pread(self._fd, _SIZE, 0)
        if len(data) != _SIZE or not data.startswith(b"aldesk-commits "):
            return None
        try:
            return int(data[15:35])
        except ValueError:
            return None

    def record_commits(self, value: int) -> None:
        """Store the counter just committed (never lowers it: another writer may have recorded a newer one)."""
        if self._fd is None:
            return
        current = self.recorded_commits()
        if current is None or value > current:
            os.pwrite(self._fd, _FORMAT % value, 0)

    def reset_commits(self, value: int) -> None:
        """After a restore or an accepted loss: the database's counter becomes the recorded one."""
        if self._fd is not None:
            os.pwrite(self._fd, _FORMAT % value, 0)
            os.fsync(self._fd)


def read_recorded_commits(folder: Path) -> int | None:
    """The recorded counter without taking any lock (for ``doctor`` and tests)."""
    try:
        data = (folder / LOCK_NAME).read_bytes()[:_SIZE]
    except OSError:
        return None
    if len(data) != _SIZE or not data.startswith(b"aldesk-commits "):
        return None
    return int(data[15:35])
