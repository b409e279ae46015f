"""The labelling workstation: queue on the left, the scan in the middle, labelling on the right.

Where things live (so that one knows where a key press goes):
- aldesk.ui.labelling_controller: the labelling loop — the scan on screen, label keys, save, undo;
- aldesk.ui.viewer_controls: viewing keys and the toolbar (fit, invert, presets, frames);
- aldesk.ui.menus: the menu bar; aldesk.ui.status_bar: progress, model and reader status;
- this module: projects, the reader, the queue and its filters, retraining, dashboard, help.

Every action calls the same use cases as the CLI (aldesk.app). Decoding, importing and retraining
run in workers with their own Project connections. Retraining starts after every ``retrain_every``
new labels (project setting); a newer request supersedes a running one and only the newest result
is shown. Failures go to one ErrorReporter.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QActionGroup, QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog, QMainWindow, QMessageBox, QSplitter, QStackedWidget

from aldesk.app import worklist as worklists
from aldesk.errors import AldeskError, NotAProjectError
from aldesk.store import Project
from aldesk.ui import package_actions
from aldesk.ui.decoding import FrameCache
from aldesk.ui.label_panel import LabelPanel
from aldesk.ui.labelling_controller import LabellingController
from aldesk.ui.menus import build_menus
from aldesk.ui.messages import ErrorReporter
from aldesk.ui.queue_model import ScanQueueModel
from aldesk.ui.queue_panel import QueuePanel
from aldesk.ui.settings import Settings
from aldesk.ui.status_bar import WorkStatusBar
from aldesk.ui.series_viewer import StudyView
from aldesk.ui.viewer import ScanViewer
from aldesk.ui.viewer_controls import ViewerControls
from aldesk.ui.workers import LatestOnly, run_in_pool

log = logging.getLogger(__name__)


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


def stop_advice_body(project_path: str):
    """Worker body: the dashboard's "when can I stop?" report (aldesk.app.progress)."""

    def body(progress, should_stop):
        from aldesk.app.progress import progress_report

        with Project.open(project_path) as project:
            return progress_report(project, progress=progress, should_stop=should_stop)

    return body


def warm_up_due() -> bool:
    return "sklearn.linear_model" not in sys.modules


def warm_up_body():
    """Worker body: import what the first retrain needs (scikit-learn, scipy: ~2 s on a cold start) while the
    window and the project open, so the reader's first ranking does not wait for it."""

    def body(progress, should_stop):
        import importlib

        for name in ("sklearn.linear_model", "sklearn.pipeline", "sklearn.preprocessing",
                     "aldesk.learning.models", "aldesk.learning.strategies"):
            importlib.import_module(name)

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


BACKUP_CHECK_MS = 15 * 60 * 1000   # how often an open session asks whether a scheduled backup is due


