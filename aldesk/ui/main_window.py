"""The labelling workstation: queue on the left, the scan in the middle, labelling on the right.

Every action calls the same use cases as the CLI (aldesk.app). Labels are recorded on the GUI
thread (a durable commit costs ~0.2 ms) so "Saved" is only shown after the store committed;
decoding, importing and retraining run in workers with their own Project connections. Retraining
starts after every ``retrain_every`` new labels (project setting); a newer request supersedes a
running one and only the newest result is shown. Failures go to one ErrorReporter.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSlider,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QWidget,
)

from aldesk.app import labelling, worklist as worklists
from aldesk.errors import AldeskError
from aldesk.store import Project
from aldesk.ui import package_actions
from aldesk.ui.decoding import FrameCache
from aldesk.ui.label_panel import LabelPanel
from aldesk.ui.messages import ErrorReporter
from aldesk.ui.queue_model import ScanQueueModel
from aldesk.ui.queue_panel import QueuePanel
from aldesk.ui.settings import Settings, log_dir
from aldesk.ui.viewer import ScanViewer
from aldesk.ui.workers import LatestOnly, run_in_pool

PREFETCH = 3


def strategy_descriptions() -> dict[str, str]:
    """name -> one-line explanation, from the learning engine's registry (imported when first needed)."""
    from aldesk.learning.strategies import DESCRIPTIONS, STRATEGY_NAMES

    return {name: DESCRIPTIONS.get(name, "") for name in STRATEGY_NAMES}


def retrain_body(project_path: str, annotator: str, strategy: str, retrain: bool = True):
    """Worker body: refresh the work list on the worker's own Project connection."""

    def body(progress, should_stop):
        with Project.open(project_path) as project:
            return worklists.refresh_worklist(project, annotator, strategy=strategy, retrain=retrain,
                                              progress=progress, should_stop=should_stop)

    return body


def backup_body(project_path: str):
    def body(progress, should_stop):
        from aldesk.app.projects import scheduled_backup

        return scheduled_backup(project_path)

    return body


def missing_body(project_path: str):
    def body(progress, should_stop):
        from aldesk.app.projects import missing_scans

        with Project.open(project_path) as project:
            return np.array([sid for sid, _ in missing_scans(project)], dtype=np.int64)

    return body


