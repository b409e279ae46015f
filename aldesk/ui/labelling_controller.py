"""The labelling loop: which scan is on screen, the keys that label it, saving, undo and moving on.

A label is recorded on the GUI thread (a durable commit costs ~0.2 ms) so "Saved" is only shown after
the store committed. This is the only place that turns a key press into a label: the label keys
(1–9, unsure, skip, undo, the model's guess) are owned here and nowhere else. Viewing keys live in
aldesk.ui.viewer_controls; menus in aldesk.ui.menus.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QStackedWidget, QWidget

from aldesk.app import labelling
from aldesk.app.units import unit_view
from aldesk.errors import AldeskError
from aldesk.ui.keys import ACTION_NAMES, is_text_input
from aldesk.ui.label_panel import LabelPanel
from aldesk.ui.viewer import NO_PREVIEW_LABEL

if TYPE_CHECKING:
    from aldesk.ui.main_window import MainWindow

PREFETCH = 3


class LabellingController(QObject):
    """Shows scans, turns label keys into recorded labels, undoes them, and prefetches the next scans."""

    scan_shown = Signal(int)
    label_saved = Signal(int, str)          # scan id, value — emitted after the store committed
    label_undone = Signal(int)

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.window = window
        self.current_scan_id: int | None = None
        self.labels_since_retrain = 0
        self.session_labels = 0
        self._shown_at = time.monotonic()
        self._undo: list[tuple[int, str]] = []
        self._prefetch_pending = False
        self.panel = LabelPanel([])
        self.panel_slot = QStackedWidget()
        self.panel_slot.addWidget(self.panel)
        self._pending_timer = QTimer(self)
        self._pending_timer.setInterval(1000)
        self._pending_timer.timeout.connect(self._flush_pending)
        self.shortcuts = self._build_shortcuts()
        window.viewer.painted.connect(self._on_viewer_painted)
        window.frame_cache.decoded.connect(self._on_frame_cache_decoded)
        window.frame_cache.decode_failed.connect(self._on_frame_cache_failed)
        QApplication.instance().focusChanged.connect(self._on_app_focus_changed)

    # ------------------------------------------------------------------ keys
    def _build_shortcuts(self) -> dict[str, QShortcut]:
        def sc(name, slot):
            s = QShortcut(self.window)
            s.setObjectName(name)
            s.setWhatsThis(ACTION_NAMES[name])
            s.setContext(Qt.ShortcutContext.WindowShortcut)
            s.activated.connect(slot)
            return s

        bound = {f"label_{d}": sc(f"label_{d}", lambda d=d: self._on_digit_key(d)) for d in range(1, 10)}
        bound["unsure"] = sc("unsure", lambda: self.label_current("unsure"))
        bound["skip"] = sc("skip", lambda: self.label_current("skip"))
        return bound

    def _on_app_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        """While the reader types (the note, a search box), letters and digits are text, never labels."""
        typing = is_text_input(new)
        for shortcut in self.shortcuts.values():
            shortcut.setEnabled(not typing)
        act_next = getattr(self.window, "act_next", None)
        if act_next is not None:
            act_next.setEnabled(not typing)

    def apply_key_bindings(self, bindings: dict[str, str]) -> None:
        """Put validated bindings (Settings.key_bindings) on the label shortcuts."""
        for action, shortcut in self.shortcuts.items():
            shortcut.setKey(QKeySequence(bindings[action]))

    def install_panel(self, classes: list[str]) -> LabelPanel:
        """A project was opened: one button per class of that project."""
        old = self.panel
        self.panel = LabelPanel(classes)
        self.panel.label_chosen.connect(self.label_current)
        self.panel.prediction_toggled.connect(self.window._on_label_panel_prediction_toggled)
        self.panel.note.returnPressed.connect(self.window.viewer.setFocus)
        self.panel_slot.addWidget(self.panel)
        self.panel_slot.setCurrentWidget(self.panel)
        self.panel_slot.removeWidget(old)
        old.deleteLater()
        return self.panel

    def reset(self) -> None:
        """Another project or reader: nothing on screen, nothing to undo; labels an earlier session left
        pending (another process was writing) are written now, or retried until they are."""
        self.current_scan_id = None
        self._undo.clear()
        self.labels_since_retrain = 0
        self._flush_pending()

    def _flush_pending(self) -> None:
        """Write labels waiting in the project's journal; retry every second while another process writes."""
        w = self.window
        if w.project is None or w.project.status.readonly:
            self._pending_timer.stop()
            return
        try:
            labelling.flush_pending(w.project)
            waiting = len(labelling.pending_labels(w.project))
        except AldeskError as exc:
            self._pending_timer.stop()
            w.errors.report("Pending labels could not be written yet (they are kept)", exc)
            return
        if waiting:
            self._pending_timer.start()
        elif self._pending_timer.isActive():
            self._pending_timer.stop()
            self.panel.show_message("Saved ✓  pending labels are now written to the project")
            w.statusBar().showMessage("Pending labels written to the project", 4000)

    def forget_undo(self) -> None:
        self._undo.clear()

    # ------------------------------------------------------------------ showing scans
    def scan_info(self, scan_id: int) -> dict:
        w = self.window
        meta = w.queue_model.meta(scan_id) or w.project.scans.get(scan_id)
        info = {"name": Path(meta.relpath).name, "modality": meta.modality, "frames": meta.frames,
                "path": str(meta.path), "rows": meta.rows, "columns": meta.columns}
        if w.act_prediction.isChecked():
            info["prediction"] = self.prediction_text(scan_id)
        return info

    def show_scan(self, scan_id: int) -> None:
        """Put a scan on screen now: decoded frames if prefetched, else its preview while decoding."""
        w = self.window
        if w.project is None:
            return
        self.current_scan_id = scan_id
        self._shown_at = time.monotonic()
        info = self.scan_info(scan_id)
        unit = unit_view(w.project, scan_id) if w.project.units.kind() != "image" else None
        if unit is not None:
            w.center.setCurrentWidget(w.study_view)
            w.study_view.show_unit(scan_id, unit, info)
        elif w.center.currentWidget() is w.study_view:
            w.study_view.stop()
            w.center.setCurrentWidget(w.viewer)
            w.viewer_controls.set_viewer(w.viewer)
        cached = w.frame_cache.get(scan_id) if unit is None else None  # a unit's slices: the study view decodes
        if cached is not None:
            w.viewer.set_frames(scan_id, cached[0], cached[1], info)
        elif unit is None:
            try:
                preview = w.project.scans.preview(scan_id)
            except AldeskError:  # not in the restored backup: the file, if still there, is being decoded
                preview = np.zeros((8, 8), np.uint8)
                info = dict(info, label=NO_PREVIEW_LABEL, no_preview=True)
            w.viewer.show_preview(scan_id, preview, (info["columns"], info["rows"]), info)
            if scan_id in w.frame_cache.errors:
                self._show_decode_problem(scan_id, w.frame_cache.errors[scan_id])
            else:
                w.frame_cache.request(scan_id, info["path"])
        mine = [l for l in w.project.labels.current_for_scan(scan_id) if l.annotator == w.annotator]
        self.panel.show_scan(mine[0].value if mine else None, w.project.labels.history(scan_id),
                             mine[0].note if mine else "")
        self.panel.set_prediction(self.prediction_text(scan_id))
        self.refresh_why()
        w.queue_panel.select_scan(scan_id)
        w.viewer_controls.scan_changed()
        self.scan_shown.emit(scan_id)
        self._prefetch_pending = True  # after this scan is painted: waking decoders now would delay the paint

    def next_scans(self, count: int) -> list[int]:
        """The next ``count`` scans this reader has not read, in the ranking (the work list) — whatever
        the queue's filter lists: a filter changes what is shown, never what "next" means."""
        w = self.window
        if w.worklist is None:
            return [s for s in w.queue_model.next_unread(None, count + 1) if s != self.current_scan_id][:count]
        read = w.queue_model.labels  # this reader's current values, kept up to date on every label
        out: list[int] = []
        for s in w.worklist.to_label:
            s = int(s)
            if s != self.current_scan_id and s not in read:
                out.append(s)
                if len(out) == count:
                    break
        return out

    def show_next(self) -> None:
        w = self.window
        nxt = self.next_scans(1)
        if nxt:
            self.show_scan(nxt[0])
        else:
            self.current_scan_id = None
            w.viewer.clear("Nothing left to label in this list. Import more scans, or pick a filter.")
            self.panel.show_scan(None, [])

    def _on_viewer_painted(self, scan_id: int) -> None:
        if self._prefetch_pending:
            self._prefetch_pending = False
            QTimer.singleShot(0, self._prefetch)

    def _prefetch(self) -> None:
        w = self.window
        if w.project is None:
            return
        items = []
        for sid in self.next_scans(PREFETCH):
            meta = w.queue_model.meta(sid)
            if meta is not None:
                items.append((sid, str(meta.path)))
        w.frame_cache.prefetch(items)

    def _on_frame_cache_decoded(self, scan_id: int, frames, params) -> None:
        w = self.window
        if scan_id == self.current_scan_id and w.viewer.scan_id == scan_id and w.viewer.is_preview:
            w.viewer.set_frames(scan_id, frames, params, self.scan_info(scan_id))
            w.viewer_controls.sync()

    def _on_frame_cache_failed(self, scan_id: int, exc: BaseException) -> None:
        if scan_id == self.current_scan_id:
            self._show_decode_problem(scan_id, exc)

    def _show_decode_problem(self, scan_id: int, exc: BaseException) -> None:
        """A file that cannot be decoded is a fact about the data, not a crash: say so where the reader looks."""
        w = self.window
        text = str(exc) if isinstance(exc, AldeskError) else f"{type(exc).__name__}: {exc}"
        if w.viewer.info.get("no_preview"):  # said in the middle of the viewer: room for all of it
            label = f"No preview and no image: the preview was not in the restored backup, and {text}"
        else:
            label = f"Showing the preview only — {text[:120]}"
        w.viewer.info = dict(w.viewer.info, label=label)
        w.viewer.update()
        w.statusBar().showMessage(f"Full resolution not available: {text}", 15_000)

    # ------------------------------------------------------------------ labelling
    def _on_digit_key(self, digit: int) -> None:
        value = self.panel.value_for_key(digit)
        if value is not None:
            self.label_current(value)

    def label_current(self, value: str) -> None:
        """Record the reader's label for the scan on screen; only then say saved and move on."""
        w = self.window
        if w.project is None or self.current_scan_id is None:
            return
        if w.dashboard_visible:
            w.statusBar().showMessage("Back to the scan first (Ctrl+D closes the dashboard)", 4000)
            return
        scan_id = self.current_scan_id
        note = self.panel.note.text().strip()
        duration_ms = int((time.monotonic() - self._shown_at) * 1000)
        try:  # never refused: if another process is writing, it waits durably in the journal
            rec = labelling.record_read(w.project, scan_id, w.annotator, value, note=note, duration_ms=duration_ms)
        except AldeskError as exc:
            w.errors.report("The label was not saved", exc)
            return
        label_id = rec.label_id
        meta = w.queue_model.meta(scan_id)
        name = Path(meta.relpath).name if meta else f"#{scan_id}"
        self._undo.append((scan_id, label_id))
        w.queue_model.set_label(scan_id, value)
        self.labels_since_retrain += 1
        self.session_labels += 1
        self.label_saved.emit(scan_id, value)
        if w.queue_panel.current_filter != "mine":
            self.show_next()
        else:  # a reopened scan: stay on it, show the new history
            self.panel.show_scan(value, w.project.labels.history(scan_id), note)
        if rec.pending:
            self.panel.show_saved(value, name, pending=True)
            w.statusBar().showMessage(f"Saved {name}: {value} (pending: another aldesk is writing to this "
                                      "project; it is written as soon as that finishes)", 6000)
            self._pending_timer.start()
        else:
            self.panel.show_saved(value, name)
            w.statusBar().showMessage(f"Saved {name}: {value}", 4000)
        every = int(w.project.settings().get("retrain_every", 10) or 10)
        if self.labels_since_retrain >= every:
            w.request_retrain(f"{self.labels_since_retrain} new labels")

    def undo_last(self) -> None:
        """Ctrl+Z: take back the last label of this session and show that scan again."""
        w = self.window
        if w.project is None or not self._undo:
            w.statusBar().showMessage("Nothing to undo", 3000)
            return
        scan_id, label_id = self._undo.pop()
        try:
            labelling.undo_label(w.project, label_id)
        except AldeskError as exc:
            w.errors.report("Cannot undo", exc)
            return
        mine = [l for l in w.project.labels.current_for_scan(scan_id) if l.annotator == w.annotator]
        value = mine[0].value if mine else None
        w.queue_model.set_label(scan_id, value)
        self.labels_since_retrain = max(0, self.labels_since_retrain - 1)
        self.show_scan(scan_id)
        self.panel.show_message("Undone — " + (f"back to {value}" if value else "scan is unread again"))
        self.label_undone.emit(scan_id)

    def focus_note(self) -> None:
        self.panel.note.setFocus()

    def refresh_why(self) -> None:
        """The label panel's "Why this scan" for the scan on screen (aldesk.ui.why)."""
        from aldesk.ui import why

        w = self.window
        if self.current_scan_id is None or w.project is None:
            self.panel.set_why("", "")
            return
        wl, s, classes = w.worklist, self.current_scan_id, w.project.classes
        reason = wl.reasons.get(s) if wl else None
        prediction = wl.predictions.get(s) if wl else None
        ranked = bool(wl and wl.strategy)
        self.panel.set_why(why.plain_why(reason, prediction, classes, ranked=ranked),
                           why.details(reason, wl.scores.get(s) if wl else None, prediction, classes,
                                       wl.strategy if wl else None))

    # ------------------------------------------------------------------ the model's guess
    def prediction_text(self, scan_id: int) -> str:
        wl = self.window.worklist
        if wl is None or scan_id not in wl.predictions:
            return "No model prediction yet" if not (wl and wl.note) else wl.note
        cls, p = wl.predictions[scan_id]
        return f"Model: {cls} ({p:.0%})"

    def refresh_prediction(self) -> None:
        """The model's guess (or its absence) for the scan on screen, in the panel and the overlay."""
        if self.current_scan_id is None:
            return
        self.panel.set_prediction(self.prediction_text(self.current_scan_id))
        self.window.viewer.info = self.scan_info(self.current_scan_id)
        self.window.viewer.update()
        if self.window.center.currentWidget() is self.window.study_view:
            self.window.study_view.set_info(self.window.viewer.info)
