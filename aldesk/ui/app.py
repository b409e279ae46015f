"""Start the desktop app: QApplication, theme, settings, reader identity, the main window.

``run(project=None, demo=False)`` is what ``aldesk``, ``aldesk gui [PROJECT]`` and ``aldesk demo``
call (routing lives in aldesk.main). Returns the process exit code.
"""

from __future__ import annotations

import os
import sys

from aldesk.ui.settings import Settings, resources_dir

EXIT_NO_DISPLAY = 2


def has_display() -> bool:
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


GC_THRESHOLDS = (50_000, 50, 100)


def calm_garbage_collector() -> None:
    """A full garbage collection walks every tracked object while holding the GIL, in whichever thread
    triggers it: with a 100k-scan project loaded, a retrain's allocations set off walks of 100-300 ms that
    froze the GUI (measured in tests/benchmarks/bench_ui.py). Objects alive at start-up (modules, Qt
    wrappers) are moved out of the collector's sight (``gc.freeze``) and collections are made rarer."""
    import gc

    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(argv: list[str] | None = None, theme: str = "dark"):
    from PySide6.QtWidgets import QApplication

    from aldesk.ui.theme import apply_theme

    # Background threads (retraining, decoding) hand the GIL back to the GUI thread within 1 ms
    # instead of Python's default 5 ms: each store call on a key press releases and retakes it.
    sys.setswitchinterval(0.001)
    calm_garbage_collector()
    app = QApplication.instance() or QApplication(argv or ["aldesk"])
    app.setApplicationName("aldesk")
    app.setOrganizationName("aldesk")
    app.setDesktopFileName("aldesk")  # matches packaging/aldesk.desktop on Linux
    icon = resources_dir() / "icons" / "aldesk.svg"
    if icon.is_file():
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon)))
    apply_theme(app, theme)
    return app


def run(project: str | None = None, *, demo: bool = False) -> int:
    if not has_display():
        print("aldesk: no display found (DISPLAY is not set). Run the GUI on a desktop, "
              "or use the command line: aldesk --help", file=sys.stderr)
        return EXIT_NO_DISPLAY
    from aldesk.ui.messages import setup_logging

    setup_logging()
    settings = Settings.load()
    app = create_app(theme=settings.theme)

    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.project_dialogs import ask_annotator, default_annotator

    if not settings.annotator:
        name = ask_annotator(None, [], default_annotator())
        settings.annotator = name or default_annotator()
        settings.save()
    window = MainWindow(settings, settings.annotator)
    window.errors.install_excepthook()
    window.show()
    if project is not None:
        window.open_project(project)
    elif demo or not settings.recent_projects:
        window.open_demo()
    else:
        window.open_project(settings.recent_projects[0])
    window.maybe_show_tour()
    return app.exec()
