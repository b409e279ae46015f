from __future__ import annotations

import numpy as np
import pytest

from aldesk.errors import ExtractorNotFittedError, FeatureError
from aldesk.features.learned import PatchDictionaryExtractor

SMALL = {"n_centroids": 8, "n_patches": 5_000}


@pytest.fixture(scope="module")
def fitted(pool):
    return PatchDictionaryExtractor(**SMALL).fit(pool[:100])


def test_transform_before_fit_says_what_to_do(previews):
    ext = PatchDictionaryExtractor(**SMALL)
    assert ext.needs_fit and not ext.is_fitted
    with pytest.raises(ExtractorNotFittedError, match=r"not fitted: call fit\(previews\)"):
        ext.transform([previews["grey_128"]])
    with pytest.raises(ExtractorNotFittedError, match="not fitted"):
        ext.get_state()


def test_fit_is_deterministic_with_a_seed(pool, fitted):
    again = PatchDictionaryExtractor(**SMALL).fit(pool[:100])
    for key, value in fitted.get_state().items():
        np.testing.assert_array_equal(again.get_state()[key], value)
    other = PatchDictionaryExtractor(**SMALL, random_state=1).fit(pool[:100])
    assert not np.array_equal(other.get_state()["centroids"], fitted.get_state()["centroids"])
    assert other.version != fitted.version


def test_output_is_default_plus_pooled_dictionary_responses(fitted, previews):
    from aldesk.features.handcrafted import HandcraftedExtractor

    X = fitted.transform([previews["grey_128"], previews["tall_128x40"]])
    default = HandcraftedExtractor().transform([previews["grey_128"], previews["tall_128x40"]])
    assert X.shape == (2, 361 + 8 * 9) == (2, fitted.n_features)
    np.testing.assert_array_equal(X[:, :361], default)
    assert (X[:, 361:] >= 0).all() and X[:, 361:].any()


def test_state_is_small_plain_float32_arrays(fitted):
    state = fitted.get_state()
    assert set(state) == {"patch_mean", "whitening", "centroids"}
    assert all(v.dtype == np.float32 for v in state.values())
    assert sum(v.nbytes for v in state.values()) < 20_000


@pytest.mark.parametrize("options", [{"n_centroids": 16}, {"pool": 2}, {"size": 40},
                                     {"random_state": 3}, {"n_patches": 6_000}])
def test_version_changes_with_every_option(options):
    assert PatchDictionaryExtractor(**{**SMALL, **options}).version != \
        PatchDictionaryExtractor(**SMALL).version


def test_version_does_not_depend_on_fitting(pool):
    """The app looks a cached set up by (name, version) before it fits."""
    ext = PatchDictionaryExtractor(**SMALL)
    before = ext.version
    assert ext.fit(pool[:20]).version == before


def test_state_from_other_options_is_refused(fitted):
    with pytest.raises(FeatureError, match=r"state\['centroids'\]\.shape == \(8, 36\), expected \(16, 36\)"):
        PatchDictionaryExtractor(n_centroids=16).set_state(fitted.get_state())
    with pytest.raises(FeatureError, match="lacks whitening"):
        PatchDictionaryExtractor(**SMALL).set_state({"patch_mean": np.zeros(36),
                                                     "centroids": np.zeros((8, 36))})
    bad = fitted.get_state()
    bad["centroids"][0, 0] = np.nan
    with pytest.raises(FeatureError, match="non-finite"):
        PatchDictionaryExtractor(**SMALL).set_state(bad)


def test_fits_on_a_handful_of_tiny_or_constant_previews(previews):
    images = [previews["tiny_3x5"], previews["constant_black"], previews["grey_28"]]
    ext = PatchDictionaryExtractor(**SMALL).fit(images)
    assert np.isfinite(ext.transform(list(previews.values()))).all()


def test_fit_on_nothing_is_refused():
    with pytest.raises(FeatureError, match="cannot fit the 'learned' extractor on 0 images"):
        PatchDictionaryExtractor(**SMALL).fit([])


@pytest.mark.parametrize("options, message", [
    ({"patch": 40}, r"patch == 40, must be in 2..size \(32\)"),
    ({"pool": 30}, r"pool == 30, must be <= size - patch \+ 1 \(27\)"),
    ({"n_centroids": 0}, r"n_centroids == 0, must be an int >= 1"),
    ({"n_patches": 4}, r"n_patches == 4, must be >= n_centroids"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        PatchDictionaryExtractor(**{**SMALL, **options})
