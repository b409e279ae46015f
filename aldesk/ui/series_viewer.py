"""Read a series like a PACS: scroll slices, cine, and a study as a grid of series viewports.

``SliceLoader`` decodes single images ((path, frame) keys) on a small thread pool into an LRU bounded
by bytes, so memory stays flat however large the study; viewports ask it for the slice on screen
first and prefetch the neighbours in the scroll direction (stale requests that have not started are
dropped). ``SeriesViewport`` is a ScanViewer whose frames are the slices of one stack: wheel and
Up/Down scroll, Ctrl+wheel zooms, window/level and zoom stay as they are while scrolling, and the
overlay says "slice 47 / 133 · z = −112.5 mm". ``StudyView`` lays a unit's series out as 1×1, 1×2 or
2×2 viewports with one active viewport (the one the toolbar and keys act on).

Never touches the project: it is handed plain ``aldesk.app.units.UnitView`` data.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QObject, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QColor, QKeySequence, QPainter, QPen, QShortcut
from PySide6.QtWidgets import QGridLayout, QWidget

from aldesk.imaging.display import DisplayParams, to_display
from aldesk.ui.viewer import ScanViewer
from aldesk.ui.workers import Worker

SLICE_BUDGET_BYTES = 256 * 1024 * 1024   # decoded slices kept (512x512 float32 CT: ~250 slices)
PREFETCH_AHEAD = 24                      # slices decoded ahead in the scroll direction
PREFETCH_BEHIND = 6
CINE_FPS = 15
GRIDS = {1: (1, 1), 2: (1, 2), 4: (2, 2)}
ACTIVE_COLOUR = QColor(230, 190, 60)

Key = tuple[str, int]   # (file path, frame index)


def _decode_body(path: str):
    def body(progress, should_stop):
        from aldesk.imaging import read_frames

        return read_frames(path)

    return body


class SliceLoader(QObject):
    """Decoded slices by (path, frame) in an LRU bounded by bytes; decodes off the GUI thread."""

    decoded = Signal(object)               # the Key now available
    failed = Signal(object, object)        # Key, exception

    def __init__(self, parent: QObject | None = None, budget_bytes: int = SLICE_BUDGET_BYTES, threads: int = 2):
        super().__init__(parent)
        self.budget_bytes = budget_bytes
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self.pool.setExpiryTimeout(-1)
        self._cache: OrderedDict[Key, tuple[np.ndarray, DisplayParams]] = OrderedDict()
        self._bytes = 0
        self._pending: dict[str, tuple[int, Worker]] = {}   # path -> (tag, worker): a file decodes once
        self._owner: dict[str, int] = {}                    # path -> id of the viewport that asked for it
        self._by_tag: dict[int, str] = {}
        self._next_tag = 1
        self.errors: dict[str, BaseException] = {}

    def get(self, key: Key) -> tuple[np.ndarray, DisplayParams] | None:
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
        return hit

    def __contains__(self, key: Key) -> bool:
        return key in self._cache

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    def request(self, key: Key, *, urgent: bool = True, owner: int = 0) -> bool:
        """Start decoding ``key``'s file unless cached or under way. True when already cached."""
        if key in self._cache:
            self._cache.move_to_end(key)
            return True
        path = key[0]
        if path in self._pending or path in self.errors:
            return False
        self._owner[path] = owner
        tag = self._next_tag
        self._next_tag += 1
        worker = Worker(_decode_body(path), "decode slice", tag=tag)
        worker.signals.finished.connect(self._on_worker_finished)
        worker.signals.failed.connect(self._on_worker_failed)
        self._pending[path] = (tag, worker)
        self._by_tag[tag] = path
        self.pool.start(worker, 2 if urgent else 0)
        return False

    def prefetch(self, keys: list[Key], owner: int = 0, keep: Key | None = None) -> None:
        """Decode ``keys`` (nearest first) for ``owner``; that owner's queued requests for other files
        (except ``keep``, the slice on screen) that have not started yet are dropped."""
        wanted = {k[0] for k in keys} | ({keep[0]} if keep else set())
        for path, (tag, worker) in list(self._pending.items()):
            if self._owner.get(path) == owner and path not in wanted and self.pool.tryTake(worker):
                self._pending.pop(path, None)
                self._by_tag.pop(tag, None)
        for key in keys:
            self.request(key, urgent=False, owner=owner)

    def is_pending(self, key: Key) -> bool:
        return key[0] in self._pending

    def clear(self) -> None:
        self._cache.clear()
        self._bytes = 0
        self.errors.clear()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        self.pool.clear()
        return self.pool.waitForDone(timeout_ms)

    def _on_worker_finished(self, tag: int, result) -> None:
        path = self._by_tag.pop(tag, None)
        if path is None:
            return
        self._pending.pop(path, None)
        self._owner.pop(path, None)
        frames, params = result
        for i in range(frames.shape[0]):
            key = (path, i)
            frame = frames[i]
            self._cache[key] = (frame, params)
            self._bytes += frame.nbytes
        while self._bytes > self.budget_bytes and len(self._cache) > 1:
            _, (old, _) = self._cache.popitem(last=False)
            self._bytes -= old.nbytes
        for i in range(frames.shape[0]):
            self.decoded.emit((path, i))

    def _on_worker_failed(self, tag: int, exc: BaseException) -> None:
        path = self._by_tag.pop(tag, None)
        if path is None:
            return
        self._pending.pop(path, None)
        self.errors[path] = exc
        self.failed.emit((path, 0), exc)


