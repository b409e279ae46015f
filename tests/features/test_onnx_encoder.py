from __future__ import annotations

import builtins
import pickle

import numpy as np
import pytest

from aldesk.errors import FeatureError
from aldesk.features.onnx_encoder import OnnxExtractor

from .conftest import conv_model_numpy, make_conv_model


@pytest.fixture
def grey_model(tmp_path):
    path = tmp_path / "grey.onnx"
    return path, make_conv_model(path, channels=1, filters=5)


def test_output_equals_the_same_graph_in_numpy(grey_model, previews):
    path, w = grey_model
    ext = OnnxExtractor(path, size=32)
    assert ext.input_shape == (1, 32, 32)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (32, 32), dtype=np.uint8) for _ in range(3)]
    X = ext.transform(images)
    x = np.stack(images)[:, None].astype(np.float32) / 255
    np.testing.assert_allclose(X, conv_model_numpy(x, w["weight"], w["bias"]), rtol=1e-4, atol=1e-5)
    assert X.shape == (3, 5) and X.dtype == np.float32


def test_rgb_model_gets_grey_previews_as_three_equal_channels_and_mean_std(tmp_path):
    path = tmp_path / "rgb.onnx"
    w = make_conv_model(path, channels=3, filters=4)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    ext = OnnxExtractor(path, size=16, mean=mean, std=std)
    grey = np.random.default_rng(1).integers(0, 256, (16, 16), dtype=np.uint8)
    x = np.repeat(grey[None, None].astype(np.float32) / 255, 3, axis=1)
    x = (x - np.array(mean, np.float32)[None, :, None, None]) / np.array(std, np.float32)[None, :, None, None]
    np.testing.assert_allclose(ext.transform([grey]), conv_model_numpy(x, w["weight"], w["bias"]),
                               rtol=1e-4, atol=1e-5)


def test_fixed_input_shape_and_batch_of_one_are_honoured(tmp_path, previews):
    path = tmp_path / "fixed.onnx"
    make_conv_model(path, channels=1, height=24, width=40, batch=1)
    ext = OnnxExtractor(path)
    assert ext.input_shape == (1, 24, 40)
    X = ext.transform(list(previews.values()))
    assert X.shape == (len(previews), 4) and np.isfinite(X).all()
    with pytest.raises(FeatureError, match=r"fixed at 24 x 40; size=32 does not fit it"):
        OnnxExtractor(path, size=32)


def test_dynamic_size_defaults_to_224(grey_model):
    assert OnnxExtractor(grey_model[0]).input_shape == (1, 224, 224)


def test_version_is_the_model_digest_and_follows_options(tmp_path, grey_model):
    path, _ = grey_model
    a = OnnxExtractor(path, size=32)
    assert a.version == OnnxExtractor(path, size=32).version
    assert a.version != OnnxExtractor(path, size=48).version
    assert a.version != OnnxExtractor(path, size=32, mean=0.5, std=0.25).version
    other = tmp_path / "other.onnx"
    make_conv_model(other, channels=1, filters=5, seed=1)
    assert OnnxExtractor(other, size=32).version.split(":")[0] != a.version.split(":")[0]


def test_pickles_without_the_session_and_refuses_a_changed_file(tmp_path, grey_model, previews):
    path, _ = grey_model
    ext = OnnxExtractor(path, size=32)
    X = ext.transform([previews["grey_128"]])
    clone = pickle.loads(pickle.dumps(ext))
    np.testing.assert_array_equal(clone.transform([previews["grey_128"]]), X)
    make_conv_model(path, channels=1, filters=5, seed=9)
    with pytest.raises(FeatureError, match="model file changed"):
        pickle.loads(pickle.dumps(ext)).transform([previews["grey_128"]])


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "model.onnx"
    with pytest.raises(FeatureError, match=r"model\.onnx: no such ONNX model file"):
        OnnxExtractor(missing)


def test_a_file_that_is_not_onnx_is_named(tmp_path):
    bogus = tmp_path / "weights.pt"
    bogus.write_bytes(b"\x80\x04not an onnx protobuf at all" * 10)
    with pytest.raises(FeatureError, match=r"weights\.pt: not a usable ONNX model"):
        OnnxExtractor(bogus)


def test_wrong_channel_count_is_explained(tmp_path):
    path = tmp_path / "four.onnx"
    make_conv_model(path, channels=4)
    with pytest.raises(FeatureError, match=r"has 4 channels; expected 1 \(grey\) or 3 \(RGB\)"):
        OnnxExtractor(path)


def test_missing_onnxruntime_says_how_to_install(monkeypatch, grey_model):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(FeatureError, match=r"onnxruntime is not installed: pip install 'aldesk\[onnx\]'"):
        OnnxExtractor(grey_model[0])


def test_mean_std_must_match_the_channels(grey_model):
    with pytest.raises(ValueError, match="mean has 3 values, the model takes 1 channels"):
        OnnxExtractor(grey_model[0], mean=(0.1, 0.2, 0.3))
