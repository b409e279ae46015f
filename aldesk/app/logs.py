"""Where aldesk writes its log: one rotating file in the platform's log folder.

Installed by both entry points (the GUI's ``run`` and the CLI's ``main``); idempotent. Plain stdlib
logging, no Qt. What it must never do: carry patient identifiers. No module logs a Patient ID or
Patient Name (scans are named by their project id), and since file and folder names are identifiers
too (``SMITH_JOHN_7731942/img1.dcm``), every line is passed through :func:`redact` on its way to the
file: each component of every path in it (absolute, relative, quoted, Windows, or a bare file name)
becomes ``*``, keeping only separators and the file extension (``'*/*.dcm': no imported scan has
this path``). Error messages keep their full paths on screen; only the log is masked. Paths inside
aldesk's own code and the Python installation (tracebacks) are kept. tests/packaging/test_logs.py
checks a whole session's log for the test files' identifiers and folder names.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

APP_NAME = "aldesk"
LOG_FILE = "aldesk.log"
MAX_BYTES = 2_000_000
BACKUP_COUNT = 5
FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


_EXTENSIONS = ("dcm", "dicom", "dic", "ima", "img", "png", "jpg", "jpeg", "tif", "tiff", "bmp", "gif", "csv", "tsv",
               "json", "txt", "aldpkg", "npz", "npy", "zip", "onnx", "sqlite", "db", "xlsx", "nii", "gz")
# a quoted string holding a separator or ending in a known extension (spaces allowed); or a path: from its start (/, ~/, ./, ../, C:\, \\server) to a terminator (quote, ": ", ", ", ";", a
# bracket, end of line), spaces allowed inside (folder names often have them); or a token holding a
# separator between two names; or a bare file name with a scan / data extension
_PATH = re.compile(
    r"""(?P<quoted>(?<=')[^'\n]*(?:[/\\][^'\n]*|\.(?:""" + "|".join(_EXTENSIONS) + r"""))(?=')"""
    r"""|(?<=")[^"\n]*(?:[/\\][^"\n]*|\.(?:""" + "|".join(_EXTENSIONS) + r"""))(?="))"""
    r"""|(?P<abs>(?:(?<=^)|(?<=[\s'"(\[=<,]))(?:~|\.{1,2})?[/\\](?![/\\\s])(?:[^'"\n:;,()\[\]<>]|:(?!\s)|,(?!\s))+"""
    r"""|(?:(?<=^)|(?<=[\s'"(\[=<,]))[A-Za-z]:[/\\](?:[^'"\n:;,()\[\]<>]|:(?!\s)|,(?!\s))*)"""
    r"""|(?P<rel>[^\s'"()\[\]<>:;,=]+[/\\][^\s'"()\[\]<>:;,]+)"""
    r"""|(?P<file>[^\s'"()\[\]<>:;,=/\\]+\.(?:""" + "|".join(_EXTENSIONS) + r""")\b)""",
    re.IGNORECASE)
_KEEP_ROOTS = tuple(sorted({os.path.normcase(os.path.abspath(p)) for p in (
    Path(__file__).resolve().parents[1], sys.prefix, sys.base_prefix, sys.exec_prefix)}, key=len, reverse=True))


def _mask(path: str) -> str:
    if re.fullmatch(r"[\d./\\ ]+", path):
        return path  # 70/15/15, 12/100: numbers, not a path
    trimmed = path.rstrip(" .")
    tail = path[len(trimmed):]
    if os.path.normcase(os.path.abspath(os.path.expanduser(trimmed))).startswith(_KEEP_ROOTS) and \
            os.path.isabs(os.path.expanduser(trimmed)):
        return path  # aldesk's code or Python's (a traceback): no patient data, needed to debug
    parts = re.split(r"([/\\])", trimmed)
    out = []
    for i, part in enumerate(parts):
        if part in ("/", "\\", "", "~", ".", "..") or (i == 0 and re.fullmatch(r"[A-Za-z]:", part)):
            out.append(part)
        elif i == len(parts) - 1 and "." in part.strip(".") and len(part.rsplit(".", 1)[1]) <= 6:
            out.append("*." + part.rsplit(".", 1)[1])
        else:
            out.append("*")
    return "".join(out) + tail


_CSV_LINE_PATH = re.compile(r"""(?<=line )(\d+: )(['"])([^'"\n]*)\2""")


def redact(text: str, known: tuple[str, ...] | list[str] = ()) -> str:
    """``text`` with every file-system path masked component by component (see the module docstring).

    known : paths the caller knows are in play (a command's arguments), masked wherever they appear
        even without a separator or extension (``SMITH_JOHN: does not exist``).

    >>> redact("/data/SMITH_JOHN_7731942/img1.dcm: cannot be read")
    '/*/*/*.dcm: cannot be read'
    """
    for path in sorted({k for k in known if k and len(k) >= 3}, key=len, reverse=True):
        text = text.replace(path, _mask(path))
    # a label CSV's line quotes its path first: "line 2: 'SMITH_JOHN': no imported scan has this path"
    text = _CSV_LINE_PATH.sub(lambda m: f"{m.group(1)}{m.group(2)}{_mask(m.group(3))}{m.group(2)}", text)
    return _PATH.sub(lambda m: _mask(m.group(0)), text)


class RedactingFormatter(logging.Formatter):
    """The log file's formatter: the whole line, traceback included, through :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


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
    handler.setFormatter(RedactingFormatter(FORMAT))
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
