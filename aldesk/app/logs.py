"""Where aldesk writes its log: one rotating file in the platform's log folder.

Installed by both entry points (the GUI's ``run`` and the CLI's ``main``); idempotent. Plain stdlib
logging, no Qt. What it must never do: carry patient identifiers. The rule is on the callers —
no module logs a Patient ID or Patient Name (scans are named by project id or file path) — and
tests/packaging/test_logs.py checks a whole import + labelling session's log for the test files'
identifiers.
"""

from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

APP_NAME = "aldesk"
LOG_FILE = "aldesk.log"
MAX_BYTES = 2_000_000
BACKUP_COUNT = 5
FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


def log_dir() -> Path:
    """``$ALDESK_LOG_DIR`` when set (the tests set it), else platformdirs' user log folder."""
    env = os.environ.get("ALDESK_LOG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def log_path() -> Path:
    return log_dir() / LOG_FILE


def _ours(handler: logging.Handler) -> bool:
    return getattr(handler, "aldesk_log", False)


def setup_logging(level: int = logging.INFO) -> Path:
    """Send the ``aldesk`` loggers to ``<log dir>/aldesk.log`` (2 MB × 5 files); returns the path.

    Calling it again keeps one handler; a different ``$ALDESK_LOG_DIR`` moves it. A log folder that
    cannot be written (read-only profile) leaves logging off rather than stopping the app.
    """
    path = log_path()
    root = logging.getLogger(APP_NAME)
    for h in list(root.handlers):
        if _ours(h):
            if Path(h.baseFilename) == path.absolute():
                root.setLevel(level)
                return path
            root.removeHandler(h)
            h.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8")
    except OSError as exc:
        logging.getLogger(__name__).warning("no log file at %s: %s", path, exc)
        return path
    handler.aldesk_log = True
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    return path


def teardown_logging() -> None:
    """Remove and close our handler (tests, and the selftest's temporary log folder)."""
    root = logging.getLogger(APP_NAME)
    for h in list(root.handlers):
        if _ours(h):
            root.removeHandler(h)
            h.close()