class MainWindow(QMainWindow):
    scan_shown = Signal(int)
    label_saved = Signal(int, str)          # scan id, value — emitted after the store committed
    label_undone = Signal(int)
    worklist_applied = Signal(object)
    project_opened = Signal(str)

    def __init__(self, settings: Settings | None = None, annotator: str | None = None,
                 project_path: str | os.PathLike | None = None, *, retrain_on_open: bool = True):
        super().__init__()
        self.settings = settings or Settings.load()
        self.annotator = annotator or self.settings.annotator or "reader"
        self.project: Project | None = None
        self.worklist: worklists.Worklist | None = None
        self.current_scan_id: int | None = None
        self.retrain_on_open = retrain_on_open
        self._shown_at = time.monotonic()
        self._undo: list[tuple[int, str]] = []
        self._labels_since_retrain = 0
        self._session_labels = 0
        self._jobs: list = []
        self._closing = False

        self.setWindowTitle("aldesk")
        self.errors = ErrorReporter(self)
        self.frame_cache = FrameCache(self)
        self.frame_cache.decoded.connect(self._on_frame_cache_decoded)
        self.frame_cache.decode_failed.connect(self._on_frame_cache_failed)
        self.retrainer = LatestOnly("retrain", self)
        self.retrainer.started.connect(self._on_retrainer_started)
        self.retrainer.progress.connect(self._on_retrainer_progress)
        self.retrainer.finished.connect(self._on_retrainer_finished)
        self.retrainer.failed.connect(self._on_retrainer_failed)
        self.retrainer.idle.connect(self._on_retrainer_idle)

        self.viewer = ScanViewer()
        self.viewer.view_changed.connect(self._sync_view_controls)
        self.viewer.frame_changed.connect(self._on_viewer_frame_changed)
        self.viewer.painted.connect(self._on_viewer_painted)
        self._prefetch_pending = False
        self.queue_model = ScanQueueModel(None, self)
        self.queue_panel = QueuePanel(self.queue_model)
        self.queue_panel.scan_activated.connect(self._on_queue_scan_activated)
        self.queue_panel.filter_changed.connect(self._on_queue_filter_changed)
        self.label_panel = LabelPanel([])
        self._label_slot = QStackedWidget()
        self._label_slot.addWidget(self.label_panel)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.center = QStackedWidget()
        self.center.addWidget(self.viewer)
        self.dashboard = None  # built on first use (matplotlib loads then)
        self.splitter.addWidget(self.queue_panel)
        self.splitter.addWidget(self.center)
        self.splitter.addWidget(self._label_slot)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([380, 900, 280])
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)

        self._build_status_bar()
        self._build_toolbar()
        self._build_menus()
        self._build_shortcuts()
        self._install_label_panel([])
        self.resize(1600, 960)
        if self.settings.geometry:
            self.restoreGeometry(QByteArray.fromBase64(self.settings.geometry.encode()))
        if project_path is not None:
            self.open_project(project_path)
        else:
            self.viewer.clear("Open or create a project (File menu), or try the demo project.")

    # ================================================================== building
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.model_status = QLabel("No model yet")
        self.model_status.setToolTip("Model version · labels used · cross-validated accuracy and calibration error (ECE)")
        self.progress_bar = QProgressBar()
        self.progress_bar.setFixedWidth(160)
        self.progress_bar.setVisible(False)
        self.progress_label = QLabel("")
        self.reader_status = QLabel("")
        bar.addPermanentWidget(self.progress_label)
        bar.addPermanentWidget(self.progress_bar)
        bar.addPermanentWidget(self.model_status)
        bar.addPermanentWidget(self.reader_status)

    def _build_toolbar(self) -> None:
        tb = QToolBar("Viewer")
        tb.setObjectName("ViewerToolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.act_fit = QAction("Fit", self, shortcut=QKeySequence("F"), toolTip="Fit the scan to the window (F)")
        self.act_fit.triggered.connect(self.viewer.fit)
        self.act_actual = QAction("1:1", self, shortcut=QKeySequence("O"), toolTip="One image pixel per screen pixel (O)")
        self.act_actual.triggered.connect(self.viewer.actual_size)
        self.act_invert = QAction("Invert", self, shortcut=QKeySequence("I"), checkable=True, toolTip="Invert grey levels (I)")
        self.act_invert.toggled.connect(self.viewer.set_invert)
        self.act_reset = QAction("Reset", self, shortcut=QKeySequence("R"),
                                 toolTip="Default window, no inversion, first frame, fitted (R)")
        self.act_reset.triggered.connect(self._on_reset_triggered)
        for act in (self.act_fit, self.act_actual, self.act_invert, self.act_reset):
            tb.addAction(act)
        tb.addSeparator()
        tb.addWidget(QLabel("Window"))
        self.preset_box = QComboBox()
        self.preset_box.setMinimumWidth(190)
        self.preset_box.setToolTip("Window/level presets (keys F2…F8); right-drag on the image for any window")
        self.preset_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.preset_box.activated.connect(self._on_preset_box_activated)
        tb.addWidget(self.preset_box)
        tb.addSeparator()
        self.frame_caption = QLabel("Frame")
        self.frame_slider = QSlider(Qt.Orientation.Horizontal)
        self.frame_slider.setFixedWidth(220)
        self.frame_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.frame_slider.setToolTip("Frame (PageUp/PageDown or Up/Down)")
        self.frame_slider.valueChanged.connect(self.viewer.set_frame)
        self.frame_caption_action = tb.addWidget(self.frame_caption)
        self.frame_slider_action = tb.addWidget(self.frame_slider)
        self.frame_caption_action.setVisible(False)
        self.frame_slider_action.setVisible(False)
        spacer = QWidget()
        spacer.setSizePolicy(spacer.sizePolicy().horizontalPolicy().Expanding, spacer.sizePolicy().verticalPolicy())
        tb.addWidget(spacer)
        self.hint = QLabel("1–9 label · U unsure · S skip · Ctrl+Z undo · right-drag W/L · wheel zoom")
        tb.addWidget(self.hint)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction("&New project…", QKeySequence.StandardKey.New, self.new_project_dialog)
        m.addAction("&Open project…", QKeySequence.StandardKey.Open, self.open_project_dialog)
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m.addAction("Open &demo project", self.open_demo)
        m.addSeparator()
        self.act_import = m.addAction("&Import folder…", QKeySequence("Ctrl+I"), self.import_dialog)
        m.addSeparator()  # labels out and in: aldesk.ui.package_actions (export, packages)
        self.act_export = m.addAction("&Export labelled set…", QKeySequence("Ctrl+E"),
                                      lambda: package_actions.export_labelled_set_dialog(self))
        m.addAction("Export annotation &package…", lambda: package_actions.export_package_dialog(self))
        m.addAction("&Merge annotation package…", lambda: package_actions.import_package_dialog(self))
        m.addAction("&Hand out to a reader…", lambda: package_actions.handout_dialog(self))
        m.addSeparator()
        m.addAction("Switch &reader…", self.switch_annotator_dialog)
        m.addSeparator()
        m.addAction("&Quit", QKeySequence.StandardKey.Quit, self.close)

        m = mb.addMenu("&Label")
        self.act_undo = m.addAction("&Undo last label", self.undo_last)
        m.addAction("&Next scan to label", QKeySequence("N"), self.show_next)
        m.addAction("Write a &note", QKeySequence("Ctrl+N"), self._focus_note)
        self.act_prediction = m.addAction("Show the model's &guess")
        self.act_prediction.setCheckable(True)
        self.act_prediction.toggled.connect(self._on_prediction_action_toggled)
        m.addSeparator()
        m.addAction("&Key bindings…", self.edit_key_bindings)

        m = mb.addMenu("&View")
        for act in (self.act_fit, self.act_actual, self.act_invert, self.act_reset):
            m.addAction(act)
        m.addSeparator()
        self.act_overlay = m.addAction("Show &overlay")
        self.act_overlay.setCheckable(True)
        self.act_overlay.setChecked(True)
        self.act_overlay.setShortcut(QKeySequence("Ctrl+T"))
        self.act_overlay.toggled.connect(self._on_overlay_toggled)
        self.act_dashboard = m.addAction("&Dashboard")
        self.act_dashboard.setCheckable(True)
        self.act_dashboard.setShortcut(QKeySequence("Ctrl+D"))
        self.act_dashboard.toggled.connect(self._on_dashboard_toggled)
        themes = m.addMenu("&Theme")
        group = QActionGroup(self)
        for name in ("dark", "light"):
            act = themes.addAction(name.capitalize())
            act.setCheckable(True)
            act.setChecked(name == self.settings.theme)
            act.triggered.connect(lambda _c=False, n=name: self.set_theme(n))
            group.addAction(act)

        m = mb.addMenu("&Model")
        m.addAction("&Retrain and re-rank now", QKeySequence("Ctrl+R"), lambda: self.request_retrain("asked"))
        m.addAction("Retrain &every … labels", self.retrain_every_dialog)
        self.strategy_menu = m.addMenu("Query &strategy")
        self.strategy_menu.aboutToShow.connect(self._fill_strategy_menu)
        self.strategy_menu.setToolTipsVisible(True)

        m = mb.addMenu("&Review")
        m.addAction("&Disputed scans (adjudication)…", QKeySequence("Ctrl+Shift+R"), lambda: self.show_review("review"))
        m.addAction("&Agreement between readers…", QKeySequence("Ctrl+Shift+A"), lambda: self.show_review("agreement"))

        m = mb.addMenu("&Help")
        m.addAction("&Keyboard shortcuts", self.show_shortcuts)
        m.addAction("&Tour of the keys", self.show_tour)
        m.addAction("About the &demo scans", self.show_demo_attribution)
        m.addAction("Open &log folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_dir()))))
        m.addAction("&About / diagnostics…", self.show_about)

    def _build_shortcuts(self) -> None:
        def sc(key, slot):
            s = QShortcut(QKeySequence(key), self)
            s.setContext(Qt.ShortcutContext.WindowShortcut)
            s.activated.connect(slot)
            return s

        self._bound = {f"label_{d}": sc(str(d), lambda d=d: self._on_digit_key(d)) for d in range(1, 10)}
        self._bound["unsure"] = sc("U", lambda: self.label_current("unsure"))
        self._bound["skip"] = sc("S", lambda: self.label_current("skip"))
        for key in ("PgDown", "Down"):
            sc(key, lambda: self.viewer.set_frame(self.viewer.frame + 1))
        for key in ("PgUp", "Up"):
            sc(key, lambda: self.viewer.set_frame(self.viewer.frame - 1))
        for i in range(7):
            sc(f"F{i + 2}", lambda i=i: self._apply_preset_index(i + 1))
        sc("Escape", lambda: self.viewer.setFocus())
        self.apply_key_bindings(self.settings.key_bindings)

    def apply_key_bindings(self, bindings: dict[str, str]) -> None:
        """Put the workstation's keys (Settings.key_bindings) on the label, undo and guess shortcuts."""
        from aldesk.ui.settings import DEFAULT_KEY_BINDINGS, valid_key_bindings

        bindings = valid_key_bindings(bindings)
        for action, shortcut in self._bound.items():
            shortcut.setKey(QKeySequence(bindings[action]))
        self.act_undo.setShortcut(QKeySequence(bindings["undo"]))
        self.act_prediction.setShortcut(QKeySequence(bindings["prediction"]))
        self.settings.key_bindings = bindings
        if bindings == DEFAULT_KEY_BINDINGS:
            first = "1–9 label"
        else:
            first = "/".join(bindings[f"label_{d}"] for d in range(1, 10)) + " label"
        self.hint.setText(f"{first} · {bindings['unsure']} unsure · {bindings['skip']} skip · "
                          f"{bindings['undo']} undo · right-drag W/L · wheel zoom")

    def _install_label_panel(self, classes: list[str]) -> None:
        old = self.label_panel
        self.label_panel = LabelPanel(classes)
        self.label_panel.label_chosen.connect(self.label_current)
        self.label_panel.prediction_toggled.connect(self._on_label_panel_prediction_toggled)
        self.label_panel.note.returnPressed.connect(self.viewer.setFocus)
        self._label_slot.addWidget(self.label_panel)
        self._label_slot.setCurrentWidget(self.label_panel)
        self._label_slot.removeWidget(old)
        old.deleteLater()

    def _track(self, job) -> None:
        """Keep fire-and-forget jobs (demo build, file check) to cancel them when closing."""
        self._jobs = [j for j in self._jobs if not j.done] + [job]

    # ================================================================== projects
    def open_project(self, path: str | os.PathLike) -> bool:
        """Open a project (closing the current one). Returns False (after telling the user) on failure."""
        try:
            project = Project.open(path)
        except AldeskError as exc:
            self.errors.report("Cannot open project", exc)
            self.settings.forget_project(path)
            self._save_settings()
            return False
        self._close_project()
        self.project = project
        self.settings.remember_project(path)
        self._save_settings()
        self.setWindowTitle(f"aldesk — {project.name}")
        self._install_label_panel(project.classes)
        self.queue_model.set_project(project)
        self.frame_cache.clear()
        self._undo.clear()
        self._labels_since_retrain = 0
        self.reader_status.setText(f"Reader: {self.annotator}")
        wl = worklists.plain_worklist(project, self.annotator)
        self._apply_worklist(wl, first=True)
        if project.status.migrated_from is not None or project.status.readonly:
            self.statusBar().showMessage(project.status.describe(), 10_000)
        self.project_opened.emit(str(path))
        # the daily safety copy can take seconds on a large project: never on the UI thread
        self._track(run_in_pool(backup_body(str(path)), on_finished=self._on_backup_done,
                                on_failed=lambda exc: self.errors.report("Automatic backup failed", exc)))
        if self.retrain_on_open and project.scans.count():
            self.request_retrain("project opened", retrain=True)
        return True

    def _on_backup_done(self, made) -> None:
        if made is not None:
            self.statusBar().showMessage(f"Daily backup saved: {made.name}", 5_000)

    def _close_project(self) -> None:
        if self.project is None:
            return
        self.retrainer.shutdown()
        self.frame_cache.shutdown()
        self.queue_model.set_project(None)
        self.project.close()
        self.project = None
        self.worklist = None
        self.current_scan_id = None

    def new_project_dialog(self) -> None:
        from aldesk.app.projects import create_project
        from aldesk.ui.project_dialogs import NewProjectDialog

        dlg = NewProjectDialog(self, self.settings.last_import_dir)
        if dlg.exec() != NewProjectDialog.DialogCode.Accepted:
            return
        folder, classes, name = dlg.values()
        try:
            create_project(folder, classes, name=name).close()
        except AldeskError as exc:
            self.errors.report("Cannot create project", exc)
            return
        if self.open_project(folder):
            self.import_dialog()

    def open_project_dialog(self) -> None:
        start = self.settings.recent_projects[0] if self.settings.recent_projects else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open an aldesk project folder", start)
        if folder:
            self.open_project(folder)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for p in self.settings.recent_projects:
            self.recent_menu.addAction(p, lambda p=p: self.open_project(p))
        if not self.settings.recent_projects:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def open_demo(self) -> None:
        from aldesk.ui.demo import ensure_demo_project

        self.statusBar().showMessage("Preparing the demo project…")
        self._track(run_in_pool(lambda progress, should_stop: ensure_demo_project(progress, should_stop),
                                      on_finished=self._on_demo_ready,
                                      on_failed=lambda exc: self.errors.report("Cannot build the demo project", exc),
                                      on_progress=self._on_retrainer_progress))

    def _on_demo_ready(self, result) -> None:
        path, _summary = result
        self.statusBar().clearMessage()
        self.open_project(path)

    def import_dialog(self, folders: list[str] | None = None) -> None:
        from aldesk.ui.import_dialog import ImportDialog, ImportReportDialog

        if self.project is None:
            self.errors.report("Import", "Open or create a project first (File menu).")
            return
        if folders is None:
            folder = QFileDialog.getExistingDirectory(self, "Import a folder of scans (searched recursively)",
                                                      self.settings.last_import_dir or str(Path.home()))
            if not folder:
                return
            folders = [folder]
            self.settings.last_import_dir = folder
            self._save_settings()
        dlg = ImportDialog(str(self.project.path), folders, self)
        dlg.exec()
        if dlg.error is not None:
            self.errors.report("Import failed", dlg.error)
            return
        if dlg.summary is not None:
            ImportReportDialog(dlg.summary, self).exec()
            self.worklist = worklists.plain_worklist(self.project, self.annotator)
            self.reload_queue()
            if self.current_scan_id is None:
                self.show_next()
            self.request_retrain("new scans imported")

    def switch_annotator_dialog(self) -> None:
        from aldesk.ui.project_dialogs import ask_annotator

        known = [n for n, _ in self.project.labels.annotators()] if self.project else []
        name = ask_annotator(self, known, self.annotator)
        if name:
            self.set_annotator(name)

    def set_annotator(self, name: str) -> None:
        self.annotator = name
        self.settings.annotator = name
        self._save_settings()
        self.reader_status.setText(f"Reader: {name}")
        self._undo.clear()
        if self.project is not None:
            self.worklist = worklists.plain_worklist(self.project, name)
            self.reload_queue()
            self.show_next()
            self.request_retrain("reader changed", retrain=False)

    # ================================================================== showing scans
    def _scan_info(self, scan_id: int) -> dict:
        meta = self.queue_model.meta(scan_id) or self.project.scans.get(scan_id)
        info = {"name": Path(meta.relpath).name, "modality": meta.modality, "frames": meta.frames,
                "path": str(meta.path), "rows": meta.rows, "columns": meta.columns}
        if self.act_prediction.isChecked():
            info["prediction"] = self._prediction_text(scan_id)
        return info

    def show_scan(self, scan_id: int) -> None:
        """Put a scan on screen now: decoded frames if prefetched, else its preview while decoding."""
        if self.project is None:
            return
        self.current_scan_id = scan_id
        self._shown_at = time.monotonic()
        info = self._scan_info(scan_id)
        cached = self.frame_cache.get(scan_id)
        if cached is not None:
            self.viewer.set_frames(scan_id, cached[0], cached[1], info)
        else:
            try:
                preview = self.project.scans.preview(scan_id)
            except AldeskError:
                preview = np.zeros((8, 8), np.uint8)
            self.viewer.show_preview(scan_id, preview, (info["columns"], info["rows"]), info)
            if scan_id in self.frame_cache.errors:
                self._show_decode_problem(scan_id, self.frame_cache.errors[scan_id])
            else:
                self.frame_cache.request(scan_id, info["path"])
        self.act_invert.blockSignals(True)
        self.act_invert.setChecked(False)
        self.act_invert.blockSignals(False)
        mine = [l for l in self.project.labels.current_for_scan(scan_id) if l.annotator == self.annotator]
        self.label_panel.show_scan(mine[0].value if mine else None, self.project.labels.history(scan_id),
                                   mine[0].note if mine else "")
        self.label_panel.set_prediction(self._prediction_text(scan_id))
        self.queue_panel.select_scan(scan_id)
        self._sync_view_controls()
        self.scan_shown.emit(scan_id)
        self._prefetch_pending = True  # after this scan is painted: waking decoders now would delay the paint

    def _on_viewer_painted(self, scan_id: int) -> None:
        if self._prefetch_pending:
            self._prefetch_pending = False
            QTimer.singleShot(0, self._prefetch)

    def _prefetch(self) -> None:
        if self.project is None:
            return
        items = []
        for sid in self.queue_model.next_unread(None, PREFETCH + 1):
            if sid == self.current_scan_id:
                continue
            meta = self.queue_model.meta(sid)
            if meta is not None:
                items.append((sid, str(meta.path)))
        self.frame_cache.prefetch(items[:PREFETCH])

    def show_next(self) -> None:
        nxt = [s for s in self.queue_model.next_unread(None, 2) if s != self.current_scan_id]
        if nxt:
            self.show_scan(nxt[0])
        else:
            self.current_scan_id = None
            self.viewer.clear("Nothing left to label in this list. Import more scans, or pick a filter.")
            self.label_panel.show_scan(None, [])

    def _on_frame_cache_decoded(self, scan_id: int, frames, params) -> None:
        if scan_id == self.current_scan_id and self.viewer.scan_id == scan_id and self.viewer.is_preview:
            self.viewer.set_frames(scan_id, frames, params, self._scan_info(scan_id))
            self._sync_view_controls()

    def _on_frame_cache_failed(self, scan_id: int, exc: BaseException) -> None:
        if scan_id == self.current_scan_id:
            self._show_decode_problem(scan_id, exc)

    def _show_decode_problem(self, scan_id: int, exc: BaseException) -> None:
        """A file that cannot be decoded is a fact about the data, not a crash: say so where the reader looks."""
        text = str(exc) if isinstance(exc, AldeskError) else f"{type(exc).__name__}: {exc}"
        self.viewer.info = dict(self.viewer.info, label=f"Showing the preview only — {text[:120]}")
        self.viewer.update()
        self.statusBar().showMessage(f"Full resolution not available: {text}", 15_000)

    # ================================================================== labelling
    def _on_digit_key(self, digit: int) -> None:
        value = self.label_panel.value_for_key(digit)
        if value is not None:
            self.label_current(value)

    def label_current(self, value: str) -> None:
        """Record the reader's label for the scan on screen; only then say saved and move on."""
        if self.project is None or self.current_scan_id is None:
            return
        if self.dashboard_visible:
            self.statusBar().showMessage("Back to the scan first (Ctrl+D closes the dashboard)", 4000)
            return
        scan_id = self.current_scan_id
        note = self.label_panel.note.text().strip()
        duration_ms = int((time.monotonic() - self._shown_at) * 1000)
        try:
            label_id = labelling.record_label(self.project, scan_id, self.annotator, value, note=note,
                                              duration_ms=duration_ms)
        except AldeskError as exc:
            self.errors.report("The label was not saved", exc)
            return
        name = Path(self.queue_model.meta(scan_id).relpath).name if self.queue_model.meta(scan_id) else f"#{scan_id}"
        self._undo.append((scan_id, label_id))
        self.queue_model.set_label(scan_id, value)
        self._labels_since_retrain += 1
        self._session_labels += 1
        self.label_saved.emit(scan_id, value)
        if self.queue_panel.current_filter != "mine":
            self.show_next()
        else:  # a reopened scan: stay on it, show the new history
            self.label_panel.show_scan(value, self.project.labels.history(scan_id), note)
        self.label_panel.show_saved(value, name)
        self.statusBar().showMessage(f"Saved {name}: {value}", 4000)
        every = int(self.project.settings().get("retrain_every", 10) or 10)
        if self._labels_since_retrain >= every:
            self.request_retrain(f"{self._labels_since_retrain} new labels")

    def undo_last(self) -> None:
        """Ctrl+Z: take back the last label of this session and show that scan again."""
        if self.project is None or not self._undo:
            self.statusBar().showMessage("Nothing to undo", 3000)
            return
        scan_id, label_id = self._undo.pop()
        try:
            labelling.undo_label(self.project, label_id)
        except AldeskError as exc:
            self.errors.report("Cannot undo", exc)
            return
        mine = [l for l in self.project.labels.current_for_scan(scan_id) if l.annotator == self.annotator]
        value = mine[0].value if mine else None
        self.queue_model.set_label(scan_id, value)
        self._labels_since_retrain = max(0, self._labels_since_retrain - 1)
        self.show_scan(scan_id)
        self.label_panel.show_message("Undone — " + (f"back to {value}" if value else "scan is unread again"))
        self.label_undone.emit(scan_id)

    def _focus_note(self) -> None:
        self.label_panel.note.setFocus()

    def _prediction_text(self, scan_id: int) -> str:
        if self.worklist is None or scan_id not in self.worklist.predictions:
            return "No model prediction yet" if not (self.worklist and self.worklist.note) else self.worklist.note
        cls, p = self.worklist.predictions[scan_id]
        return f"Model: {cls} ({p:.0%})"

    def _on_prediction_action_toggled(self, on: bool) -> None:
        if self.label_panel.prediction_check.isChecked() != on:
            self.label_panel.prediction_check.setChecked(on)
        if self.current_scan_id is not None:
            self.viewer.info = self._scan_info(self.current_scan_id)
            self.viewer.update()

    def _on_label_panel_prediction_toggled(self, on: bool) -> None:
        if self.act_prediction.isChecked() != on:
            self.act_prediction.setChecked(on)

    # ================================================================== queue and filters
    def _apply_worklist(self, wl: worklists.Worklist, *, first: bool = False) -> None:
        """Show a new work list without moving the scan being read (it stays on screen, listed first)."""
        self.worklist = wl
        self._update_model_status()
        if self.queue_panel.current_filter == "to_label":
            ids = wl.to_label
            cur = self.current_scan_id
            if cur is not None and not first:
                ids = np.concatenate([[cur], ids[ids != cur]]).astype(np.int64)
            mine = worklists.read_by(self.project, self.annotator)
            self.queue_model.set_entries(ids, scores=wl.scores, reasons=wl.reasons, labels=mine)
        if wl.strategy:
            self.queue_panel.strategy_label.setText(
                f"Ranked by {wl.strategy}: {strategy_descriptions().get(wl.strategy, '')}")
        if first or self.current_scan_id is None:
            self.show_next()
        else:
            self.queue_panel.select_scan(self.current_scan_id)
            self.label_panel.set_prediction(self._prediction_text(self.current_scan_id))
        if self.dashboard_visible:
            self.refresh_dashboard()
        self.worklist_applied.emit(wl)

    def reload_queue(self) -> None:
        if self.project is None:
            return
        self._on_queue_filter_changed(self.queue_panel.current_filter)

    def _on_queue_filter_changed(self, key: str) -> None:
        if self.project is None:
            return
        mine_ids, mine = worklists.my_reads_newest_first(self.project, self.annotator)
        if key == "to_label":
            wl = self.worklist or worklists.plain_worklist(self.project, self.annotator)
            self.queue_model.set_entries(wl.to_label, scores=wl.scores, reasons=wl.reasons, labels=mine)
        elif key == "mine":
            self.queue_model.set_entries(mine_ids, labels=mine)
        elif key == "all":
            scores = self.worklist.scores if self.worklist else {}
            reasons = self.worklist.reasons if self.worklist else {}
            self.queue_model.set_entries(self.project.scans.ids(), scores=scores, reasons=reasons, labels=mine)
        elif key == "missing":
            self.queue_model.set_entries(np.zeros(0, np.int64), labels=mine)
            self.statusBar().showMessage("Checking which source files are missing…")
            self._track(run_in_pool(missing_body(str(self.project.path)), on_finished=self._on_missing_ready,
                                          on_failed=lambda exc: self.errors.report("Cannot check files", exc)))
        if self.current_scan_id is not None:
            self.queue_panel.select_scan(self.current_scan_id)

    def _on_missing_ready(self, ids: np.ndarray) -> None:
        if self.project is None or self.queue_panel.current_filter != "missing":
            return
        self.queue_model.set_entries(ids, labels=self.queue_model.labels)
        self.statusBar().showMessage(f"{len(ids):,} scans have no source file where they were imported from"
                                     + (" — use `aldesk relink` after moving data" if len(ids) else ""), 8000)

    def _on_queue_scan_activated(self, scan_id: int) -> None:
        if scan_id != self.current_scan_id:
            self.show_scan(scan_id)

    # ================================================================== retraining
    def request_retrain(self, reason: str = "", *, retrain: bool = True) -> int | None:
        """Refresh features, model and ranking in the background; supersedes a running refresh."""
        if self.project is None or self._closing:
            return None
        self._labels_since_retrain = 0
        body = retrain_body(str(self.project.path), self.annotator, self.settings.strategy, retrain)
        self.progress_label.setText(f"Retraining ({reason})" if reason else "Retraining")
        return self.retrainer.request(body)

    def _on_retrainer_started(self, gen: int) -> None:
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setVisible(True)

    def _on_retrainer_progress(self, done: int, total: int, message: str) -> None:
        self.progress_bar.setVisible(True)
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)
        else:
            self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat(message)
        self.progress_bar.setToolTip(message)

    def _on_retrainer_finished(self, wl: worklists.Worklist) -> None:
        if self.project is None:
            return
        self._apply_worklist(wl)
        self.statusBar().showMessage(
            f"Queue re-ranked by {wl.strategy} in {wl.elapsed_s:.1f} s" + (f" — {wl.note}" if wl.note else ""), 6000)

    def _on_retrainer_failed(self, exc: BaseException) -> None:
        self.progress_label.setText("Ranking unavailable")
        self.errors.report("Retraining failed — the queue keeps its previous order", exc)

    def _on_retrainer_idle(self) -> None:
        self.progress_bar.setVisible(False)
        if self.progress_label.text().startswith("Retraining"):
            self.progress_label.setText("")

    def _update_model_status(self) -> None:
        wl = self.worklist
        if wl is None or not wl.metrics:
            n = wl.n_labels if wl else 0
            self.model_status.setText(f"No model yet · {n} labels")
            return
        m = wl.metrics
        parts = [f"Model v{wl.model_id}" if wl.model_id else "Model", f"{m.get('labels', wl.n_labels)} labels"]
        if m.get("accuracy") is not None:
            parts.append(f"accuracy {m['accuracy']:.2f}")
        if m.get("ece") is not None:
            parts.append(f"ECE {m['ece']:.3f}")
        self.model_status.setText(" · ".join(parts))

    def retrain_every_dialog(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        if self.project is None:
            return
        current = int(self.project.settings().get("retrain_every", 10))
        value, ok = QInputDialog.getInt(self, "Retrain every", "Retrain and re-rank after this many new labels:",
                                        current, 1, 10_000)
        if ok:
            self.project.update_settings(retrain_every=value)

    def _fill_strategy_menu(self) -> None:
        self.strategy_menu.clear()
        group = QActionGroup(self.strategy_menu)
        for name, explanation in strategy_descriptions().items():
            act = self.strategy_menu.addAction(f"{name} — {explanation}")
            act.setCheckable(True)
            act.setChecked(name == self.settings.strategy)
            act.triggered.connect(lambda _c=False, n=name: self.set_strategy(n))
            group.addAction(act)

    def set_strategy(self, name: str) -> None:
        if name == self.settings.strategy:
            return
        self.settings.strategy = name
        self._save_settings()
        self.request_retrain(f"strategy {name}", retrain=False)

    # ================================================================== view controls
    def _sync_view_controls(self) -> None:
        n = self.viewer.n_frames
        multi = n > 1
        self.frame_caption_action.setVisible(multi)
        self.frame_slider_action.setVisible(multi)
        if multi:
            self.frame_slider.blockSignals(True)
            self.frame_slider.setRange(0, n - 1)
            self.frame_slider.setValue(self.viewer.frame)
            self.frame_slider.blockSignals(False)
            self.frame_caption.setText(f"Frame {self.viewer.frame + 1}/{n}")
        presets = self.viewer.presets()
        names = ["Default"] + [p.name or f"W {p.width:.0f} L {p.center:.0f}" for p in presets]
        if [self.preset_box.itemText(i) for i in range(self.preset_box.count())] != names:
            self.preset_box.blockSignals(True)
            self.preset_box.clear()
            for i, nm in enumerate(names):
                self.preset_box.addItem(nm if i == 0 or i > 8 else f"{nm}   (F{i + 1})")
            self.preset_box.blockSignals(False)
        self.preset_box.setEnabled(self.viewer.params is not None and not self.viewer.params.is_colour)

    def _apply_preset_index(self, index: int) -> None:
        presets = self.viewer.presets()
        if index == 0:
            self.viewer.set_window(None)
        elif 0 < index <= len(presets):
            self.viewer.set_window(presets[index - 1])
        else:
            return
        self.preset_box.setCurrentIndex(index)

    def _on_preset_box_activated(self, index: int) -> None:
        self._apply_preset_index(index)

    def _on_viewer_frame_changed(self, index: int) -> None:
        self._sync_view_controls()

    def _on_reset_triggered(self) -> None:
        self.viewer.reset()
        self.act_invert.setChecked(False)
        self.preset_box.setCurrentIndex(0)

    def _on_overlay_toggled(self, on: bool) -> None:
        self.viewer.overlay_visible = on
        self.viewer.update()

    def set_theme(self, name: str) -> None:
        from aldesk.ui.theme import apply_theme

        apply_theme(QApplication.instance(), name)
        self.settings.theme = name
        self._save_settings()
        if self.dashboard_visible:
            self.refresh_dashboard()

    # ================================================================== dashboard
    def show_dashboard(self, on: bool = True) -> None:
        self.act_dashboard.setChecked(on)

    @property
    def dashboard_visible(self) -> bool:
        return self.dashboard is not None and self.center.currentWidget() is self.dashboard

    def _on_dashboard_toggled(self, on: bool) -> None:
        if on and self.project is not None:
            if self.dashboard is None:
                from aldesk.ui.dashboard import DashboardPanel

                self.dashboard = DashboardPanel(theme=self.settings.theme)
                self.dashboard.strategy_changed.connect(self.set_strategy)
                self.center.addWidget(self.dashboard)
            self.refresh_dashboard()
            self.center.setCurrentWidget(self.dashboard)
        else:
            self.center.setCurrentWidget(self.viewer)
            self.viewer.setFocus()

    def refresh_dashboard(self) -> None:
        from aldesk.app.dashboard import dashboard_data

        if self.dashboard is None or self.project is None:
            return
        self.dashboard.set_strategies(strategy_descriptions(), self.settings.strategy)
        self.dashboard.set_data(dashboard_data(self.project), self.settings.theme)

    # ================================================================== review
    def show_review(self, kind: str = "review"):
        """The reviewer's screen or the agreement view, in a window of its own (aldesk.ui.review_panel)."""
        from aldesk.ui.review_panel import open_window

        if self.project is None:
            self.errors.report("Review", "Open a project first (File menu).")
            return None
        return open_window(self, kind, str(self.project.path), self.annotator, errors=self.errors,
                           theme=self.settings.theme)

    # ================================================================== help
    def show_shortcuts(self) -> None:
        b = self.settings.key_bindings
        labels = "1–9" if all(b[f"label_{d}"] == str(d) for d in range(1, 10)) else \
            "/".join(b[f"label_{d}"] for d in range(1, 10))
        QMessageBox.information(self, "Keyboard shortcuts", (
            f"{labels}  label with the class on that key\n{b['unsure']}  unsure      {b['skip']}  skip\n"
            f"{b['undo']}  undo the last label\n"
            f"N  next scan      Ctrl+N  write a note\n{b['prediction']}  show/hide the model's guess\n"
            "(change them in Label ▸ Key bindings…)\n\n"
            "F  fit      O  1:1      I  invert      R  reset\nF2–F8  window presets\n"
            "PageUp/PageDown, Up/Down  frames\n\nMouse: right-drag window/level · wheel zoom at the cursor · "
            "left- or middle-drag pan · double-click fit"))

    def show_about(self) -> None:
        from aldesk.ui.about import AboutDialog

        AboutDialog(str(self.project.path) if self.project else None, self).exec()

    def edit_key_bindings(self) -> None:
        from aldesk.ui.keys import KeyBindingsDialog

        dialog = KeyBindingsDialog(self.settings.key_bindings, self)
        if dialog.exec() == KeyBindingsDialog.DialogCode.Accepted:
            self.apply_key_bindings(dialog.bindings())
            self._save_settings()
            self.statusBar().showMessage("Key bindings saved", 4000)

    def show_tour(self) -> bool:
        """The tour of the keys; True when the reader asked not to see it at start again."""
        from aldesk.ui.keys import KeyTourDialog

        dialog = KeyTourDialog(self.settings.key_bindings, self.project.classes if self.project else [], self)
        dialog.exec()
        return dialog.dont_show_again.isChecked()

    def maybe_show_tour(self) -> None:
        """At start: the tour once per workstation, until the reader dismisses it for good."""
        if self.settings.tour_seen:
            return
        if self.show_tour():
            self.settings.tour_seen = True
            self._save_settings()

    def show_demo_attribution(self) -> None:
        from aldesk.ui.settings import resources_dir

        text = (resources_dir() / "demo" / "SOURCE.md").read_text(encoding="utf-8")
        box = QMessageBox(QMessageBox.Icon.Information, "About the demo scans", text[:3000], QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.MarkdownText)
        box.exec()

    # ================================================================== closing
    def _save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as exc:
            self.statusBar().showMessage(f"Settings not saved: {exc}", 8000)

    def closeEvent(self, event) -> None:  # noqa: N802
        """Labels are already durable; stop the workers (cancel, then wait) and close the project."""
        self._closing = True
        if self.retrainer.busy:
            self.statusBar().showMessage("Stopping the background retraining…")
            QApplication.processEvents()
        self.settings.geometry = bytes(self.saveGeometry().toBase64()).decode()
        self._save_settings()
        for job in self._jobs:
            job.cancel()
        for job in self._jobs:  # a backup being written must finish before its folder may go away
            job.wait(60)
        self._close_project()
        super().closeEvent(event)
