from __future__ import annotations

import pytest

from aldesk.errors import AldeskError
from aldesk.errors import FeatureError, UnknownExtractorError
from aldesk.features.registry import DEFAULT_EXTRACTOR, EXTRACTOR_NAMES, get_extractor


def test_contract_names():
    assert set(EXTRACTOR_NAMES) == {"default", "imagenet", "handcrafted", "learned", "onnx"}


@pytest.mark.parametrize("name, needs_fit", [("handcrafted", False), ("learned", True), ("imagenet", False)])
def test_builds_by_name(name, needs_fit):
    ext = get_extractor(name)
    assert ext.name == name and ext.needs_fit is needs_fit


def test_default_names_the_imagenet_extractor():
    """``--extractor default`` is a contract for scripts; it builds the default extractor, which reports its
    own name (so its vectors are stored under ``imagenet``, never under ``default``)."""
    assert DEFAULT_EXTRACTOR == "imagenet"
    ext = get_extractor("default")
    assert type(ext).__name__ == "ImagenetExtractor" and ext.name == "imagenet"
    assert ext.version == get_extractor("imagenet").version


def test_passes_options_on():
    assert get_extractor("handcrafted", size=32, cell=8).size == 32
    assert get_extractor("default", threads=2).threads == 2


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownExtractorError,
                       match=r"unknown feature extractor 'resnet'; choose one of: default, imagenet, handcrafted, "
                             r"learned, onnx"):
        get_extractor("resnet")
    assert issubclass(UnknownExtractorError, AldeskError)


def test_unknown_option_lists_the_accepted_ones():
    with pytest.raises(FeatureError,
                       match=r"'handcrafted' has no option working_size; its options are: size, cell, grid"):
        get_extractor("handcrafted", working_size=64)
    with pytest.raises(FeatureError, match=r"'default' has no option size; its options are: threads"):
        get_extractor("default", size=64)


def test_onnx_without_a_path_says_so():
    with pytest.raises(FeatureError, match=r"'onnx' needs path= \(the \.onnx model file\)"):
        get_extractor("onnx")
