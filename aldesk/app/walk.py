"""Walk import folders: every file once, symlink loops and undecodable names reported, never followed forever."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class FoundFile:
    abspath: str
    relpath: str  # POSIX-style, relative to the walk's root
    size: int
    mtime: float


@dataclass(frozen=True)
class WalkProblem:
    abspath: str
    relpath: str
    code: str
    reason: str


def _printable(path: str) -> str:
    """A path that is safe to show and store even when its bytes are not UTF-8."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def walk_files(root: str, start: str | None = None) -> Iterator[FoundFile | WalkProblem]:
    """Yield every regular file under ``start`` (default ``root``), in sorted order, with relpaths to ``root``.

    Symbolic links are followed (hospital exports often use them) but a link back into a folder already
    on the current path is reported as a loop instead of walked again.
    """
    start = start or root

    def rel(path: str) -> str:
        return os.path.relpath(path, root).replace(os.sep, "/")

    if os.path.isfile(start):
        yield from _file_entry(start, rel(start))
        return

    def walk(folder: str, ancestors: frozenset) -> Iterator[FoundFile | WalkProblem]:
        try:
            st = os.stat(folder)
            key = (st.st_dev, st.st_ino)
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield WalkProblem(_printable(folder), _printable(rel(folder)), "unreadable",
                              f"folder cannot be read ({exc.strerror}); check its permissions")
            return
        ancestors = ancestors | {key}
        for entry in entries:
            path = entry.path
            if not _is_utf8(entry.name):
                yield WalkProblem(_printable(path), _printable(rel(path)), "bad-name",
                                  "file name is not valid UTF-8; rename it (e.g. with convmv) and import again")
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError as exc:
                yield WalkProblem(path, rel(path), "unreadable", f"cannot be examined ({exc.strerror})")
                continue
            if is_dir:
                if entry.is_symlink():
                    try:
                        target = os.stat(path)
                    except OSError as exc:
                        yield WalkProblem(path, rel(path), "broken-link", f"link cannot be followed ({exc.strerror})")
                        continue
                    if (target.st_dev, target.st_ino) in ancestors:
                        yield WalkProblem(path, rel(path), "link-loop",
                                          "symbolic link loops back to a folder that contains it; not followed")
                        continue
                yield from walk(path, ancestors)
            else:
                yield from _file_entry(path, rel(path), entry)

    yield from walk(start, frozenset())


def _file_entry(path: str, relpath: str, entry: os.DirEntry | None = None) -> Iterator[FoundFile | WalkProblem]:
    try:
        st = os.stat(path)
    except OSError as exc:
        code = "broken-link" if os.path.islink(path) else "unreadable"
        yield WalkProblem(path, relpath, code, f"cannot be opened ({exc.strerror}); the link target is missing"
                          if code == "broken-link" else f"cannot be examined ({exc.strerror})")
        return
    if not stat.S_ISREG(st.st_mode):
        yield WalkProblem(path, relpath, "not-a-file", "not a regular file (device, socket or pipe); skipped")
        return
    yield FoundFile(path, relpath, st.st_size, st.st_mtime)
