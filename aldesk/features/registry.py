"""Feature extractors by name, so a project can store ``(name, options)`` and rebuild its extractor.

Names are part of the project contract: ``imagenet`` (the handcrafted features beside a pretrained
ImageNet CNN that aldesk ships), ``handcrafted`` (fast, no fitting), ``learned`` (``handcrafted`` plus a
patch dictionary fitted on the project's previews) and ``onnx`` (a site's own network; needs ``path=``).
``default`` is not an extractor of its own but names ``DEFAULT_EXTRACTOR`` (scripts pass
``--extractor default``): the extractor it builds reports its own name, so its vectors are stored under
that name and a change of default extracts the new features once (``default`` used to build
``handcrafted``).
Never imports Qt, sqlite or the store; onnxruntime is imported only when an ``onnx`` or ``imagenet``
extractor is built.
"""

from __future__ import annotations

import inspect

from .base import Extractor
from aldesk.errors import FeatureError, UnknownExtractorError

EXTRACTOR_NAMES: tuple[str, ...] = ("default", "imagenet", "handcrafted", "learned", "onnx")
DEFAULT_EXTRACTOR = "imagenet"  # what ``default`` builds (tests/benchmarks/cnn-features-RESULTS.md for why)


def _extractor_class(name: str) -> type:
    if name == "default":
        name = DEFAULT_EXTRACTOR
    if name == "handcrafted":
        from .handcrafted import HandcraftedExtractor
        return HandcraftedExtractor
    if name == "learned":
        from .learned import PatchDictionaryExtractor
        return PatchDictionaryExtractor
    if name == "onnx":
        from .onnx_encoder import OnnxExtractor
        return OnnxExtractor
    if name == "imagenet":
        from .imagenet import ImagenetExtractor
        return ImagenetExtractor
    raise UnknownExtractorError(
        f"unknown feature extractor {name!r}; choose one of: {', '.join(EXTRACTOR_NAMES)}")


def get_extractor(name: str, **options) -> Extractor:
    """A new, unfitted extractor registered as ``name``, built with ``options`` (``default`` builds
    ``DEFAULT_EXTRACTOR``, whose ``.name`` is its own).

    Raises UnknownExtractorError for an unknown name and FeatureError for options the extractor
    does not take (or a required one it lacks, such as ``path`` for ``onnx``).
    """
    cls = _extractor_class(name)
    params = inspect.signature(cls.__init__).parameters
    accepted = [p for p in params if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise FeatureError(f"feature extractor {name!r} has no option {', '.join(unknown)}; "
                           f"its options are: {', '.join(accepted) or 'none'}")
    required = [p.name for p in params.values()
                if p.name != "self" and p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    missing = [p for p in required if p not in options]
    if missing:
        raise FeatureError(f"feature extractor {name!r} needs {', '.join(f'{p}=' for p in missing)}"
                           + (" (the .onnx model file)" if name == "onnx" else ""))
    return cls(**options)