class MainWindow(QMainWindow):
    worklist_applied = Signal(object)
    project_opened = Signal(str)

    def __init__(self, settings: Settings | None = None, annotator: str | None = None,
                 project_path: str | os.PathLike | None = None, *, retrain_on_open: bool = True):
        super().__init__()
        self.settings = settings or Settings.load()
        self.annotator = annotator or self.settings.annotator or "reader"
        self.project: Project | None = None
        self.worklist: worklists.Worklist | None = None
        self.retrain_on_open = retrain_on_open
        self._jobs: list = []
        self._closing = False
        self._first_from_ranking = False  # opened / reader changed: the first scan is the ranking's top
        self._catch_up_backup_due = False  # set at open; started once the first ranking is done

        self.setWindowTitle("aldesk")
        self.errors = ErrorReporter(self)
        self.status = WorkStatusBar(self)
        self.setStatusBar(self.status)
        self.frame_cache = FrameCache(self)
        self.retrainer = LatestOnly("retrain", self)
        self.retrainer.started.connect(self._on_retrainer_started)
        self.retrainer.progress.connect(self.status.work_progress)
        self.retrainer.finished.connect(self._on_retrainer_finished)
        self.retrainer.failed.connect(self._on_retrainer_failed)
        self.retrainer.idle.connect(self._on_retrainer_idle)

        self.viewer = ScanViewer()
        self.viewer_controls = ViewerControls(self.viewer, self)
        self.hint = self.viewer_controls.hint
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.viewer_controls.toolbar)
        self.queue_model = ScanQueueModel(None, self)
        self.queue_panel = QueuePanel(self.queue_model)
        self.queue_panel.scan_activated.connect(self._on_queue_scan_activated)
        self.queue_panel.filter_changed.connect(self._on_queue_filter_changed)
        self.queue_panel.search_done.connect(lambda: self.viewer.setFocus())
        self.labelling = LabellingController(self)
        self.scan_shown = self.labelling.scan_shown
        self.label_saved = self.labelling.label_saved
        self.label_undone = self.labelling.label_undone
        self.label_saved.connect(lambda *_: self._update_saved_count())
        self.label_undone.connect(lambda *_: self._update_saved_count())

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.center = QStackedWidget()
        self.center.addWidget(self.viewer)
        self.study_view = StudyView()   # series and study units: a grid of series viewports
        self.study_view.active_changed.connect(self.viewer_controls.set_viewer)
        self.center.addWidget(self.study_view)
        self.dashboard = None  # built on first use (matplotlib loads then)
        self.splitter.addWidget(self.queue_panel)
        self.splitter.addWidget(self.center)
        self.splitter.addWidget(self.labelling.panel_slot)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([380, 900, 280])
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)

        # a long session's labels reach a backup without waiting for the window to close (the backup
        # itself decides whether one is due: changed since the newest, and that one over an hour old)
        self._backup_timer = QTimer(self)
        self._backup_timer.setInterval(BACKUP_CHECK_MS)
        self._backup_timer.timeout.connect(self._on_backup_timer_timeout)
        self._backup_timer.start()

        build_menus(self)
        if warm_up_due():  # the first retrain would import them: start now, beside
            self._track(run_in_pool(warm_up_body(), on_finished=lambda _: None,  # the window and the project
                                    on_failed=lambda exc: log.info("warm-up imports failed: %s", exc)))
        self.viewer_controls.act_smooth.setChecked(self.settings.smooth_magnified)
        self.viewer_controls.act_smooth.toggled.connect(self._on_smooth_toggled)
        self.apply_key_bindings(self.settings.key_bindings)
        self.labelling.install_panel([])
        self.resize(1600, 960)
        if self.settings.geometry:
            self.restoreGeometry(QByteArray.fromBase64(self.settings.geometry.encode()))
        if project_path is not None:
            self.open_project(project_path)
        else:
            self.viewer.clear("Open or create a project (File menu), or try the demo project.")

    # ================================================================== building
    def apply_key_bindings(self, bindings: dict[str, str]) -> None:
        """Put the workstation's keys (Settings.key_bindings) on the label, undo and guess shortcuts."""
        from aldesk.ui.settings import DEFAULT_KEY_BINDINGS, valid_key_bindings

        from aldesk.ui.keys import key_conflicts

        bindings = valid_key_bindings(bindings)
        problems = key_conflicts(bindings, self.fixed_keys())
        if problems:  # e.g. an old settings file: a dead, ambiguous key is worse than the default
            bindings = {a: (DEFAULT_KEY_BINDINGS[a] if key_conflicts({a: k}, self.fixed_keys()) else k)
                        for a, k in bindings.items()}
            if key_conflicts(bindings, self.fixed_keys()):
                bindings = dict(DEFAULT_KEY_BINDINGS)
            self.statusBar().showMessage("Key bindings: " + "; ".join(problems) + " — kept the default key", 15_000)
        self.labelling.apply_key_bindings(bindings)
        self.act_undo.setShortcut(QKeySequence(bindings["undo"]))
        self.act_prediction.setShortcut(QKeySequence(bindings["prediction"]))
        self.settings.key_bindings = bindings
        if bindings == DEFAULT_KEY_BINDINGS:
            first = "1–9 label"
        else:
            first = "/".join(bindings[f"label_{d}"] for d in range(1, 10)) + " label"
        self.hint.setText(f"{first} · {bindings['unsure']} unsure · {bindings['skip']} skip · "
                          f"{bindings['undo']} undo · right-drag W/L · wheel scroll · Ctrl+wheel zoom")

    def fixed_keys(self) -> dict[str, str]:
        """Keys the menus and the viewer own (key -> what it does): not available to Key bindings."""
        from aldesk.ui.keys import window_keys
        from aldesk.ui.settings import DEFAULT_KEY_BINDINGS

        return {key: what for key, name, what in window_keys(self) if name not in DEFAULT_KEY_BINDINGS}

    def showEvent(self, event) -> None:  # noqa: N802
        """Keyboard focus starts on the scan: that is where the reader's keys belong."""
        super().showEvent(event)
        if not event.spontaneous():
            self.viewer.setFocus()

    def _track(self, job) -> None:
        """Keep fire-and-forget jobs (demo build, file check) to cancel them when closing."""
        self._jobs = [j for j in self._jobs if not j.done] + [job]

    # ================================================================== projects
    def open_project(self, path: str | os.PathLike) -> bool:
        """Open a project (closing the current one). Returns False (after telling the user) on failure."""
        try:
            project = Project.open(path)
        except NotAProjectError as exc:
            self.settings.forget_project(path)
            self._save_settings()
            self._offer_new_project(exc)
            return False
        except AldeskError as exc:
            self.errors.report("Cannot open project", exc)
            self.settings.forget_project(path)
            self._save_settings()
            return False
        self._close_project()
        self.project = project
        self._commits_at_open = project.commits()
        self.settings.remember_project(path)
        self._save_settings()
        self.setWindowTitle(f"aldesk — {project.name}")
        self.labelling.install_panel(project.classes)
        self.queue_model.set_project(project)
        self.frame_cache.clear()
        self.labelling.reset()
        package_actions.use_handout_reader(self, project)   # a hand-out copy reads as its reader only
        self.status.show_reader(self.annotator)
        wl = worklists.plain_worklist(project, self.annotator)
        rank_now = bool(self.retrain_on_open and project.scans.count())
        self._first_from_ranking = rank_now
        self._apply_worklist(wl, first=not rank_now)
        if rank_now:
            self.viewer.clear("Ranking the queue: the first scan will be the one the model learns most from…")
        if project.status.migrated_from is not None or project.status.readonly or project.status.interrupted_imports:
            self.statusBar().showMessage(project.status.describe(), 10_000)
        self.project_opened.emit(str(path))
        # earlier sessions' writes not yet in a backup (one killed before its close, a command's): seconds
        # on a large project, so never on the UI thread, and after the first ranking (on 2 cores it would
        # slow the retrain the reader is waiting for); this session's own go into the one made at close
        self._catch_up_backup_due = True
        if rank_now:
            self.request_retrain("project opened", retrain=True)
        else:
            self._start_catch_up_backup()
        return True

    def _start_catch_up_backup(self) -> None:
        if not self._catch_up_backup_due or self.project is None:
            return
        self._catch_up_backup_due = False
        self._track(run_in_pool(backup_body(str(self.project.path)), on_finished=self._on_backup_done,
                                on_failed=lambda exc: self.errors.report("Automatic backup failed", exc)))

    def _offer_new_project(self, exc: NotAProjectError) -> None:
        """No project in that folder: offer File ▸ New project (the GUI's way, not `aldesk init`)."""
        text = str(exc).split(" Create ", 1)[0]  # the store's advice is for the terminal
        self.errors.reported.emit("Cannot open project", text)
        box = QMessageBox(QMessageBox.Icon.Warning, "Cannot open project", text, QMessageBox.StandardButton.Close, self)
        box.setInformativeText("Create a project with File ▸ New project… (Ctrl+Shift+N), or open another "
                               "project folder (File ▸ Open project…).")
        new = box.addButton("New project…", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(new)
        box.exec()
        if box.clickedButton() is new:
            self.new_project_dialog()

    def _on_backup_timer_timeout(self) -> None:
        if self.project is not None and not self._closing and self.project.commits() != self._commits_at_open:
            self._track(run_in_pool(backup_body(str(self.project.path)), on_finished=self._on_backup_done,
                                    on_failed=lambda exc: self.errors.report("Automatic backup failed", exc)))

    def _on_backup_done(self, made) -> None:
        if made is not None:
            self.statusBar().showMessage(f"Daily backup saved: {made.name}", 5_000)

    def _close_project(self) -> None:
        if self.project is None:
            return
        self.retrainer.shutdown()
        self.frame_cache.shutdown()
        self.study_view.stop()
        self.study_view.loader.shutdown()
        self.study_view.loader.clear()
        self.queue_model.set_project(None)
        from aldesk.app.backups import back_up_after_writes

        # this session's labels go into the scheduled backup, written by a detached process: closing never waits
        back_up_after_writes(self.project, self._commits_at_open)
        self.project.close()
        self.project = None
        self.worklist = None
        self.labelling.reset()

    def new_project_dialog(self) -> None:
        from aldesk.app.projects import create_project
        from aldesk.ui.project_dialogs import NewProjectDialog

        recent = self.settings.recent_projects
        projects_dir = str(Path(recent[0]).parent) if recent else ""
        dlg = NewProjectDialog(self, projects_dir, data_dirs=[self.settings.last_import_dir])
        if dlg.exec() != NewProjectDialog.DialogCode.Accepted:
            return
        folder, classes, name = dlg.values()
        try:
            create_project(folder, classes, name=name, unit=dlg.chosen_unit()).close()
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
                                      on_progress=self.status.work_progress))

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

        if package_actions.refuse_other_reader(self):
            return
        known = [n for n, _ in self.project.labels.annotators()] if self.project else []
        name = ask_annotator(self, known, self.annotator)
        if name:
            self.set_annotator(name)

    def set_annotator(self, name: str) -> None:
        self.annotator = name
        self.settings.annotator = name
        self._save_settings()
        self.status.show_reader(name)
        self.labelling.forget_undo()
        if self.project is not None:
            self.worklist = worklists.plain_worklist(self.project, name)
            self.reload_queue()
            self._first_from_ranking = True
            self.labelling.current_scan_id = None
            self.viewer.clear("Ranking the queue for this reader…")
            if self.request_retrain("reader changed", retrain=False) is None:
                self._first_from_ranking = False
                self.show_next()

    # ================================================================== the labelling loop
    # aldesk.ui.labelling_controller owns it; these are the window's entry points for menus,
    # package_actions and tests.
    @property
    def current_scan_id(self) -> int | None:
        return self.labelling.current_scan_id

    @property
    def label_panel(self) -> LabelPanel:
        return self.labelling.panel

    def show_scan(self, scan_id: int) -> None:
        self.labelling.show_scan(scan_id)

    def show_next(self) -> None:
        self.labelling.show_next()

    def label_current(self, value: str) -> None:
        self.labelling.label_current(value)

    def undo_last(self) -> None:
        self.labelling.undo_last()

    def _on_prediction_action_toggled(self, on: bool) -> None:
        if self.label_panel.prediction_check.isChecked() != on:
            self.label_panel.prediction_check.setChecked(on)
        if self.current_scan_id is not None:
            self.viewer.info = self.labelling.scan_info(self.current_scan_id)
            self.viewer.update()

    def _on_label_panel_prediction_toggled(self, on: bool) -> None:
        if self.act_prediction.isChecked() != on:
            self.act_prediction.setChecked(on)

    # ================================================================== queue and filters
    def _apply_worklist(self, wl: worklists.Worklist, *, first: bool = False) -> None:
        """Show a new work list without moving the scan being read (it stays on screen, listed first)."""
        self.worklist = wl
        self.status.show_model(wl)
        self._update_saved_count()
        if self.queue_panel.current_filter == "all":  # same list, the new scores and reasons
            self._on_queue_filter_changed("all")
        if self.queue_panel.current_filter == "to_label":
            ids = wl.to_label
            cur = self.current_scan_id
            if cur is not None and not first:
                ids = np.concatenate([[cur], ids[ids != cur]]).astype(np.int64)
            mine = worklists.read_by(self.project, self.annotator)
            self.queue_model.set_entries(ids, scores=wl.scores, reasons=self._plain_reasons(wl), labels=mine)
        if wl.strategy:
            self.queue_panel.strategy_label.setText(f"Ranked by {wl.strategy}: the scans the model learns most "
                                                    "from come first")
            self.queue_panel.strategy_label.setToolTip(strategy_descriptions().get(wl.strategy, ""))
        if first or (self.current_scan_id is None and not self._first_from_ranking):
            self.show_next()
        else:
            self.queue_panel.select_scan(self.current_scan_id)
            self.label_panel.set_prediction(self.labelling.prediction_text(self.current_scan_id))
            self.labelling.refresh_why()
        if self.dashboard_visible:
            self.refresh_dashboard()
        self.worklist_applied.emit(wl)

    def _plain_reasons(self, wl: worklists.Worklist) -> dict[int, str]:
        """The queue's "why" in plain words (aldesk.ui.why); the numbers stay in the Score column and the
        label panel's Numbers."""
        from aldesk.ui.why import plain_why

        classes = self.project.classes if self.project else []
        return {s: plain_why(r, wl.predictions.get(s), classes, ranked=True) for s, r in wl.reasons.items()}

    def _update_saved_count(self) -> None:
        if self.project is not None:
            self.status.show_saved(self.project.labels.count(), len(self.queue_model.labels))

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
            self.queue_model.set_entries(wl.to_label, scores=wl.scores, reasons=self._plain_reasons(wl), labels=mine)
        elif key == "mine":
            self.queue_model.set_entries(mine_ids, labels=mine)
        elif key == "all":
            scores = self.worklist.scores if self.worklist else {}
            reasons = self._plain_reasons(self.worklist) if self.worklist else {}
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
        self.labelling.labels_since_retrain = 0
        body = retrain_body(str(self.project.path), self.annotator, self.settings.strategy, retrain)
        self.status.progress_label.setText(f"Retraining ({reason})" if reason else "Retraining")
        return self.retrainer.request(body)

    def _on_retrainer_started(self, gen: int) -> None:
        self.status.work_started()

    def _on_retrainer_finished(self, wl: worklists.Worklist) -> None:
        if self.project is None:
            return
        first = self._first_from_ranking and self.current_scan_id is None  # not if the reader picked one
        self._first_from_ranking = False
        self._apply_worklist(wl, first=first)
        self.statusBar().showMessage(
            f"Queue re-ranked by {wl.strategy} in {wl.elapsed_s:.1f} s" + (f" — {wl.note}" if wl.note else ""), 6000)

    def _on_retrainer_failed(self, exc: BaseException) -> None:
        self.status.progress_label.setText("Ranking unavailable")
        self.errors.report("Retraining failed — the queue keeps its previous order", exc)

    def _on_retrainer_idle(self) -> None:
        self.status.work_idle("Retraining")
        self._start_catch_up_backup()  # the first ranking is done (or failed): now the backup may run
        if self._first_from_ranking:  # idle comes just before finished: look again once that is handled
            QTimer.singleShot(0, self._show_plain_if_no_ranking_came)

    def _show_plain_if_no_ranking_came(self) -> None:
        """The ranking failed or was cancelled: the plain list's first scan, not a blank screen."""
        if self._first_from_ranking and not self.retrainer.busy:
            self._first_from_ranking = False
            if self.current_scan_id is None and self.project is not None:
                self.show_next()

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

    # ================================================================== appearance
    def _on_smooth_toggled(self, on: bool) -> None:
        self.settings.smooth_magnified = on
        self._save_settings()

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
        else:   # back to the scan: the series grid when a series/study unit is on screen
            scan = self.study_view if self.viewer_controls.viewer is not self.viewer else self.viewer
            self.center.setCurrentWidget(scan)
            (self.study_view.active if scan is self.study_view else self.viewer).setFocus()

    def refresh_dashboard(self) -> None:
        from aldesk.app.dashboard import dashboard_data

        if self.dashboard is None or self.project is None:
            return
        self.dashboard.set_strategies(strategy_descriptions(), self.settings.strategy)
        self.dashboard.set_data(dashboard_data(self.project), self.settings.theme)
        self._refresh_stop_advice()

    def _refresh_stop_advice(self) -> None:
        """"When can I stop?" refits the model a few dozen times: in a worker; a newer request wins."""
        if getattr(self, "_advice_job", None) is not None:
            self._advice_job.cancel()
        else:
            self.dashboard.set_progress(None, pending=True)
        self._advice_gen = getattr(self, "_advice_gen", 0) + 1
        gen, dashboard = self._advice_gen, self.dashboard

        def finished(report):
            if gen == self._advice_gen:
                self._advice_job = None
                dashboard.set_progress(report)

        def failed(exc):
            if gen == self._advice_gen:
                self._advice_job = None
                dashboard.set_progress(None, error=f"Cannot work out when to stop: {exc}")

        self._advice_job = run_in_pool(stop_advice_body(str(self.project.path)), on_finished=finished,
                                       on_failed=failed, on_cancelled=lambda: None)
        self._track(self._advice_job)

    # ================================================================== review
    def show_review(self, kind: str = "review"):
        """The reviewer's screen or the agreement view, in a window of its own (aldesk.ui.review_panel)."""
        from aldesk.ui.review_panel import open_window

        if self.project is None:
            self.errors.report("Review", "Open a project first (File menu).")
            return None
        return open_window(self, kind, str(self.project.path), self.annotator, errors=self.errors,
                           theme=self.settings.theme)

    def manage_roles(self) -> None:
        """Readers and their roles (reviewer, lead), with the CLI's rules (aldesk.ui.readers_dialog)."""
        from aldesk.ui.readers_dialog import ReadersDialog

        if self.project is None:
            self.errors.report("Readers and roles", "Open a project first (File menu).")
            return
        ReadersDialog(self.project, self, highlight=self.annotator).exec()

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
            "PageUp/PageDown, Up/Down  frames / slices\n"
            "Series and studies: Left/Right  series · [ ]  stack (plane, echo, time) · C  cine · L  grid 1×1/1×2/2×2\n\n"
            "Mouse: right-drag window/level · wheel frames / slices · Ctrl+wheel (or wheel on one image) zoom at "
            "the cursor · left- or middle-drag pan · double-click fit"))

    def show_about(self) -> None:
        from aldesk.ui.about import AboutDialog

        AboutDialog(str(self.project.path) if self.project else None, self).exec()

    def edit_key_bindings(self) -> None:
        from aldesk.ui.keys import KeyBindingsDialog

        dialog = KeyBindingsDialog(self.settings.key_bindings, self, reserved=self.fixed_keys())
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