class SeriesViewport(ScanViewer):
    """One series, one stack at a time; its frames are the stack's slices, decoded on demand."""

    clicked = Signal(object)   # self: the user wants this viewport active

    def __init__(self, loader: SliceLoader, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(160, 120)
        self.loader = loader
        self.series = None              # aldesk.app.units.SeriesView
        self.stack_index = 0
        self.active = False
        self.direction = 1
        self.shown_key: Key | None = None   # the slice whose pixels are on screen
        self.cine = QTimer(self)
        self.cine.setInterval(int(1000 / CINE_FPS))
        self.cine.timeout.connect(self._on_cine_timeout)
        loader.decoded.connect(self._on_loader_decoded)
        loader.failed.connect(self._on_loader_failed)

    # ------------------------------------------------------------------ feeding
    def set_series(self, scan_id: int, series, info: dict | None = None, stack: int = 0) -> None:
        """Show ``series`` (a SeriesView) from its first slice, fitted, with the stack's own window."""
        self.cine.stop()
        self._start_scan(scan_id, dict(info or {}), (0, 0))
        self.series = series
        self.stack_index = max(0, min(stack, len(series.stacks) - 1))
        self.frame = 0
        self.shown_key = None
        self._pixels, self._image = None, None
        self.message = "loading…"
        self._render()
        self._prefetch()
        self.update()

    @property
    def stack(self):
        if self.series is None or not self.series.stacks:
            return None
        return self.series.stacks[self.stack_index]

    @property
    def n_frames(self) -> int:
        return len(self.stack.images) if self.stack is not None else super().n_frames

    def current_key(self) -> Key | None:
        return self.stack.images[self.frame] if self.stack is not None else None

    # ------------------------------------------------------------------ rendering
    def _render(self) -> None:
        if self.series is None:
            return super()._render()
        key = self.current_key()
        if key is None:
            return
        hit = self.loader.get(key)
        if hit is None:
            self.loader.request(key, urgent=True, owner=id(self))
            return
        pixels, params = hit
        first = self.params is None
        if first:
            self.params = params    # the stack's default window and presets: no brightness jumps while scrolling
            self.frames = None
        window = self.window or self.params.window
        self._set_pixels(to_display(pixels, params, window=window if not params.is_colour else None, invert=self.invert))
        self.shown_key = key
        self.message = ""
        h, w = pixels.shape[:2]
        if first or self._image_size != (w, h):
            self._image_size = (w, h)
            if self.fitted:
                self.fit(emit=False)

    def set_frame(self, index: int) -> None:
        if self.series is None:
            return super().set_frame(index)
        n = self.n_frames
        if n == 0:
            return
        index = max(0, min(int(index), n - 1))
        if index != self.frame:
            self.direction = 1 if index > self.frame else -1
            self.frame = index
            self._render()
            self._prefetch()
            self.frame_changed.emit(index)
            self._changed()

    def set_stack(self, index: int) -> None:
        """Another stack of the series (a plane of a localizer, an echo, a time point); same slice fraction."""
        if self.series is None or not 0 <= index < len(self.series.stacks) or index == self.stack_index:
            return
        fraction = self.frame / max(1, self.n_frames - 1)
        self.stack_index = index
        self.frame = round(fraction * (self.n_frames - 1))
        self.params = None  # the new stack's own default window, unless the reader set one
        self._render()
        self._prefetch()
        self.frame_changed.emit(self.frame)
        self._changed()

    def _prefetch(self) -> None:
        stack = self.stack
        if stack is None:
            return
        n, i, d = len(stack.images), self.frame, self.direction
        order = [i + d * k for k in range(1, PREFETCH_AHEAD + 1)] + [i - d * k for k in range(1, PREFETCH_BEHIND + 1)]
        self.loader.prefetch([stack.images[j] for j in order if 0 <= j < n], owner=id(self), keep=stack.images[i])

    def _on_loader_decoded(self, key) -> None:
        if self.series is not None and key == self.current_key() and self.shown_key != key:
            self._render()
            self._changed()   # the toolbar learns the stack's window presets from its first slice

    def _on_loader_failed(self, key, exc) -> None:
        cur = self.current_key()
        if cur is not None and key[0] == cur[0]:
            self.message = f"slice cannot be shown: {exc}"
            self.update()

    # ------------------------------------------------------------------ cine
    def toggle_cine(self) -> None:
        if self.cine.isActive():
            self.cine.stop()
        elif self.n_frames > 1:
            self.cine.start()
        self.update()

    def _on_cine_timeout(self) -> None:
        if self.n_frames < 2:
            self.cine.stop()
            return
        nxt = self.frame + 1 if self.frame + 1 < self.n_frames else 0
        self.direction = 1
        self.set_frame(nxt)

    # ------------------------------------------------------------------ overlay
    def overlay_lines(self) -> dict[str, list[str]]:
        lines = super().overlay_lines()
        stack = self.stack
        if stack is None:
            return lines
        title = self.series.title
        if len(self.series.stacks) > 1:
            title += f" · {stack.label} ({self.stack_index + 1}/{len(self.series.stacks)})"
        w, h = self._image_size
        lines["tl"] = [title, f"{self.info.get('modality') or '—'}   {w} × {h}"]
        lines["br"] = [slice_caption(self.frame, len(stack.images), stack.positions[self.frame])]
        if self.shown_key != self.current_key():
            lines["br"].append("loading…")
        if self.cine.isActive():
            lines["br"].append(f"cine {CINE_FPS} fps")
        lines["tr"] = lines["tr"] + [f"⚠ {p}" for p in self.series.problems]
        return lines

    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        if self.active:
            painter = QPainter(self)
            painter.setPen(QPen(ACTIVE_COLOUR, 2))
            painter.drawRect(self.rect().adjusted(1, 1, -1, -1))
            painter.end()

    # ------------------------------------------------------------------ mouse
    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.clicked.emit(self)
        super().mousePressEvent(event)


def slice_caption(index: int, n: int, z: float | None) -> str:
    """'slice 47 / 133 · z = −112.5 mm' (a typographic minus, as printed on films)."""
    text = f"slice {index + 1} / {n}"
    if z is not None:
        text += f" · z = {z:.1f} mm".replace("-", "−")
    return text


class StudyView(QWidget):
    """A unit's series in a grid of viewports (1×1, 1×2, 2×2); one is active. Keys: Left/Right move
    between series, [ ] between the stacks of a series, C cine, L cycles the grid."""

    active_changed = Signal(object)   # the active SeriesViewport

    def __init__(self, loader: SliceLoader | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.loader = loader or SliceLoader(self)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.viewports = [SeriesViewport(self.loader, self) for _ in range(4)]
        for vp in self.viewports:
            vp.clicked.connect(self._on_viewport_clicked)
        self.unit = None
        self.scan_id: int | None = None
        self.info: dict = {}
        self.cells = 1
        self.chosen_cells: int | None = None   # the reader's grid; None: by series count
        self.first = 0                         # series shown in the first cell
        self.active_series = 0
        self._shortcuts = []
        for name, key, slot in (("next_series", "Right", self.next_series),
                                ("previous_series", "Left", self.previous_series),
                                ("next_stack", "]", lambda: self.active.set_stack(self.active.stack_index + 1)),
                                ("previous_stack", "[", lambda: self.active.set_stack(self.active.stack_index - 1)),
                                ("cine", "C", lambda: self.active.toggle_cine()),
                                ("grid", "L", self.cycle_grid)):
            sc = QShortcut(QKeySequence(key), self)
            sc.setObjectName(name)
            sc.setWhatsThis(name.replace("_", " ").capitalize())
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
            self._shortcuts.append(sc)

    @property
    def active(self) -> SeriesViewport:
        return self.viewports[self.active_series - self.first]

    def show_unit(self, scan_id: int, unit, info: dict | None = None) -> None:
        """Lay out ``unit`` (a UnitView): the largest series active, in as many cells as there are series."""
        self.unit, self.scan_id, self.info = unit, scan_id, dict(info or {})
        n = len(unit.series)
        self.cells = self.chosen_cells or (1 if n == 1 else 2 if n == 2 else 4)
        self.cells = min(self.cells, 4)
        self.first = 0
        self.active_series = 0
        self._fill()
        self._set_active(0)

    def _fill(self) -> None:
        rows, cols = GRIDS[self.cells]
        for vp in self.viewports:
            self.grid.removeWidget(vp)
            vp.hide()
            vp.cine.stop()
        for k in range(self.cells):
            idx = self.first + k
            vp = self.viewports[k]
            if idx < len(self.unit.series):
                self.grid.addWidget(vp, k // cols, k % cols)
                vp.show()
                vp.set_series(self.scan_id, self.unit.series[idx], self.info)
            else:
                vp.series = None
        for r in range(2):
            self.grid.setRowStretch(r, 1 if r < rows else 0)
        for c in range(2):
            self.grid.setColumnStretch(c, 1 if c < cols else 0)

    def _set_active(self, series_index: int) -> None:
        n = len(self.unit.series)
        series_index = max(0, min(series_index, n - 1))
        if not self.first <= series_index < self.first + self.cells:
            self.first = (series_index // self.cells) * self.cells
            self._fill()
        self.active_series = series_index
        for vp in self.viewports:
            vp.active = vp is self.active and self.cells > 1
            vp.update()
        self.active.setFocus()
        self.active_changed.emit(self.active)

    def next_series(self) -> None:
        self._set_active(self.active_series + 1)

    def previous_series(self) -> None:
        self._set_active(self.active_series - 1)

    def cycle_grid(self) -> None:
        order = [1, 2, 4]
        self.chosen_cells = order[(order.index(self.cells) + 1) % len(order)]
        keep = self.active_series
        self.cells = self.chosen_cells
        self.first = (keep // self.cells) * self.cells
        self._fill()
        self._set_active(keep)

    def set_info(self, info: dict) -> None:
        """Label / prediction text for the overlays, without reloading anything."""
        self.info = dict(info)
        for vp in self.viewports:
            if vp.series is not None:
                vp.info = dict(info)
                vp.update()

    def stop(self) -> None:
        for vp in self.viewports:
            vp.cine.stop()

    def _on_viewport_clicked(self, vp: SeriesViewport) -> None:
        k = self.viewports.index(vp)
        if vp.series is not None and self.first + k != self.active_series:
            self._set_active(self.first + k)
