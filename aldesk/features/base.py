"""The contract every feature extractor honours.

images : a list of previews, each (h, w) or (h, w, 3) uint8 as made by aldesk.imaging (longest
    side <= 128, aspect kept; sizes differ between images).
transform(images) -> (n_images, n_features) float32, one row per image, finite values only.

``version`` changes whenever the output for the same image would change, so cached vectors keyed by
(name, version) are recomputed exactly when needed. Extractors with ``needs_fit`` learn from the
project's own unlabelled previews; their fitted state is a dict of plain numpy arrays.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Extractor(Protocol):
    name: str
    version: str
    needs_fit: bool

    def fit(self, images: list[np.ndarray]) -> "Extractor": ...

    def transform(self, images: list[np.ndarray]) -> np.ndarray: ...

    def get_state(self) -> dict[str, np.ndarray]: ...

    def set_state(self, state: dict[str, np.ndarray]) -> "Extractor": ...


class NoFitting:
    """For extractors with nothing to learn from a project: fitting is a no-op and the state is empty."""

    needs_fit = False

    def fit(self, images):
        return self

    def get_state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state: dict[str, np.ndarray]):
        return self
