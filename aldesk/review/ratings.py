"""The shape every review function shares: a ratings matrix of readers' class choices.

Arrays:
    ratings : (n_items, n_raters) int64, the class index a rater gave an item, ``MISSING`` (-1) where
              the rater did not read it (or said 'unsure'/'skip': those are not class choices)
    counts  : (n_items, n_classes) float64, how many raters chose each class for each item

Pure: numpy only. Never imports Qt, sqlite or the store.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np

MISSING = -1


def check_ratings(ratings, n_classes: int | None = None) -> tuple[np.ndarray, int]:
    """Validate ``ratings`` and return it as int64 with the number of classes (inferred if None)."""
    R = np.asarray(ratings)
    if R.ndim != 2:
        raise ValueError(f"ratings.ndim == {R.ndim}, must be 2 (n_items, n_raters)")
    if R.size and not np.issubdtype(R.dtype, np.integer):
        if not np.all(np.equal(np.mod(R, 1), 0)):
            raise ValueError("ratings must hold integer class indices (MISSING = -1 for no read)")
    R = R.astype(np.int64, copy=False)
    if R.size and R.min() < MISSING:
        raise ValueError(f"ratings.min() == {R.min()}, must be >= {MISSING} (MISSING)")
    observed_max = int(R.max()) if R.size else -1
    if n_classes is None:
        n_classes = max(observed_max + 1, 2)
    if n_classes < 2:
        raise ValueError(f"n_classes == {n_classes}, must be >= 2")
    if observed_max >= n_classes:
        raise ValueError(f"ratings hold class {observed_max}, but n_classes == {n_classes}")
    return R, int(n_classes)


def category_counts(ratings: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_items, n_classes) float64: how many raters chose each class for each item."""
    R, K = check_ratings(ratings, n_classes)
    counts = np.zeros((R.shape[0], K), dtype=np.float64)
    rows, cols = np.nonzero(R != MISSING)
    np.add.at(counts, (rows, R[rows, cols]), 1.0)
    return counts


def ratings_matrix(reads: Iterable[tuple[Hashable, Hashable, int]]) -> tuple[np.ndarray, list, list]:
    """Build ``ratings`` from (item, rater, class index) triples; class index < 0 counts as MISSING.

    Returns (ratings (n_items, n_raters), items in first-seen order, raters sorted)."""
    triples = list(reads)
    items = list(dict.fromkeys(t[0] for t in triples))
    raters = sorted({t[1] for t in triples}, key=str)
    item_ix = {k: i for i, k in enumerate(items)}
    rater_ix = {k: j for j, k in enumerate(raters)}
    R = np.full((len(items), len(raters)), MISSING, dtype=np.int64)
    for item, rater, k in triples:
        R[item_ix[item], rater_ix[rater]] = k if k >= 0 else MISSING
    return R, items, raters
