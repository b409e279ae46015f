"""The one place the GUI tells the user that something failed (napari's notification manager, small).

Every worker's ``failed`` signal and every uncaught exception in a slot ends here: the user sees a
message that says what went wrong and what to do; the full traceback goes to the log file. Expected
failures (``AldeskError``) show their own message; anything else is shown as a bug to report.
"""

from __future__ import annotations

import logging
import sys
import traceback

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from aldesk.errors import AldeskError, CancelledError, storage_error

log = logging.getLogger("aldesk.ui")


def setup_logging() -> str:
    """Log to ``<log dir>/aldesk.log`` (rotating, see aldesk.app.logs); returns the path."""
    from aldesk.app.logs import setup_logging as setup

    return str(setup())


def describe(exc: BaseException) -> tuple[str, str]:
    """(text, informative text) for a message box: what happened, then what to do."""
    if isinstance(exc, AldeskError):
        return str(exc), ""
    disk = storage_error(exc)
    if disk is not None:  # full, read-only or not permitted: say where and what to free
        return str(disk), ""
    if isinstance(exc, (MemoryError,)):
        return "The computer ran out of memory.", "Close other programs or open a smaller project, then try again."
    if isinstance(exc, OSError):
        return f"A file could not be read or written: {exc}", "Check that the disk is connected and not full, and that you may write to the project folder."
    return (f"Unexpected error: {type(exc).__name__}: {exc}",
            "This is a bug in aldesk. Your labels are saved. Please report it with the log file "
            "(Help ▸ Open log folder).")


class ErrorReporter(QObject):
    """Shows failures to the user. ``reported`` lets tests and the status bar hear about them too."""

    reported = Signal(str, str)  # title, text

    def __init__(self, parent_widget: QWidget | None = None):
        super().__init__(parent_widget)
        self.parent_widget = parent_widget
        self.history: list[tuple[str, str]] = []

    def report(self, title: str, exc: BaseException | str) -> None:
        if isinstance(exc, CancelledError):
            return  # the user asked for it: not an error
        if isinstance(exc, str):
            text, info = exc, ""
            log.warning("%s: %s", title, text)
        else:
            text, info = describe(exc)
            tb = getattr(exc, "traceback_text", None) or "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__))
            log.error("%s: %s\n%s", title, exc, tb)
        self.history.append((title, text))
        self.reported.emit(title, text)
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self.parent_widget)
        if info:
            box.setInformativeText(info)
        box.exec()

    def install_excepthook(self) -> None:
        """Route exceptions escaping a slot here instead of only printing them on stderr."""
        previous = sys.excepthook

        def hook(exc_type, exc, tb):
            if issubclass(exc_type, KeyboardInterrupt):
                previous(exc_type, exc, tb)
                return
            exc.traceback_text = "".join(traceback.format_exception(exc_type, exc, tb))
            self.report("Something went wrong", exc)

        sys.excepthook = hook
