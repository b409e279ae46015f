"""The viewer's arithmetic: window/level from a mouse drag, zoom about a point, fit. Pure; no Qt.

Kept apart from the widget so it can be tested with plain numbers. Windows are in modality units
(Hounsfield for CT). Screen and image coordinates are (x, y) floats; the view maps an image point
``p`` to the screen as ``offset + zoom * p``.
"""

from __future__ import annotations

from aldesk.imaging.scan import WindowPreset

MIN_ZOOM = 0.02
MAX_ZOOM = 64.0
#: At least: a drag across this many pixels changes the width (or level) by the whole value range.
DRAG_PIXELS_FOR_FULL_RANGE = 1024.0
#: And at least: one pixel of drag changes the width (or level) by 1/this of the current width.
DRAG_PIXELS_PER_WIDTH = 100.0


def window_from_drag(start: WindowPreset, dx: float, dy: float, value_range: tuple[float, float],
                     *, min_width: float = 1.0) -> WindowPreset:
    """The window after a right-drag of (dx, dy) screen pixels from ``start`` (PACS convention).

    Right = wider (less contrast), left = narrower; down = higher level (darker), up = lower level
    (brighter). A pixel of drag moves by the larger of 1/DRAG_PIXELS_PER_WIDTH of the current width and
    1/DRAG_PIXELS_FOR_FULL_RANGE of the value range: the contrast changes as fast on an 8-bit PNG shown
    over its whole range as on a CT in an abdomen window (the range alone made PNGs ten times slower).
    The width never drops below ``min_width``.
    """
    lo, hi = value_range
    span = max(float(hi) - float(lo), 1.0)
    per_pixel = max(span / DRAG_PIXELS_FOR_FULL_RANGE, float(start.width) / DRAG_PIXELS_PER_WIDTH)
    width = max(float(start.width) + dx * per_pixel, min_width)
    center = float(start.center) + dy * per_pixel
    return WindowPreset(center, width, "Custom")


def window_bounds(window: WindowPreset) -> tuple[float, float]:
    """(lowest, highest) modality value inside the window: below shows black, above white."""
    return window.center - window.width / 2.0, window.center + window.width / 2.0


def fit_zoom(image_size: tuple[int, int], view_size: tuple[int, int], margin: int = 0) -> float:
    """Zoom that makes a (w, h) image fit inside a (w, h) view, keeping the aspect ratio."""
    iw, ih = image_size
    vw, vh = max(view_size[0] - 2 * margin, 1), max(view_size[1] - 2 * margin, 1)
    if iw <= 0 or ih <= 0:
        return 1.0
    return clamp_zoom(min(vw / iw, vh / ih))


def centred_offset(image_size: tuple[int, int], view_size: tuple[int, int], zoom: float) -> tuple[float, float]:
    """Offset that puts the centre of the image at the centre of the view."""
    return ((view_size[0] - image_size[0] * zoom) / 2.0, (view_size[1] - image_size[1] * zoom) / 2.0)


def clamp_zoom(zoom: float) -> float:
    return min(max(zoom, MIN_ZOOM), MAX_ZOOM)


def zoom_about(zoom: float, offset: tuple[float, float], anchor: tuple[float, float],
               factor: float) -> tuple[float, tuple[float, float]]:
    """Zoom by ``factor`` keeping the image point under ``anchor`` (screen) where it is.

    Returns (new zoom, new offset). The zoom is clamped to [MIN_ZOOM, MAX_ZOOM].
    """
    new_zoom = clamp_zoom(zoom * factor)
    ax, ay = anchor
    ix, iy = (ax - offset[0]) / zoom, (ay - offset[1]) / zoom
    return new_zoom, (ax - ix * new_zoom, ay - iy * new_zoom)


def wheel_factor(angle_delta_y: int) -> float:
    """Zoom factor for a wheel turn: 1.25 per notch (120 units), smooth for touchpads."""
    return 1.25 ** (angle_delta_y / 120.0)


def screen_to_image(point: tuple[float, float], zoom: float, offset: tuple[float, float]) -> tuple[float, float]:
    return (point[0] - offset[0]) / zoom, (point[1] - offset[1]) / zoom


def format_window(window: WindowPreset) -> str:
    """'W 1500 L -600' the way reading-room viewers print it."""
    return f"W {window.width:.0f}  L {window.center:.0f}"
