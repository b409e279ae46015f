"""Shared previews and a tiny ONNX network for the feature extractor tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pneumoniamnist"
        / "pneumoniamnist.npz")


def _smooth_noise(rng, shape) -> np.ndarray:
    """Radiograph-like previews: smooth blobs + noise, uint8."""
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = 120 + 60 * np.sin(6 * xx + rng.uniform(0, 6)) * np.cos(4 * yy + rng.uniform(0, 6))
    img = img + rng.normal(0, 12, (h, w))
    img = np.clip(img, 0, 255).astype(np.uint8)
    if len(shape) == 3:
        img = np.stack([img, np.roll(img, 3, axis=1), 255 - img], axis=2)
    return img


@pytest.fixture(scope="session")
def previews() -> dict[str, np.ndarray]:
    """Edge-case previews by name: grey, RGB, tiny, constant, non-square, ..."""
    rng = np.random.default_rng(7)
    return {
        "grey_128": _smooth_noise(rng, (128, 128)),
        "grey_28": _smooth_noise(rng, (28, 28)),
        "rgb_96x128": _smooth_noise(rng, (96, 128, 3)),
        "tall_128x40": _smooth_noise(rng, (128, 40)),
        "wide_17x128": _smooth_noise(rng, (17, 128)),
        "tiny_3x5": _smooth_noise(rng, (3, 5)),
        "single_pixel": np.array([[200]], dtype=np.uint8),
        "constant_black": np.zeros((64, 64), np.uint8),
        "constant_white_rgb": np.full((50, 70, 3), 255, np.uint8),
        "grey_channel_axis": _smooth_noise(rng, (40, 40))[:, :, None],
    }


@pytest.fixture(scope="session")
def pool() -> list[np.ndarray]:
    """Unlabelled previews to fit on: real chest X-rays when the data is there, else synthetic."""
    if DATA.is_file():
        with np.load(DATA) as d:
            return list(d["train_images"][:300])
    rng = np.random.default_rng(0)
    return [_smooth_noise(rng, (int(rng.integers(28, 129)), int(rng.integers(28, 129))))
            for _ in range(300)]


def make_conv_model(path: Path, *, channels: int = 1, height=None, width=None, batch=None,
                    filters: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Write Conv(3x3, pad 1) + bias -> Relu -> GlobalAveragePool -> Flatten; return its weights.

    ``height``/``width``/``batch`` None -> dynamic dimensions.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = rng.normal(0, 1, (filters, channels, 3, 3)).astype(np.float32)
    bias = rng.normal(0, 0.1, (filters,)).astype(np.float32)
    dims = [batch or "N", channels, height or "H", width or "W"]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "weight", "bias"], ["conv"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["conv"], ["relu"]),
            helper.make_node("GlobalAveragePool", ["relu"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["embedding"], axis=1),
        ],
        "tiny_encoder",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch or "N", filters])],
        initializer=[numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return {"weight": weight, "bias": bias}


def conv_model_numpy(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The same graph in numpy: x (n, c, h, w) float32 -> (n, filters)."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # n c h w 3 3
    conv = np.einsum("nchwij,fcij->nfhw", windows, weight) + bias[None, :, None, None]
    return np.maximum(conv, 0).mean(axis=(2, 3))
