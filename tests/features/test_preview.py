from __future__ import annotations

import numpy as np
import pytest

from aldesk.features.preview import centre_crop, resize, resize_matrix, to_grey, working_image


@pytest.mark.parametrize("n_in, n_out", [(28, 64), (128, 64), (5, 32), (64, 64), (127, 8), (1, 16)])
def test_resize_rows_are_normalised_weights(n_in, n_out):
    m = resize_matrix(n_in, n_out)
    assert m.shape == (n_out, n_in)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, rtol=1e-6)
    assert (m >= 0).all()


def test_resize_to_the_same_size_is_the_identity():
    img = np.arange(30 * 20, dtype=np.uint8).reshape(30, 20)
    np.testing.assert_array_equal(resize(img, 30, 20), img.astype(np.float32))


def test_downsampling_by_an_integer_factor_averages_neighbourhoods():
    img = np.zeros((128, 128), np.float32)
    img[:, 64:] = 255
    small = resize(img, 8)
    assert small[:, :3].max() == 0 and small[:, 5:].min() == 255  # halves preserved, no ringing
    assert small.mean() == pytest.approx(127.5)


def test_grey_conversion_uses_luma_weights():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    np.testing.assert_array_equal(to_grey(rgb), [[77, 149, 29, 255]])


@pytest.mark.parametrize("shape, want", [((100, 50), (50, 50)), ((50, 100), (50, 50)),
                                         ((33, 33), (33, 33))])
def test_centre_crop_to_square(shape, want):
    assert centre_crop(np.zeros(shape), 1, 1).shape == want


def test_working_image_is_square_float_in_unit_range():
    w = working_image(np.full((10, 30, 3), 255, np.uint8), 32)
    assert w.shape == (32, 32) and w.dtype == np.float32
    np.testing.assert_allclose(w, 1.0, rtol=1e-6)
