"""The one signature every query strategy shares (scikit-activeml style).

Arrays:
    X : (n_scans, n_features) float32, already standardised by the caller (see ``standardize``)
    y : (n_scans,) int64, class index for labelled scans, ``UNLABELLED`` (-1) otherwise
    candidates : (m,) int64 indices into X that may be chosen (default: every unlabelled scan)

``query`` returns a ``QueryResult`` whose ``indices`` index X (never ``candidates``), best first.

Also here: the call-time validation every strategy shares (``check_query_input``; messages in the
scikit-learn style, "batch_size == 0, must be >= 1") and ``BaseStrategy``, the skeleton the strategies
build on. numpy only: the app imports this module at start-up, before scikit-learn is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral
from typing import Protocol, runtime_checkable

import numpy as np

from aldesk.errors import LearningError

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


def column_moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) of each column in float64, the squares summed in blocks of rows: ``X.var`` would
    build a float64 copy of all of X."""
    mean = X.mean(axis=0, dtype=np.float64)
    squares = np.zeros(X.shape[1])
    for start in range(0, len(X), _CHUNK // 8):
        centred = X[start:start + _CHUNK // 8] - mean
        squares += np.einsum("ij,ij->j", centred, centred)
    return mean, squares / max(len(X), 1)


def standardize(X: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """Z-score columns over the whole pool; constant columns become 0. Returns float32 (n, d).

    The variance is summed in float64 blocks of _CHUNK rows (``X.std`` would build a float64 copy of the
    whole pool: 290 MB and most of the time at 100,000 x 361) and the result is written in one pass, into
    X itself with ``in_place`` (a writable float32 X that is not needed raw: 451 MB less at 100,000 x 1,129)."""
    X = np.asarray(X, dtype=np.float32)
    mean, var = column_moments(X)
    std = np.sqrt(var).astype(np.float32)
    std[std < 1e-12] = 1.0
    out = np.subtract(X, mean.astype(np.float32), out=X if in_place and X.flags.writeable else None)
    out /= std
    return out


# --------------------------------------------------------------------------------------------------
# Call-time validation shared by every strategy (scikit-learn style: constructors only store params).

_CHUNK = 65536  # rows per block when a whole-pool pass would otherwise allocate an (n, d) temporary


@dataclass
class QueryInput:
    """Validated arguments of ``query``.

    X : (n, d) float32, finite
    y : (n,) int64, class index or UNLABELLED
    candidates : (m,) int64, sorted, unique, unlabelled indices into X
    labelled : (L,) int64 indices of labelled rows
    n_classes : int or None (None only when nothing is labelled and none was given)
    batch_size : the requested batch size capped at m
    rng : the Generator every random choice of this call draws from
    """

    X: np.ndarray
    y: np.ndarray
    candidates: np.ndarray
    labelled: np.ndarray
    n_classes: int | None
    batch_size: int
    rng: np.random.Generator

    @property
    def class_counts(self) -> np.ndarray:
        """(n_classes,) int64 labels per class (empty when n_classes is unknown)."""
        if self.n_classes is None:
            return np.zeros(0, dtype=np.int64)
        return np.bincount(self.y[self.labelled], minlength=self.n_classes)


def check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral):
        raise LearningError(f"batch_size must be an int, got {type(batch_size).__name__} {batch_size!r}")
    if batch_size < 1:
        raise LearningError(f"batch_size == {batch_size}, must be >= 1")
    return int(batch_size)


def check_random_state(random_state) -> np.random.Generator:
    """None (fresh entropy), an int seed or a Generator (used as is, so callers can chain draws)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, bool) or not isinstance(random_state, Integral):
        raise LearningError(f"random_state must be None, an int or a numpy Generator, got "
                            f"{type(random_state).__name__} {random_state!r}")
    if random_state < 0:
        raise LearningError(f"random_state == {random_state}, must be >= 0")
    return np.random.default_rng(int(random_state))


def check_features(X, name: str = "X") -> np.ndarray:
    """(n, d) float32 with only finite values; the first bad row is named so it can be re-extracted."""
    try:
        X = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise LearningError(f"{name} must be a numeric array (n_scans, n_features): {exc}") from exc
    if X.ndim != 2:
        raise LearningError(f"{name} must be 2-D (n_scans, n_features), got shape {X.shape}")
    if X.shape[1] == 0:
        raise LearningError(f"{name} has 0 features; extract features first")
    for start in range(0, len(X), _CHUNK):
        block = X[start:start + _CHUNK]
        if not np.isfinite(block).all():
            row = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise LearningError(f"{name} contains NaN or infinity (row {row}); re-extract the features of that scan")
    return X


def check_labels(y, n_rows: int, n_classes: int | None) -> tuple[np.ndarray, int | None]:
    """(n,) int64 labels with UNLABELLED for unknown, and n_classes (inferred when None)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise LearningError(f"y must be 1-D (n_scans,), got shape {y.shape}")
    if len(y) != n_rows:
        raise LearningError(f"X has {n_rows} rows but y has {len(y)}; give one label (or UNLABELLED) per scan")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise LearningError("y must hold integer class indices (UNLABELLED = -1 for unlabelled scans)")
    elif y.dtype.kind not in "iub":
        raise LearningError(f"y must hold integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if len(y) and y.min() < UNLABELLED:
        raise LearningError(f"y contains {int(y.min())}; use class indices 0..n_classes-1 or UNLABELLED (-1)")
    if n_classes is not None:
        if isinstance(n_classes, bool) or not isinstance(n_classes, Integral):
            raise LearningError(f"n_classes must be an int, got {type(n_classes).__name__} {n_classes!r}")
        if n_classes < 2:
            raise LearningError(f"n_classes == {n_classes}, must be >= 2")
        n_classes = int(n_classes)
        if len(y) and y.max() >= n_classes:
            raise LearningError(f"y contains class {int(y.max())} but n_classes == {n_classes}")
    elif len(y) and y.max() >= 0:
        n_classes = max(2, int(y.max()) + 1)
    return y, n_classes


def check_candidates(candidates, y: np.ndarray) -> np.ndarray:
    """Sorted unique unlabelled indices into X; labelled ones are dropped (a scan labelled meanwhile)."""
    n = len(y)
    if candidates is None:
        return np.flatnonzero(y == UNLABELLED).astype(np.int64)
    c = np.asarray(candidates)
    if c.ndim != 1:
        raise LearningError(f"candidates must be 1-D indices into X, got shape {c.shape}")
    if c.size == 0:
        return np.zeros(0, dtype=np.int64)
    if c.dtype.kind not in "iu":
        raise LearningError(f"candidates must be integer indices into X, got dtype {c.dtype}")
    c = c.astype(np.int64)
    bad = c[(c < 0) | (c >= n)]
    if bad.size:
        raise LearningError(f"candidates contains index {int(bad[0])}, out of range for X with {n} rows")
    c = np.unique(c)
    return c[y[c] == UNLABELLED]


def check_query_input(X, y, *, candidates=None, batch_size=10, random_state=None,
                      n_classes=None) -> QueryInput:
    """Validate ``query`` arguments once, with messages that say what to change."""
    batch_size = check_batch_size(batch_size)
    rng = check_random_state(random_state)
    X = check_features(X)
    y, n_classes = check_labels(y, len(X), n_classes)
    cand = check_candidates(candidates, y)
    labelled = np.flatnonzero(y != UNLABELLED).astype(np.int64)
    return QueryInput(X, y, cand, labelled, n_classes, min(batch_size, len(cand)), rng)


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def class_label(k: int, class_names=None) -> str:
    if class_names is not None and 0 <= k < len(class_names):
        return repr(str(class_names[k]))
    return repr(str(k))


def make_result(strategy: str, indices, scores, reasons, **details) -> QueryResult:
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    reasons = list(reasons)
    if not (len(indices) == len(scores) == len(reasons)):
        raise AssertionError("indices, scores and reasons must have the same length")
    return QueryResult(indices, scores, reasons, strategy, dict(details))


def empty_result(strategy: str, **details) -> QueryResult:
    return make_result(strategy, [], [], [], **details)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest scores, best first; ties broken by position (deterministic)."""
    scores = np.asarray(scores, dtype=np.float64)
    k = min(int(k), len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
        # ties at the cut: take the lowest positions among equal scores, like a stable sort would
        kth = scores[part].min()
        above = np.flatnonzero(scores > kth)
        equal = np.flatnonzero(scores == kth)[: k - len(above)]
        part = np.concatenate([above, equal])
    else:
        part = np.arange(len(scores))
    order = np.lexsort((part, -scores[part]))
    return part[order].astype(np.int64)


def rank_of(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every score (1 = largest); ties by position."""
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores, dtype=np.float64)))
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


class BaseStrategy:
    """Shared ``query`` skeleton: validate, handle the empty pool, delegate to ``_query``.

    Subclasses set ``name``, store their parameters in ``__init__`` (no validation there), check them in
    ``_check_params`` and implement ``_query(data, model) -> QueryResult``.
    """

    name: str = ""

    def query(self, X, y, *, candidates=None, batch_size=10, random_state=None, model=None,
              n_classes=None) -> QueryResult:
        from threadpoolctl import threadpool_limits

        self._check_params()
        data = check_query_input(X, y, candidates=candidates, batch_size=batch_size,
                                 random_state=random_state, n_classes=n_classes)
        if data.candidates.size == 0:
            return empty_result(self.name, note="no unlabelled candidates left")
        # One BLAS thread: numpy's and scipy's OpenBLAS pools fight on two cores and make the
        # matrix-vector loops of k-center, k-means++ and BADGE 3-8x slower (measured in bench_rank).
        with threadpool_limits(1, "blas"):
            return self._query(data, model)

    def _check_params(self) -> None:
        pass

    def _query(self, data: QueryInput, model) -> QueryResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_params(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "name" and not k.endswith("_") and not k.startswith("_")}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
