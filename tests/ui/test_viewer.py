"""ScanViewer: full-range windowing, right-drag W/L, wheel zoom at the cursor, pan, frames, overlay."""

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from pytestqt.qtbot import QtBot

from aldesk.imaging import read_frames, to_display
from aldesk.imaging.display import DisplayParams
from aldesk.imaging.scan import WindowPreset
from aldesk.ui.viewer import ScanViewer
from tests.ui.conftest import DEMO_SCANS


@pytest.fixture
def viewer(qtbot: QtBot):
    v = ScanViewer()
    qtbot.addWidget(v)
    v.resize(800, 600)
    v.show()
    qtbot.waitExposed(v)
    return v


def ct():
    return read_frames(DEMO_SCANS / "dicom" / "CT_small.dcm")


def test_16_bit_ct_is_windowed_from_full_range_not_from_a_preview(viewer):
    frames, params = ct()
    assert frames.dtype == np.float32 and frames.max() - frames.min() > 255
    viewer.set_frames(7, frames, params, {"modality": "CT"})
    lung = next(p for p in params.window_presets() if p.name == "Lung")
    viewer.set_window(lung)
    assert np.array_equal(viewer._pixels, to_display(frames[0], params, window=lung))
    bone = next(p for p in params.window_presets() if p.name == "Bone")
    viewer.set_window(bone)
    assert not np.array_equal(viewer._pixels, to_display(frames[0], params, window=lung))
    names = [p.name for p in viewer.presets()]
    assert {"Lung", "Mediastinum", "Bone", "Brain", "Abdomen"} <= set(names)


def test_right_drag_changes_window_and_level(qtbot, viewer):
    frames, params = ct()
    viewer.set_frames(1, frames, params)
    start = viewer.effective_window
    qtbot.mousePress(viewer, Qt.MouseButton.RightButton, pos=QPoint(400, 300))
    qtbot.mouseMove(viewer, QPoint(500, 250))
    qtbot.mouseRelease(viewer, Qt.MouseButton.RightButton, pos=QPoint(500, 250))
    win = viewer.effective_window
    assert win.width > start.width and win.center < start.center
    assert "Custom" in viewer.overlay_lines()["bl"][1]


