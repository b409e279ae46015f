"""The display pipeline on hand-computed examples: rescale, window, invert, VOI LUT, presets."""

from __future__ import annotations

import numpy as np
import pytest

from aldesk.imaging import CT_PRESETS, DisplayParams, WindowPreset, apply_rescale, to_display
from aldesk.imaging.display import (
    VoiLut,
    block_mean,
    preview_factor,
    rgb_to_uint8,
    robust_window,
    window_to_uint8,
    ybr_to_rgb,
)

HU = np.array([-1000.0, -160.0, 39.5, 40.0, 140.0, 239.0, 1000.0], dtype=np.float32)


def test_rescale():
    stored = np.array([[0, 1000], [2000, 4095]], dtype=np.int16)
    out = apply_rescale(stored, 1.0, -1024.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[-1024, -24], [976, 3071]])
    np.testing.assert_allclose(apply_rescale(stored, 0.5, 10.0), stored * 0.5 + 10)


def test_linear_window_matches_dicom_formula_by_hand():
    # c=40, w=400: x <= -160 -> 0; x > 239 -> 255; else ((x - 39.5) / 399 + 0.5) * 255, rounded.
    # 39.5 -> 127.5 -> 128; 40 -> 127.82 -> 128; 140 -> 191.73 -> 192.
    got = window_to_uint8(HU, WindowPreset(40, 400))
    np.testing.assert_array_equal(got, [0, 0, 128, 128, 192, 255, 255])


def test_linear_exact_and_sigmoid_are_centred():
    centre = np.array([40.0], dtype=np.float32)
    assert window_to_uint8(centre, WindowPreset(40, 400), function="LINEAR_EXACT")[0] == 128
    assert window_to_uint8(centre, WindowPreset(40, 400), function="SIGMOID")[0] == 128
    sig = window_to_uint8(HU, WindowPreset(40, 400), function="SIGMOID")
    assert np.all(np.diff(sig.astype(int)) >= 0) and sig[0] < 5 and sig[-1] > 250


def test_width_one_is_a_threshold():
    got = window_to_uint8(np.array([39.0, 39.6, 41.0], np.float32), WindowPreset(40, 1))
    np.testing.assert_array_equal(got, [0, 255, 255])


def test_invert_and_monochrome1():
    frame = HU.reshape(1, -1)
    mono2 = DisplayParams(photometric="MONOCHROME2", window=WindowPreset(40, 400))
    mono1 = DisplayParams(photometric="MONOCHROME1", window=WindowPreset(40, 400))
    normal = to_display(frame, mono2).astype(int)
    np.testing.assert_array_equal(to_display(frame, mono2, invert=True), 255 - normal)
    np.testing.assert_array_equal(to_display(frame, mono1), 255 - normal)
    np.testing.assert_array_equal(to_display(frame, mono1, invert=True), normal)


def test_explicit_window_overrides_default_and_input_is_untouched():
    frame = HU.reshape(1, -1).copy()
    params = DisplayParams(window=WindowPreset(0, 10))
    lung = to_display(frame, params, window=CT_PRESETS[0])
    np.testing.assert_array_equal(frame, HU.reshape(1, -1))
    assert lung[0, 0] > 0 and lung[0, -1] == 255  # -1000 HU is inside the lung window


def test_ct_presets():
    assert {p.name: (p.center, p.width) for p in CT_PRESETS} == {
        "Lung": (-600, 1500), "Mediastinum": (50, 350), "Bone": (400, 1800),
        "Brain": (40, 80), "Abdomen": (40, 400)}
    file_window = WindowPreset(40, 400, "FILE")
    ct = DisplayParams(modality="CT", presets=(file_window,))
    assert ct.window_presets() == (file_window, *CT_PRESETS)
    assert DisplayParams(modality="MR", presets=(file_window,)).window_presets() == (file_window,)


def test_voi_lut_is_used_when_no_window_is_asked_for():
    table = np.linspace(0, 1, 11, dtype=np.float32) ** 2
    params = DisplayParams(voi_lut=VoiLut(first_mapped=100, table=table),
                           window=WindowPreset(0, 1))
    frame = np.array([[50, 100, 105, 110, 500]], dtype=np.float32)
    np.testing.assert_array_equal(to_display(frame, params), [[0, 0, 64, 255, 255]])
    # An explicit window bypasses the LUT: 500 -> ((500 - 299.5) / 599 + 0.5) * 255 = 212.9
    assert to_display(frame, params, window=WindowPreset(300, 600))[0, -1] == 213


def test_robust_window_ignores_outliers():
    values = np.concatenate([np.linspace(0, 1000, 100_000), [1e6, -1e6]]).astype(np.float32)
    w = robust_window(values)
    low, high = w.center - 0.5 - (w.width - 1) / 2, w.center - 0.5 + (w.width - 1) / 2
    assert low == pytest.approx(5, abs=2) and high == pytest.approx(995, abs=2)
    mask = np.zeros(10_000, np.float32)
    mask[:10] = 1  # sparse: percentiles coincide -> min..max
    shown = window_to_uint8(mask, robust_window(mask))
    assert shown.min() == 0 and shown.max() == 255


def test_block_mean():
    a = np.arange(16, dtype=np.uint16).reshape(4, 4)
    np.testing.assert_array_equal(block_mean(a, 2), [[2.5, 4.5], [10.5, 12.5]])
    odd = block_mean(np.ones((7, 9, 3), np.uint8), 2)
    assert odd.shape == (3, 4, 3) and odd.dtype == np.float32
    assert block_mean(np.ones((3, 3000)), 24).shape == (1, 125)  # thin images keep a row


@pytest.mark.parametrize("shape,size,factor", [((512, 512), 128, 4), ((1955, 1841), 128, 16),
                                               ((100, 100), 128, 1), ((129, 10), 128, 2)])
def test_preview_factor(shape, size, factor):
    assert preview_factor(*shape, size) == factor
    assert max(s // factor for s in shape) <= size


def test_preview_factor_rejects_zero():
    with pytest.raises(ValueError, match="preview_size == 0, must be >= 1"):
        preview_factor(10, 10, 0)


def test_colour_helpers():
    grey_ybr = np.array([[[0, 128, 128], [200, 128, 128]]], dtype=np.uint8)
    np.testing.assert_array_equal(ybr_to_rgb(grey_ybr, "YBR_FULL"), [[[0] * 3, [200] * 3]])
    red = ybr_to_rgb(np.array([[[76, 85, 255]]], np.uint8), "YBR_FULL_422")[0, 0]
    assert red[0] > 250 and red[1] < 5 and red[2] < 5
    np.testing.assert_array_equal(rgb_to_uint8(np.array([4095, 2048], np.uint16), 12), [255, 128])
    rgb = np.full((1, 1, 3), 7, np.uint8)
    np.testing.assert_array_equal(to_display(rgb, DisplayParams(photometric="RGB"), invert=True),
                                  np.full((1, 1, 3), 248))
