from __future__ import annotations

import numpy as np
import pytest

from aldesk.features.handcrafted import HandcraftedExtractor, intensity_features


def test_default_dims_are_a_few_hundred_and_documented():
    ext = HandcraftedExtractor()
    X = ext.transform([np.zeros((28, 28), np.uint8)])
    assert X.shape == (1, ext.n_features) == (1, 361)


@pytest.mark.parametrize("options, dims", [({"size": 32, "cell": 8}, 361),
                                           ({"size": 64, "cell": 32}, 253),
                                           ({"grid": 16}, 553)])
def test_options_change_dims_and_version(options, dims):
    base = HandcraftedExtractor()
    ext = HandcraftedExtractor(**options)
    assert ext.transform([np.zeros((40, 30), np.uint8)]).shape == (1, dims)
    assert ext.version != base.version


def test_version_is_stable_for_equal_options():
    assert HandcraftedExtractor(size=64).version == HandcraftedExtractor().version


@pytest.mark.parametrize("options, message", [
    ({"size": 60}, r"size == 60 is not a multiple of cell == 16"),
    ({"size": 8, "cell": 8}, r"size == 8, must be >= 16"),
    ({"cell": 0}, r"cell == 0, must be an int >= 1"),
    ({"grid": 100}, r"grid == 100, must be <= size == 64"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        HandcraftedExtractor(**options)


def test_intensity_statistics_match_numpy():
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    f = intensity_features(grey)
    x = grey.astype(np.float64) / 255
    assert f[0] == pytest.approx(x.mean())
    assert f[1] == pytest.approx(x.std())
    z = (x - x.mean()) / x.std()
    assert f[9] == pytest.approx((z ** 3).mean())       # skew
    assert f[10] == pytest.approx((z ** 4).mean() - 3)  # excess kurtosis
    assert f[12] == pytest.approx(np.log(37 / 53))      # log aspect ratio
    assert f[13:].sum() == pytest.approx(1.0)           # 32-bin histogram of fractions
    # percentiles (1, 5, 25, 50, 75, 95, 99) within one grey level of numpy's
    np.testing.assert_allclose(f[2:9], np.percentile(x, [1, 5, 25, 50, 75, 95, 99]), atol=1.5 / 255)


def test_constant_image_gives_zeros_not_nan_for_shape_statistics():
    f = intensity_features(np.full((20, 20), 77, np.uint8))
    assert f[1] == 0 and f[9] == 0 and f[10] == 0
    assert np.isfinite(f).all()


def test_rgb_and_its_grey_give_the_same_vector():
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (50, 60), dtype=np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    ext = HandcraftedExtractor()
    np.testing.assert_array_equal(ext.transform([rgb]), ext.transform([grey]))


def test_crop_not_pad_a_border_outside_the_central_square_changes_only_global_statistics():
    """Spatial features (HOG, LBP, blocks) see only the central square."""
    rng = np.random.default_rng(4)
    square = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    tall = np.concatenate([np.zeros((10, 64), np.uint8), square, np.zeros((10, 64), np.uint8)])
    ext = HandcraftedExtractor()
    a, b = ext.transform([square, tall])
    spatial = slice(45, None)  # after 13 statistics + 32 histogram bins
    np.testing.assert_allclose(a[spatial], b[spatial], atol=1e-6)
    assert not np.allclose(a[:45], b[:45])


def test_colour_block_sees_colour_and_is_zero_for_grey():
    from aldesk.features.handcrafted import COLOUR_DIMS

    ext = HandcraftedExtractor()
    grey = np.full((40, 40), 120, np.uint8)
    brown = np.dstack([np.full((40, 40), v, np.uint8) for v in (150, 100, 60)])
    blue = np.dstack([np.full((40, 40), v, np.uint8) for v in (60, 100, 150)])
    X = ext.transform([grey, brown, blue])
    assert not X[0, -COLOUR_DIMS:].any()
    assert X[1, -COLOUR_DIMS] == pytest.approx(150 / 255) and X[2, -COLOUR_DIMS] == pytest.approx(60 / 255)
    # the grey part of the vector cannot tell the two tints apart (same luminance), the colour block can
    assert np.abs(X[1, -COLOUR_DIMS:] - X[2, -COLOUR_DIMS:]).max() > 0.3