def test_wheel_zooms_about_the_cursor(viewer):
    frames, params = ct()
    viewer.set_frames(1, frames, params)
    z0, off0 = viewer.zoom, viewer.offset
    pos = QPointF(200, 150)
    img_pt = ((pos.x() - off0[0]) / z0, (pos.y() - off0[1]) / z0)
    ev = QWheelEvent(pos, viewer.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    viewer.wheelEvent(ev)
    assert viewer.zoom == pytest.approx(z0 * 1.25)
    after = ((pos.x() - viewer.offset[0]) / viewer.zoom, (pos.y() - viewer.offset[1]) / viewer.zoom)
    assert after == pytest.approx(img_pt)
    assert not viewer.fitted


def test_left_drag_pans_fit_and_actual_size(qtbot, viewer):
    frames, params = ct()
    viewer.set_frames(1, frames, params)
    off = viewer.offset
    qtbot.mousePress(viewer, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    qtbot.mouseMove(viewer, QPoint(130, 90))
    qtbot.mouseRelease(viewer, Qt.MouseButton.LeftButton, pos=QPoint(130, 90))
    assert viewer.offset == pytest.approx((off[0] + 30, off[1] - 10))
    viewer.actual_size()
    assert viewer.zoom == pytest.approx(1.0)
    viewer.fit()
    assert viewer.zoom == pytest.approx(min((800 - 8) / 128, (600 - 8) / 128))


def test_invert_and_reset(viewer):
    frames, params = ct()
    viewer.set_frames(1, frames, params)
    normal = viewer._pixels.copy()
    viewer.set_invert(True)
    assert np.array_equal(viewer._pixels, 255 - normal) or np.abs(viewer._pixels.astype(int) - (255 - normal)).max() <= 1
    viewer.set_window(WindowPreset(0, 100))
    viewer.zoom_by(3.0)
    viewer.reset()
    assert viewer.window is None and not viewer.invert and viewer.fitted
    assert np.array_equal(viewer._pixels, normal)


def test_multiframe_keys_and_overlay(qtbot, viewer):
    frames, params = read_frames(DEMO_SCANS / "dicom" / "emri_small_10frames.dcm")
    viewer.set_frames(3, frames, params, {"modality": "MR", "name": "emri", "frames": 10})
    assert viewer.n_frames == 10
    with qtbot.waitSignal(viewer.frame_changed) as sig:
        qtbot.keyClick(viewer, Qt.Key.Key_PageDown)
    assert sig.args == [1]
    qtbot.keyClick(viewer, Qt.Key.Key_PageUp)
    qtbot.keyClick(viewer, Qt.Key.Key_PageUp)  # clamps at the first frame
    assert viewer.frame == 0
    viewer.set_frame(9)
    assert np.array_equal(viewer._pixels, to_display(frames[9], params))
    lines = viewer.overlay_lines()
    assert lines["tl"] == ["emri", "MR   64 × 64   10 frames"]
    assert lines["br"] == ["Frame 10 / 10"]
    assert lines["bl"][0].startswith("Zoom ")
    assert lines["bl"][1].startswith("W ")


def test_preview_shows_at_once_then_full_resolution_replaces_it(qtbot, viewer):
    frames, params = ct()
    preview = to_display(frames[0], params)[::4, ::4]
    with qtbot.waitSignal(viewer.painted) as sig:
        viewer.show_preview(5, preview, (128, 128), {"modality": "CT"})
    assert sig.args == [5]
    assert viewer.is_preview and "loading full resolution…" in viewer.overlay_lines()["br"]
    assert viewer.zoom == pytest.approx(min((800 - 8) / 128, (600 - 8) / 128))  # sized like the full scan
    viewer.set_frames(5, frames, params)
    assert not viewer.is_preview and viewer._pixels.shape == (128, 128)


def test_colour_scan_has_no_window(viewer):
    rgb = np.zeros((1, 4, 6, 3), np.uint8)
    rgb[..., 0] = 200
    viewer.set_frames(2, rgb, DisplayParams(photometric="RGB"))
    assert viewer._image.pixelColor(0, 0).getRgb()[:3] == (200, 0, 0)   # shown in colour, not as grey
    assert all(not s.startswith("W ") for s in viewer.overlay_lines()["bl"])


def _grabbed(viewer) -> np.ndarray:
    img = viewer.grab().toImage().convertToFormat(viewer.grab().toImage().Format.Format_Grayscale8)
    ptr = img.constBits()
    return np.array(ptr, dtype=np.uint8).reshape(img.height(), img.bytesPerLine())[:, :img.width()]


def test_small_images_magnified_show_pixels_not_a_blur_with_a_toggle(viewer):
    """Issue 13: a 28 x 28 image at ~2000 % was smoothed into a blur; above 1:1 the default is nearest."""
    viewer.overlay_visible = False
    checker = (np.indices((28, 28)).sum(axis=0) % 2 * 255).astype(np.float32)[None]
    viewer.set_frames(1, checker, DisplayParams(photometric="MONOCHROME2"))
    assert viewer.magnification > 10 and not viewer.interpolates
    shot = _grabbed(viewer)
    x0, y0 = int(viewer.offset[0]), int(viewer.offset[1])
    inside = shot[y0 + 5:y0 + int(28 * viewer.zoom) - 5, x0 + 5:x0 + int(28 * viewer.zoom) - 5]
    assert np.isin(inside, [0, 255]).mean() > 0.99            # hard-edged squares, no in-between greys
    viewer.set_smooth_magnified(True)
    assert viewer.interpolates
    smooth = _grabbed(viewer)[y0 + 5:y0 + int(28 * viewer.zoom) - 5, x0 + 5:x0 + int(28 * viewer.zoom) - 5]
    assert np.isin(smooth, [0, 255]).mean() < 0.9             # the toggle brings interpolation back


def test_large_images_shrunk_to_fit_are_still_interpolated(viewer):
    frames = np.random.default_rng(0).integers(0, 255, (1, 2000, 1600)).astype(np.float32)
    viewer.set_frames(1, frames, DisplayParams(photometric="MONOCHROME2"))
    assert viewer.magnification < 1 and viewer.interpolates


def test_overlay_text_has_a_dark_outline_readable_on_a_white_image(viewer):
    white = np.full((1, 64, 64), 255, np.float32)
    viewer.resize(400, 400)
    viewer.set_frames(1, white, DisplayParams(photometric="MONOCHROME2"), {"name": "bright.png", "modality": "CR"})
    img = viewer.grab().toImage().convertToFormat(viewer.grab().toImage().Format.Format_RGB888)
    rgb = np.array(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[:, :img.width() * 3]
    rgb = rgb.reshape(img.height(), img.width(), 3).astype(int)
    x0, y0 = int(viewer.offset[0]), int(viewer.offset[1])
    corner = rgb[y0:y0 + 40, x0:x0 + 200]          # the top-left overlay text over white pixels
    glyph = (corner[..., 0] > 200) & (corner[..., 2] < 180)          # the pale yellow text
    dark = corner.max(axis=2) < 90
    assert glyph.sum() > 30
    # an outline, not a drop shadow: dark pixels just left of and just above the glyphs too
    assert (dark[:, :-1] & glyph[:, 1:]).sum() > 10 and (dark[:-1, :] & glyph[1:, :]).sum() > 10
