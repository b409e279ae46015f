"""Image -> vector extractors, found by name in a registry.

Pure: numpy, scikit-image, scikit-learn, and onnxruntime (imported only when ``imagenet`` or ``onnx`` is
built). Never imports Qt, sqlite or the store. Fitted state is plain arrays (``get_state``/``set_state``),
never pickles. The default, ``imagenet``, is the ``handcrafted`` features beside a pretrained ImageNet
CNN whose model file ships in ``models/`` with its licence (``models/SOURCE.md``); ``default`` names it.

    from aldesk.features import DEFAULT_EXTRACTOR, get_extractor
    ext = get_extractor("default")          # = "imagenet"; or "handcrafted", "learned", "onnx" with path=...
    if ext.needs_fit:
        ext.fit(previews)                   # the project's own unlabelled previews
    X = ext.transform(previews)             # (n, d) float32, finite
"""

from .registry import DEFAULT_EXTRACTOR, EXTRACTOR_NAMES, get_extractor

__all__ = ["DEFAULT_EXTRACTOR", "EXTRACTOR_NAMES", "get_extractor"]
