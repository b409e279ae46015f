"""One conformance test for every extractor: a new extractor is a new row in EXTRACTORS."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from aldesk.features.base import Extractor
from aldesk.features.registry import get_extractor

from .conftest import make_conv_model

EXTRACTORS = ["imagenet", "handcrafted", "learned", "onnx"]  # "default" builds "imagenet" (test_registry.py)


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    make_conv_model(path, channels=3, filters=6)
    return path


def _options(name: str, onnx_path) -> dict:
    """The options each extractor is built with here (small or local: nothing outside the test's folders)."""
    return {"onnx": {"path": onnx_path, "size": 32}, "learned": {"n_patches": 20_000}}.get(name, {})


@pytest.fixture(scope="module")
def fitted(pool, onnx_path):
    """name -> a ready extractor (learned ones fitted on the shared pool, small for speed)."""
    made = {}
    for name in EXTRACTORS:
        ext = get_extractor(name, **_options(name, onnx_path))
        if ext.needs_fit:
            ext.fit(pool)
        made[name] = ext
    return made


@pytest.mark.parametrize("name", EXTRACTORS)
def test_follows_the_protocol(fitted, name):
    ext = fitted[name]
    assert isinstance(ext, Extractor)
    assert ext.name == name
    assert isinstance(ext.version, str) and ext.version


@pytest.mark.parametrize("name", EXTRACTORS)
def test_shapes_dtype_and_finite_for_every_kind_of_preview(fitted, previews, name):
    ext = fitted[name]
    images = list(previews.values())
    X = ext.transform(images)
    assert X.dtype == np.float32
    assert X.ndim == 2 and X.shape[0] == len(images)
    assert np.isfinite(X).all()
    # one image alone gives the same row as inside a batch
    for i, key in enumerate(previews):
        np.testing.assert_allclose(ext.transform([previews[key]])[0], X[i], rtol=1e-5, atol=1e-5,
                                   err_msg=key)


@pytest.mark.parametrize("name", EXTRACTORS)
def test_empty_batch_gives_zero_rows_of_the_right_width(fitted, previews, name):
    ext = fitted[name]
    width = ext.transform([previews["grey_128"]]).shape[1]
    assert ext.transform([]).shape == (0, width)


@pytest.mark.parametrize("name", EXTRACTORS)
def test_different_images_give_different_vectors(fitted, previews, name):
    X = fitted[name].transform([previews["grey_128"], previews["rgb_96x128"], previews["grey_28"]])
    assert not np.allclose(X[0], X[1])
    assert not np.allclose(X[0], X[2])


@pytest.mark.parametrize("name", EXTRACTORS)
def test_deterministic_and_picklable(fitted, previews, name):
    ext = fitted[name]
    images = list(previews.values())
    X = ext.transform(images)
    np.testing.assert_array_equal(ext.transform(images), X)
    blob = pickle.dumps(ext)
    assert len(blob) < 200_000, "extractors travel to worker processes: keep them small"
    clone = pickle.loads(blob)
    assert clone.version == ext.version
    np.testing.assert_array_equal(clone.transform(images), X)


@pytest.mark.parametrize("name", EXTRACTORS)
def test_state_round_trip_gives_identical_outputs(fitted, previews, name, onnx_path):
    ext = fitted[name]
    state = ext.get_state()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    fresh = get_extractor(name, **_options(name, onnx_path)).set_state(state)
    images = list(previews.values())
    assert fresh.version == ext.version
    np.testing.assert_array_equal(fresh.transform(images), ext.transform(images))


@pytest.mark.parametrize("name", EXTRACTORS)
def test_rejects_previews_that_are_not_uint8_images(fitted, name):
    ext = fitted[name]
    with pytest.raises(ValueError, match=r"images\[0\] .* must be a uint8 numpy array"):
        ext.transform([np.zeros((8, 8), np.float32)])
    with pytest.raises(ValueError, match=r"images\[1\]\.shape == \(8, 8, 4\)"):
        ext.transform([np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8)])
