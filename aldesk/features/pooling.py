"""Pool slice features into one vector per series or study (mean and max over a bounded subset).

A study of 2,000 slices and a single radiograph end up as vectors of the same length, so ranking
10,000 studies costs what ranking 10,000 images costs. Mean says what the unit looks like on the
whole; max keeps a finding present on a few slices only. Pure numpy; never reads files.
"""

from __future__ import annotations

import numpy as np

from aldesk.imaging.series import evenly_spaced

SLICES_PER_STACK = 8   # at most this many evenly spaced slices of a stack are read for features


def pooled_version(version: str, k: int = SLICES_PER_STACK) -> str:
    """The cache key of pooled features: a new k or extractor version means new vectors."""
    return f"{version}+meanmax{k}"


def sample_slices(n: int, k: int = SLICES_PER_STACK) -> list[int]:
    """Indices of the slices of an n-slice stack whose features are pooled (evenly spaced, ends included)."""
    return evenly_spaced(n, k)


def pool_mean_max(F: np.ndarray) -> np.ndarray:
    """F (k, d) slice features -> (2 d,) float32 [mean over slices, max over slices]. k >= 1."""
    F = np.asarray(F, dtype=np.float32)
    if F.ndim != 2 or F.shape[0] == 0:
        raise ValueError(f"F.shape == {F.shape}, must be (k >= 1, d)")
    return np.concatenate([F.mean(axis=0), F.max(axis=0)]).astype(np.float32)
