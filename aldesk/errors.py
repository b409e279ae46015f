"""One exception tree for aldesk, so the CLI and GUI can show any failure the same way.

Every message says what is wrong *and* what the user can do about it.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path


class AldeskError(Exception):
    """Base of every error aldesk raises on purpose."""


class InvalidScanError(AldeskError):
    """A file cannot become a scan.

    ``kind`` is ``"skipped"`` when the file is deliberately not imported (not an image,
    non-image DICOM, over the pixel limit, unsupported syntax) and ``"failed"`` when it looked
    importable but could not be read (truncated, corrupt, unreadable).  ``code`` is a short
    stable token (``"no-pixel-data"``, ``"truncated"``, ...) for reports and tests.
    """

    def __init__(self, path: str, reason: str, *, kind: str = "failed", code: str = "unreadable"):
        if kind not in ("skipped", "failed"):
            raise ValueError(f"kind == {kind!r}, must be 'skipped' or 'failed'")
        self.path = str(path)
        self.reason = reason
        self.kind = kind
        self.code = code
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # crosses process boundaries (import workers): rebuild with every field, not just the message
        return (_rebuild_invalid_scan_error, (self.path, self.reason, self.kind, self.code))


class ProjectError(AldeskError):
    """A project cannot be created, opened or changed as asked."""


class ProjectVersionError(ProjectError):
    """The project was written by a newer aldesk than this one."""


class NotAProjectError(ProjectError):
    """The path holds no aldesk project."""


class ProjectBusyError(ProjectError):
    """Another process holds the project; try again when it is done."""


class ProjectDamagedError(ProjectError):
    """The database is damaged or lost committed writes; the message names the way out (restore, doctor)."""


class FeatureError(AldeskError):
    """A feature extractor cannot be built or cannot turn these previews into vectors."""


class UnknownExtractorError(FeatureError):
    """No extractor is registered under the requested name."""


class ExtractorNotFittedError(FeatureError):
    """A learned extractor was asked to transform before it was fitted or given a state."""


class LearningError(AldeskError):
    """The model or a query strategy cannot run on the data as it is."""


class NotEnoughLabelsError(LearningError):
    """Training needs at least one label per class."""


class InputFileError(AldeskError):
    """A user-supplied file (CSV, answer key, package) is malformed; the message names the line."""


class CancelledError(AldeskError):
    """Work stopped because the user asked; everything finished so far is kept."""


class StorageError(AldeskError):
    """Writing failed because of the disk, not the data: full (ENOSPC, quota), read-only (EROFS) or not
    permitted (EACCES, EPERM). The message names the path, the disk and what to do; whatever was saved
    before is kept. ``reason`` is "full", "read-only" or "permission"."""

    def __init__(self, message: str, *, path: str | None = None, reason: str = "full"):
        super().__init__(message)
        self.path = path
        self.reason = reason


_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_READ_ONLY = {errno.EROFS}
_NO_PERMISSION = {errno.EACCES, errno.EPERM}
FREE_AT_LEAST = 200 * 2**20  # what to ask the user to free when nothing better is known


def storage_error(exc: BaseException, path: str | os.PathLike | None = None) -> StorageError | None:
    """The StorageError an ``OSError`` or ``sqlite3`` error stands for ("database or disk is full",
    errno 28/30/13...), or None when it is something else. ``path``: what was being written, when the
    exception does not say (SQLite never does)."""
    if isinstance(exc, StorageError):
        return exc
    for cause in _chain(exc)[1:]:  # e.g. zipfile's "can't close" ValueError raised over the ENOSPC behind it
        if isinstance(cause, (OSError, StorageError)) or type(cause).__module__ == "sqlite3":
            found = storage_error(cause, path) if _is_disk(cause) else None
            if found is not None:
                return found
    reason = None
    if isinstance(exc, OSError) and exc.errno is not None:
        reason = ("full" if exc.errno in _FULL else "read-only" if exc.errno in _READ_ONLY
                  else "permission" if exc.errno in _NO_PERMISSION else None)
        path = exc.filename or path
    elif type(exc).__module__ == "sqlite3":  # errors.py stays free of sqlite: recognise it by its text
        text = str(exc).lower()
        reason = ("full" if "disk is full" in text or "database or disk is full" in text
                  else "read-only" if "readonly database" in text or "read-only" in text else None)
    if reason is None:
        return None
    return StorageError(_storage_message(reason, path), path=None if path is None else str(path), reason=reason)


def _chain(exc: BaseException) -> list[BaseException]:
    out, seen = [], set()
    while exc is not None and id(exc) not in seen and len(out) < 8:
        out.append(exc)
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return out


def _is_disk(exc: BaseException) -> bool:
    if isinstance(exc, StorageError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _FULL | _READ_ONLY | _NO_PERMISSION
    text = str(exc).lower()
    return "disk is full" in text or "readonly database" in text


def _storage_message(reason: str, path) -> str:
    if path is not None and str(path).endswith((".writing", ".partial")):
        path = str(path).rsplit(".", 1)[0]  # name the output being written, not its temporary twin
    where = str(path) if path is not None else "a file"
    disk = _mount_point(path)
    on = f" (disk {disk})" if disk else ""
    if reason == "read-only":
        return (f"{where}: cannot be written, the disk is read-only{on}. Copy the project to a writable disk, "
                "or choose another folder for the output. Nothing already saved was lost.")
    if reason == "permission":
        return (f"{where}: cannot be written, permission denied{on}. Ask for write access to that folder, or "
                "choose another one. Nothing already saved was lost.")
    free = _free_bytes(disk)
    have = f"{_size(free)} free" if free is not None else "no space left"
    need = FREE_AT_LEAST
    if path is not None:
        project_db = _project_database(Path(path))
        if project_db is not None:  # a project write: SQLite may need room for its journal and checkpoint
            need = max(need, project_db.stat().st_size // 10)
    hint = ""
    project = _project_folder(Path(path)) if path is not None else None
    if project is not None:
        parts = []
        cache, backups = _folder_size(project / "cache"), _folder_size(project / "backups")
        if cache:
            parts.append(f"the project's cache/ ({_size(cache)}, rebuilt when needed) can be deleted")
        if backups:
            parts.append(f"its older backups/ ({_size(backups)} in all) can be moved elsewhere")
        hint = "; " + " and ".join(parts) if parts else ""
    return (f"{where}: the disk is full{on}, {have}. Free at least {_size(need)} on that disk{hint}, then try "
            "again. Nothing already saved was lost.")


def _mount_point(path) -> str | None:
    if path is None:
        return None
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        while not os.path.ismount(p) and p != p.parent:
            p = p.parent
    except OSError:
        return None
    return str(p)


def _free_bytes(mount: str | None) -> int | None:
    if mount is None:
        return None
    try:
        return shutil.disk_usage(mount).free
    except OSError:
        return None


def _project_folder(path: Path) -> Path | None:
    for p in (path, *path.parents):
        if (p / "project.sqlite").is_file():
            return p
    return None


def _project_database(path: Path) -> Path | None:
    folder = _project_folder(path)
    return folder / "project.sqlite" if folder is not None else None


def _folder_size(folder: Path) -> int:
    try:
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    except OSError:
        return 0


def _size(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _rebuild_invalid_scan_error(path: str, reason: str, kind: str, code: str) -> InvalidScanError:
    return InvalidScanError(path, reason, kind=kind, code=code)
