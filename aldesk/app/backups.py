"""Backups as the user sees them: take one, restore one, and the scheduled backup after writes.

The scheduled backup is taken *after* a session's writes (at the end of a writing command, when the
GUI closes a project, or by the GUI's worker after opening one that changed since its newest backup),
so "latest" holds the day's labels. It runs in a detached background process, never in the path of
anything a user waits on; that process holds the project open for the seconds it takes (a restore asked
meanwhile is refused with a clear message and can be retried).

    python -m aldesk.app.backups PROJECT     # the background body: back up if due, else nothing
    aldesk backup PROJECT --if-due           # the same from the command line (and a frozen bundle)
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from aldesk.app.callbacks import Progress, ShouldStop, never_stop, no_progress
from aldesk.errors import AldeskError
from aldesk.store import Project
from aldesk.store.backups import RestoreResult, list_backups, restore_backup

log = logging.getLogger("aldesk.backups")
NO_BACKGROUND_ENV = "ALDESK_NO_BACKGROUND_BACKUP"   # "1": never start one (the test suite sets it)


def start_background_backup(path: str | os.PathLike) -> subprocess.Popen | None:
    """Start ``python -m aldesk.app.backups PROJECT`` detached (it outlives this process, ignores Ctrl-C
    sent to the terminal) and return at once. None when switched off by ``ALDESK_NO_BACKGROUND_BACKUP``."""
    if os.environ.get(NO_BACKGROUND_ENV) == "1":
        return None
    project = str(Path(path).resolve())
    # a frozen bundle's executable is aldesk itself, not a Python interpreter
    argv = ([sys.executable, "backup", project, "--if-due"] if getattr(sys, "frozen", False)
            else [sys.executable, "-m", "aldesk.app.backups", project])
    return subprocess.Popen(argv,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


def back_up_after_writes(project: Project, commits_at_open: int) -> subprocess.Popen | None:
    """Called as a session ends (project still open): start the background backup when the session
    wrote and a scheduled backup is due. Cheap: reads a counter and the newest backup's header."""
    try:
        if project.status.readonly or project.status.damaged or project.commits() == commits_at_open:
            return None
        if not project.backup_due():
            return None
    except AldeskError as exc:
        log.warning("scheduled backup not checked: %s", exc)
        return None
    return start_background_backup(project.path)


def restore(path: str | os.PathLike, backup: str | os.PathLike | None = None, *,
            progress: Progress = no_progress, should_stop: ShouldStop = never_stop) -> RestoreResult:
    """Restore ``backup`` (or the newest complete one) and check the result opens cleanly. Previews the
    side store lacked are made again from the scans' files where they still exist."""
    from aldesk.app.previews import rebuild_missing_previews

    result = restore_backup(path, backup)
    with Project.open(path) as project:
        project.integrity_check()
        if result.previews_missing:
            result.previews_rebuilt, _ = rebuild_missing_previews(project, progress=progress, should_stop=should_stop)
    return result


_FLIGHT: list = []  # the open lock file while this process backs up


def _single_flight(project: Path) -> bool:
    """True for the one background backup of a project running now (several commands ending together
    each start one; the others leave at once)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return True
    folder = project / "backups"
    try:
        folder.mkdir(exist_ok=True)
        fh = open(folder / ".scheduled.lock", "a")
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True
    _FLIGHT.append(fh)
    return True


def main(argv: list[str] | None = None) -> int:
    from aldesk.app.logs import setup_logging

    argv = sys.argv[1:] if argv is None else argv
    setup_logging()
    from aldesk.app.projects import scheduled_backup

    if not _single_flight(Path(argv[0])):
        return 0  # another background backup of this project is running: one is enough
    try:
        made = scheduled_backup(argv[0])
    except AldeskError as exc:
        log.error("scheduled backup of %s failed: %s", argv[0], exc)
        return 1
    finally:
        while _FLIGHT:
            _FLIGHT.pop().close()
    if made is not None:
        log.info("scheduled backup written: %s (%d kept)", made.name, len(list_backups(argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
