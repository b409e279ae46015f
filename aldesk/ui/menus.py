"""The main window's menu bar. Every menu entry calls a window, controller or package_actions method;
nothing is decided here. Shortcuts of viewing actions belong to ViewerControls, of label actions to
the LabellingController; a key has one owner only (tests/ui/test_shortcut_owners.py walks them all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QUrl
from PySide6.QtGui import QActionGroup, QDesktopServices, QKeySequence

from aldesk.ui import package_actions
from aldesk.ui.settings import log_dir

if TYPE_CHECKING:
    from aldesk.ui.main_window import MainWindow


def build_menus(win: MainWindow) -> None:
    """Fill ``win.menuBar()``; sets the ``act_*`` and ``*_menu`` attributes the window uses later."""
    mb = win.menuBar()
    m = mb.addMenu("&File")
    # Ctrl+N is the note (the key the label panel teaches); a new project is rare: Ctrl+Shift+N
    m.addAction("&New project…", QKeySequence("Ctrl+Shift+N"), win.new_project_dialog)
    m.addAction("&Open project…", QKeySequence.StandardKey.Open, win.open_project_dialog)
    win.recent_menu = m.addMenu("Open &recent")
    win.recent_menu.aboutToShow.connect(win._fill_recent_menu)
    m.addAction("Open &demo project", win.open_demo)
    m.addSeparator()
    win.act_import = m.addAction("&Import folder…", QKeySequence("Ctrl+I"), win.import_dialog)
    m.addSeparator()  # labels out and in: aldesk.ui.package_actions (export, packages)
    win.act_export = m.addAction("&Export labelled set…", QKeySequence("Ctrl+E"),
                                 lambda: package_actions.export_labelled_set_dialog(win))
    m.addAction("Export annotation &package…", lambda: package_actions.export_package_dialog(win))
    m.addAction("&Merge annotation package…", lambda: package_actions.import_package_dialog(win))
    m.addAction("&Hand out to a reader…", lambda: package_actions.handout_dialog(win))
    m.addSeparator()
    m.addAction("Switch &reader…", win.switch_annotator_dialog)
    m.addSeparator()
    m.addAction("&Quit", QKeySequence.StandardKey.Quit, win.close)

    m = mb.addMenu("&Label")
    win.act_undo = m.addAction("&Undo last label", win.labelling.undo_last)
    win.act_undo.setObjectName("undo")      # key from Settings.key_bindings
    win.act_next = m.addAction("&Next scan to label", QKeySequence("N"), win.labelling.show_next)
    m.addAction("Write a &note", QKeySequence("Ctrl+N"), win.labelling.focus_note)
    win.act_prediction = m.addAction("Show the model's &guess")
    win.act_prediction.setObjectName("prediction")  # key from Settings.key_bindings
    win.act_prediction.setCheckable(True)
    win.act_prediction.toggled.connect(win._on_prediction_action_toggled)
    m.addSeparator()
    m.addAction("&Key bindings…", win.edit_key_bindings)

    m = mb.addMenu("&View")
    for act in win.viewer_controls.view_actions:
        m.addAction(act)
    m.addSeparator()
    m.addAction(win.viewer_controls.act_overlay)
    m.addAction(win.viewer_controls.act_smooth)
    win.act_dashboard = m.addAction("&Dashboard")
    win.act_dashboard.setCheckable(True)
    win.act_dashboard.setShortcut(QKeySequence("Ctrl+D"))
    win.act_dashboard.toggled.connect(win._on_dashboard_toggled)
    themes = m.addMenu("&Theme")
    group = QActionGroup(win)
    for name in ("dark", "light"):
        act = themes.addAction(name.capitalize())
        act.setCheckable(True)
        act.setChecked(name == win.settings.theme)
        act.triggered.connect(lambda _c=False, n=name: win.set_theme(n))
        group.addAction(act)

    m = mb.addMenu("&Model")
    m.addAction("&Retrain and re-rank now", QKeySequence("Ctrl+R"), lambda: win.request_retrain("asked"))
    m.addAction("Retrain &every … labels", win.retrain_every_dialog)
    win.strategy_menu = m.addMenu("Query &strategy")
    win.strategy_menu.aboutToShow.connect(win._fill_strategy_menu)
    win.strategy_menu.setToolTipsVisible(True)

    m = mb.addMenu("&Review")
    m.addAction("&Disputed scans (adjudication)…", QKeySequence("Ctrl+Shift+R"), lambda: win.show_review("review"))
    m.addAction("&Agreement between readers…", QKeySequence("Ctrl+Shift+A"), lambda: win.show_review("agreement"))
    m.addSeparator()
    m.addAction("Readers and &roles…", win.manage_roles)

    m = mb.addMenu("&Help")
    m.addAction("&Keyboard shortcuts", win.show_shortcuts)
    m.addAction("&Tour of the keys", win.show_tour)
    m.addAction("About the &demo scans", win.show_demo_attribution)
    m.addAction("Open &log folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_dir()))))
    m.addAction("&About / diagnostics…", win.show_about)
