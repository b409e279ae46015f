"""The scan viewer: one QWidget painting a QImage, with window/level, zoom, pan, invert and frames.

Shows the stored preview at once (scaled to the scan's size) and swaps in the full-resolution frames
when they are decoded; windowing always starts from the full modality values (16-bit stays 16-bit),
never from the 8-bit preview. The arithmetic (drag -> window, zoom about the cursor, fit) lives in
:mod:`aldesk.ui.windowing`; the pixel pipeline in :mod:`aldesk.imaging.display`.

Mouse: right-drag window/level, wheel scrolls frames (Ctrl+wheel, or wheel on a single image, zooms about the cursor), left- or middle-drag pan, double-click
fit. Keys (when focused; the main window adds menu shortcuts): PageUp/PageDown or Up/Down frames.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen, QTransform
from PySide6.QtWidgets import QSizePolicy, QWidget

from aldesk.imaging.display import DisplayParams, to_display
from aldesk.imaging.scan import WindowPreset
from aldesk.ui import windowing

OVERLAY_MARGIN = 10
OVERLAY_TEXT = QColor(235, 225, 150)
OVERLAY_OUTLINE = QColor(0, 0, 0, 220)


def to_qimage(pixels: np.ndarray) -> QImage:
    """(h, w) or (h, w, 3) uint8 -> a QImage of its own in 32-bit RGB.

    Converted once per image: Qt's raster engine scales RGB32 far faster than 8-bit grey on every
    paint (512x512 -> 890x890 smooth: 1.8 ms against 13 ms, for a 0.6 ms conversion), which is what
    lets a series scroll at PACS speed (tests/benchmarks/bench_scroll.py).
    """
    pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape[:2]
    fmt = QImage.Format.Format_Grayscale8 if pixels.ndim == 2 else QImage.Format.Format_RGB888
    return QImage(pixels.data, w, h, pixels.strides[0], fmt).convertToFormat(QImage.Format.Format_RGB32)


# what the viewer says over a scan whose preview a restore could not find (aldesk.app.previews)
NO_PREVIEW_LABEL = "No stored preview (it was not in the restored backup); reading the file"

class ScanViewer(QWidget):
    """Paints one scan. Feed it with ``show_preview`` then ``set_frames`` (or ``set_frames`` alone)."""

    view_changed = Signal()          # zoom, pan, window, frame or invert changed
    frame_changed = Signal(int)
    painted = Signal(int)            # scan id, after a paint that showed that scan

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.scan_id: int | None = None
        self.frames: np.ndarray | None = None      # (f, h, w) float32 modality values or (f, h, w, 3) uint8
        self.params: DisplayParams | None = None
        self.window: WindowPreset | None = None    # None: the scan's default VOI
        self.invert = False
        self.frame = 0
        self.zoom = 1.0
        self.offset = (0.0, 0.0)
        self.fitted = True                          # keep fitting on resize until the user zooms/pans
        self.is_preview = False
        self.message = ""                           # shown centred when there is no image
        self.info: dict = {}                        # modality, name, size for the overlay
        self.overlay_visible = True
        self.smooth_magnified = False               # above 1:1, show pixels (nearest) unless asked to smooth
        self.last_paint_s = 0.0
        self._pixels: np.ndarray | None = None      # uint8 buffer behind _image
        self._image: QImage | None = None
        self._image_size = (0, 0)                   # full-resolution (w, h) of the scan
        self._drag: tuple | None = None             # (button, start point, start window/offset)
        self._background = QColor(0, 0, 0)
        self._overlay_font = QFont()
        self._overlay_font.setPointSizeF(10.5)
        self._overlay_font.setStyleHint(QFont.StyleHint.Monospace)

    # ------------------------------------------------------------------ feeding
    def clear(self, message: str = "") -> None:
        self.scan_id, self.frames, self.params, self._pixels, self._image = None, None, None, None, None
        self.message = message
        self.update()

    def show_preview(self, scan_id: int, preview: np.ndarray, full_size: tuple[int, int], info: dict) -> None:
        """Show the stored 8-bit preview stretched to the scan's (w, h) until the frames arrive."""
        self._start_scan(scan_id, info, full_size)
        self.is_preview = True
        self._set_pixels(np.ascontiguousarray(preview))
        self.update()

    def set_frames(self, scan_id: int, frames: np.ndarray, params: DisplayParams, info: dict | None = None,
                   *, keep_view: bool = False) -> None:
        """Show decoded frames ((f, h, w) modality values or (f, h, w, 3) RGB) with their display params."""
        h, w = frames.shape[1:3]
        same_scan = scan_id == self.scan_id
        if not same_scan:
            self._start_scan(scan_id, info or {}, (w, h))
        elif info:
            self.info = info
        self.frames, self.params, self.is_preview = frames, params, False
        self._image_size = (w, h)
        if not (same_scan and keep_view):
            self.frame = min(self.frame, frames.shape[0] - 1) if same_scan else 0
        self.message = ""
        self._render()
        if self.fitted:
            self.fit()
        self.update()

    def _start_scan(self, scan_id: int, info: dict, full_size: tuple[int, int]) -> None:
        self.scan_id = scan_id
        self.info = info
        self.frames, self.params = None, None
        self.window = None
        self.frame = 0
        self.message = ""
        self._image_size = full_size
        self.fit(emit=False)  # a new scan always starts fitted: the reader expects the whole image

    # ------------------------------------------------------------------ rendering
    @property
    def n_frames(self) -> int:
        return 0 if self.frames is None else int(self.frames.shape[0])

    @property
    def effective_window(self) -> WindowPreset | None:
        if self.window is not None:
            return self.window
        return self.params.window if self.params is not None else None

    def _render(self) -> None:
        if self.frames is None or self.params is None:
            return
        pixels = to_display(self.frames[self.frame], self.params, window=self.window, invert=self.invert)
        self._set_pixels(pixels)

    def _set_pixels(self, pixels: np.ndarray) -> None:
        if self.is_preview and self.invert:
            pixels = 255 - pixels
        self._pixels = np.ascontiguousarray(pixels)
        self._image = to_qimage(self._pixels)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.fillRect(self.rect(), self._background)
        if self._image is not None:
            iw, ih = self._image_size
            target = QRectF(self.offset[0], self.offset[1], iw * self.zoom, ih * self.zoom)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.interpolates)
            painter.drawImage(target, self._image, QRectF(0, 0, self._image.width(), self._image.height()))
        if self.overlay_visible:
            self._paint_overlay(painter)
        painter.end()
        self.last_paint_s = time.perf_counter()
        if self.scan_id is not None and self._image is not None:
            self.painted.emit(self.scan_id)

    @property
    def no_preview(self) -> bool:
        """Showing a stand-in for a preview the project lacks (not in the restored backup), not an image."""
        return self.is_preview and bool((self.info or {}).get("no_preview"))

    @property
    def magnification(self) -> float:
        """Screen pixels per pixel of the image buffer on screen (> 1: magnified beyond 1:1)."""
        if self._image is None or self._image.width() == 0:
            return 1.0
        return self._image_size[0] * self.zoom / self._image.width()

    @property
    def interpolates(self) -> bool:
        """Smooth only when shrinking (or for the stand-in preview): magnified beyond 1:1 a diagnostic
        viewer shows the pixels as they are (nearest neighbour), unless ``smooth_magnified`` is on."""
        return self.is_preview or self.smooth_magnified or self.magnification <= 1.0

    def set_smooth_magnified(self, on: bool) -> None:
        self.smooth_magnified = bool(on)
        self.update()

    def overlay_lines(self) -> dict[str, list[str]]:
        """Corner texts: {'tl': [...], 'tr': [...], 'bl': [...], 'br': [...]}. Plain data, testable."""
        info = self.info or {}
        w, h = self._image_size
        tl = [str(info.get("name", ""))] if info.get("name") else []
        mod = info.get("modality") or "—"
        tl.append(f"{mod}   {w} × {h}" + (f"   {info['frames']} frames" if info.get("frames", 1) > 1 else ""))
        tr = []
        if info.get("label") and not self.no_preview:  # that one is said in the middle (see _paint_overlay)
            tr.append(str(info["label"]))
        if info.get("prediction"):
            tr.append(str(info["prediction"]))
        bl = [f"Zoom {self.zoom * 100:.0f}%"]
        win = self.effective_window
        if win is not None and not (self.params is not None and self.params.is_colour):
            bl.append(windowing.format_window(win) + (f"  ({win.name})" if win.name else ""))
        if self.invert:
            bl.append("Inverted")
        br = []
        if self.n_frames > 1:
            br.append(f"Frame {self.frame + 1} / {self.n_frames}")
        if self.is_preview:
            br.append("loading full resolution…")
        return {"tl": tl, "tr": tr, "bl": bl, "br": br}

    def _paint_overlay(self, painter: QPainter) -> None:
        painter.setFont(self._overlay_font)
        fm = painter.fontMetrics()
        line_h = fm.height()
        if self._image is None:
            if self.message:
                painter.setPen(QColor(170, 170, 170))
                painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
            return
        lines = self.overlay_lines()
        r = self.rect().adjusted(OVERLAY_MARGIN, OVERLAY_MARGIN, -OVERLAY_MARGIN, -OVERLAY_MARGIN)
        # a dark outline round light text: readable on a white lung field as on black air
        outline = QPen(OVERLAY_OUTLINE, 3.0, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
        path = QPainterPath()

        def draw(x_right: bool, y_bottom: bool, items: list[str]) -> None:
            for i, s in enumerate(items):
                y = (r.bottom() - (len(items) - 1 - i) * line_h - fm.descent()) if y_bottom else (r.top() + fm.ascent() + i * line_h)
                x = (r.right() - fm.horizontalAdvance(s)) if x_right else r.left()
                path.addText(QPointF(x, y), self._overlay_font, s)

        draw(False, False, lines["tl"])
        draw(True, False, lines["tr"])
        draw(False, True, lines["bl"])
        draw(True, True, lines["br"])
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.strokePath(path, outline)
        painter.fillPath(path, OVERLAY_TEXT)
        painter.restore()
        if self.no_preview:
            painter.setPen(QColor(170, 170, 170))
            painter.drawText(r.adjusted(line_h * 2, 0, -line_h * 2, 0),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, str(self.info.get("label", "")))

    # ------------------------------------------------------------------ view operations
    def fit(self, emit: bool = True) -> None:
        size = (self.width(), self.height())
        self.zoom = windowing.fit_zoom(self._image_size, size, margin=4)
        self.offset = windowing.centred_offset(self._image_size, size, self.zoom)
        self.fitted = True
        self._changed(emit)

    def actual_size(self) -> None:
        """1:1 — one image pixel per screen pixel, centred on what was at the centre."""
        centre = (self.width() / 2.0, self.height() / 2.0)
        self.zoom, self.offset = windowing.zoom_about(self.zoom, self.offset, centre, 1.0 / self.zoom)
        self.fitted = False
        self._changed()

    def zoom_by(self, factor: float, anchor: tuple[float, float] | None = None) -> None:
        anchor = anchor or (self.width() / 2.0, self.height() / 2.0)
        self.zoom, self.offset = windowing.zoom_about(self.zoom, self.offset, anchor, factor)
        self.fitted = False
        self._changed()

    def pan_by(self, dx: float, dy: float) -> None:
        self.offset = (self.offset[0] + dx, self.offset[1] + dy)
        self.fitted = False
        self._changed()

    def set_window(self, window: WindowPreset | None) -> None:
        """A preset or a dragged window; None returns to the scan's own default."""
        self.window = window
        self._render()
        self._changed()

    def set_invert(self, invert: bool) -> None:
        if invert != self.invert:
            self.invert = invert
            if self.is_preview and self._pixels is not None:
                self._pixels = np.ascontiguousarray(255 - self._pixels)
                self._image = to_qimage(self._pixels)
            else:
                self._render()
            self._changed()

    def set_frame(self, index: int) -> None:
        if self.n_frames == 0:
            return
        index = max(0, min(int(index), self.n_frames - 1))
        if index != self.frame:
            self.frame = index
            self._render()
            self.frame_changed.emit(index)
            self._changed()

    def reset(self) -> None:
        """Default window, no inversion, first frame, fitted."""
        self.window = None
        self.invert = False
        self.frame = 0
        self._render()
        self.fit()

    def _changed(self, emit: bool = True) -> None:
        self.update()
        if emit:
            self.view_changed.emit()

    def presets(self) -> tuple[WindowPreset, ...]:
        return self.params.window_presets() if self.params is not None else ()

    # ------------------------------------------------------------------ Qt events
    def resizeEvent(self, event) -> None:  # noqa: N802
        if self.fitted:
            self.fit(emit=False)
        super().resizeEvent(event)

    def wheelEvent(self, event) -> None:  # noqa: N802
        """As in PACS viewers: the wheel scrolls frames/slices, Ctrl+wheel zooms (single images: wheel zooms)."""
        dy = event.angleDelta().y()
        if dy and self.n_frames > 1 and not event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = max(1, abs(dy) // 120)
            self.set_frame(self.frame + (steps if dy < 0 else -steps))  # wheel towards the reader: deeper
        elif dy:
            pos = event.position()
            self.zoom_by(windowing.wheel_factor(dy), (pos.x(), pos.y()))
        event.accept()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        if event.button() == Qt.MouseButton.RightButton and self.effective_window is not None:
            self._drag = ("window", (pos.x(), pos.y()), self.effective_window)
            self.setCursor(Qt.CursorShape.SizeAllCursor)
        elif event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._drag = ("pan", (pos.x(), pos.y()), self.offset)
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._drag is None:
            return
        kind, (x0, y0), start = self._drag
        pos = event.position()
        dx, dy = pos.x() - x0, pos.y() - y0
        if kind == "window":
            self.set_window(windowing.window_from_drag(start, dx, dy, self.params.value_range if self.params else (0, 255)))
        else:
            self.offset = (start[0] + dx, start[1] + dy)
            self.fitted = False
            self._changed()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        self._drag = None
        self.unsetCursor()

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        self.fit()

    def keyPressEvent(self, event) -> None:  # noqa: N802
        key = event.key()
        if key in (Qt.Key.Key_PageDown, Qt.Key.Key_Down) and self.n_frames > 1:
            self.set_frame(self.frame + 1)
        elif key in (Qt.Key.Key_PageUp, Qt.Key.Key_Up) and self.n_frames > 1:
            self.set_frame(self.frame - 1)
        else:
            super().keyPressEvent(event)

    def image_transform(self) -> QTransform:
        return QTransform(self.zoom, 0, 0, self.zoom, self.offset[0], self.offset[1])
