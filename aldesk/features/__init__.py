"""Image -> vector extractors, found by name in a registry.

Pure: numpy, scikit-image, scikit-learn (and onnxruntime, optional, imported only by ``onnx``).
Never imports Qt, sqlite or the store. Fitted state is plain arrays (``get_state``/``set_state``),
never pickles.

    from aldesk.features import get_extractor
    ext = get_extractor("learned")          # or "default", or "onnx" with path=...
    if ext.needs_fit:
        ext.fit(previews)                   # the project's own unlabelled previews
    X = ext.transform(previews)             # (n, d) float32, finite
"""

from .registry import EXTRACTOR_NAMES, get_extractor

__all__ = ["EXTRACTOR_NAMES", "get_extractor"]
