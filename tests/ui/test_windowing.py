"""The viewer's window/level and zoom arithmetic, without any widget."""

import pytest

from aldesk.imaging.scan import WindowPreset
from aldesk.ui import windowing as w


def test_right_drag_right_widens_and_down_raises_level_scaled_to_value_range():
    start = WindowPreset(40.0, 400.0, "Abdomen")
    ct_range = (-1024.0, 3072.0)  # 4096 HU: 1024 px sweep the range, so 4 HU per pixel
    out = w.window_from_drag(start, dx=100, dy=-50, value_range=ct_range)
    assert out.width == pytest.approx(400 + 400)
    assert out.center == pytest.approx(40 - 200)
    assert out.name == "Custom"


def test_drag_sensitivity_follows_the_range_so_8_bit_and_16_bit_feel_alike():
    a = w.window_from_drag(WindowPreset(128, 256), 1024, 0, (0, 255))
    b = w.window_from_drag(WindowPreset(32768, 65536), 1024, 0, (0, 65535))
    assert (a.width - 256) / 256 == pytest.approx((b.width - 65536) / 65536)


def test_a_png_window_changes_as_fast_as_a_ct_window():
    """Issue 13: right-drag on PNGs was ~10x slower than on DICOM (sensitivity followed the range only)."""
    png = w.window_from_drag(WindowPreset(128, 256), dx=100, dy=100, value_range=(0, 255))
    ct = w.window_from_drag(WindowPreset(40, 400, "Abdomen"), dx=100, dy=100, value_range=(-1024, 3071))
    assert png.width / 256 == pytest.approx(ct.width / 400) == pytest.approx(2.0)   # 100 px doubles both
    assert (png.center - 128) / 256 == pytest.approx((ct.center - 40) / 400)
    narrow = w.window_from_drag(WindowPreset(40, 80, "Brain"), dx=10, dy=0, value_range=(-1024, 3071))
    assert narrow.width == pytest.approx(80 + 10 * 4095 / 1024)   # narrow windows still move by the range


def test_width_never_drops_below_one():
    out = w.window_from_drag(WindowPreset(100, 50), dx=-10_000, dy=0, value_range=(0, 4095))
    assert out.width == 1.0


def test_window_bounds_and_format():
    assert w.window_bounds(WindowPreset(-600, 1500)) == (-1350, 150)
    assert w.format_window(WindowPreset(-600, 1500)) == "W 1500  L -600"


def test_fit_keeps_aspect_and_centres():
    z = w.fit_zoom((2000, 1000), (1000, 800))
    assert z == pytest.approx(0.5)
    assert w.centred_offset((2000, 1000), (1000, 800), z) == pytest.approx((0.0, 150.0))


def test_zoom_about_keeps_the_point_under_the_cursor():
    zoom, offset = 2.0, (10.0, 20.0)
    anchor = (310.0, 220.0)
    before = w.screen_to_image(anchor, zoom, offset)
    new_zoom, new_offset = w.zoom_about(zoom, offset, anchor, 1.25)
    assert new_zoom == pytest.approx(2.5)
    assert w.screen_to_image(anchor, new_zoom, new_offset) == pytest.approx(before)


def test_zoom_is_clamped():
    z, _ = w.zoom_about(w.MAX_ZOOM, (0, 0), (0, 0), 10.0)
    assert z == w.MAX_ZOOM
    assert w.fit_zoom((10**6, 10**6), (10, 10)) == w.MIN_ZOOM


def test_wheel_factor_one_notch_and_inverse():
    assert w.wheel_factor(120) == pytest.approx(1.25)
    assert w.wheel_factor(120) * w.wheel_factor(-120) == pytest.approx(1.0)
