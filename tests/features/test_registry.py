from __future__ import annotations

import pytest

from aldesk.errors import AldeskError
from aldesk.errors import FeatureError, UnknownExtractorError
from aldesk.features.registry import EXTRACTOR_NAMES, get_extractor


def test_contract_names():
    assert set(EXTRACTOR_NAMES) == {"default", "learned", "onnx", "imagenet"}


@pytest.mark.parametrize("name, needs_fit", [("default", False), ("learned", True)])
def test_builds_by_name(name, needs_fit):
    ext = get_extractor(name)
    assert ext.name == name and ext.needs_fit is needs_fit


def test_passes_options_on():
    assert get_extractor("default", size=32, cell=8).size == 32


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownExtractorError,
                       match=r"unknown feature extractor 'resnet'; choose one of: default, learned, onnx, imagenet"):
        get_extractor("resnet")
    assert issubclass(UnknownExtractorError, AldeskError)


def test_unknown_option_lists_the_accepted_ones():
    with pytest.raises(FeatureError,
                       match=r"'default' has no option working_size; its options are: size, cell, grid"):
        get_extractor("default", working_size=64)


def test_onnx_without_a_path_says_so():
    with pytest.raises(FeatureError, match=r"'onnx' needs path= \(the \.onnx model file\)"):
        get_extractor("onnx")
