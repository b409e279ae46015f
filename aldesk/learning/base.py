"""The one signature every query strategy shares (scikit-activeml style).

Arrays:
    X : (n_scans, n_features) float32, already standardised by the caller (see ``standardize``)
    y : (n_scans,) int64, class index for labelled scans, ``UNLABELLED`` (-1) otherwise
    candidates : (m,) int64 indices into X that may be chosen (default: every unlabelled scan)

``query`` returns a ``QueryResult`` whose ``indices`` index X (never ``candidates``), best first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

UNLABELLED = -1


@dataclass
class QueryResult:
    """The chosen scans, best first, each with a score and a reason a radiologist can read.

    indices : (b,) int64 into X
    scores : (b,) float64, the strategy's utility for each chosen scan (higher = more useful)
    reasons : b strings such as "entropy 0.69, 3rd most uncertain; far from labelled scans"
    """

    indices: np.ndarray
    scores: np.ndarray
    reasons: list[str]
    strategy: str = ""
    details: dict = field(default_factory=dict)


@runtime_checkable
class QueryStrategy(Protocol):
    name: str

    def query(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        candidates: np.ndarray | None = None,
        batch_size: int = 10,
        random_state: int | np.random.Generator | None = None,
        model=None,
        n_classes: int | None = None,
    ) -> QueryResult: ...


def standardize(X: np.ndarray) -> np.ndarray:
    """Z-score columns over the whole pool; constant columns become 0. Returns float32 (n, d)."""
    X = np.asarray(X, dtype=np.float32)
    mean = X.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = X.std(axis=0, dtype=np.float64).astype(np.float32)
    std[std < 1e-12] = 1.0
    return (X - mean) / std
