"""Errors the feature extractors raise on purpose, all inside aldesk's one exception tree.

(They subclass :class:`aldesk.errors.AldeskError`; they could move to ``aldesk/errors.py`` unchanged.)
"""

from __future__ import annotations

from aldesk.errors import AldeskError


class FeatureError(AldeskError):
    """An extractor cannot be built or cannot turn these previews into vectors."""


class UnknownExtractorError(FeatureError):
    """No extractor is registered under the requested name."""


class ExtractorNotFittedError(FeatureError):
    """A learned extractor was asked to transform before it was fitted or given a state."""
