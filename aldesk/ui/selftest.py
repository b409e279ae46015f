"""The GUI step of ``aldesk selftest``: the main window on a project, offscreen, for a moment.

aldesk.main hands :func:`open_main_window` to the CLI's selftest (the CLI never imports Qt).
"""

from __future__ import annotations

from pathlib import Path


def open_main_window(project_path: Path) -> str:
    """Open the project in the main window, show its first scan, close; a one-line description."""
    from PySide6.QtCore import QDeadlineTimer, QEventLoop
    from PySide6.QtWidgets import QApplication

    from aldesk.ui.app import create_app
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings

    app = create_app()
    window = MainWindow(Settings(), "selftest", retrain_on_open=False)
    try:
        window.show()
        if not window.open_project(project_path):
            raise RuntimeError(f"the main window could not open {project_path}")
        deadline = QDeadlineTimer(10_000)
        while window.current_scan_id is None and not deadline.hasExpired():
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if window.current_scan_id is None:
            raise RuntimeError("the main window showed no scan within 10 s")
        n_rows = window.queue_model.rowCount()
        platform = QApplication.platformName()
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()
    return f"Qt platform {platform}, {n_rows} scans in the queue"
