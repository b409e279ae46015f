"""Small, deterministic clustering helpers shared by the cold-start and hybrid strategies.

Plain numpy (no scikit-learn start-up or thread pools): weighted k-means++ seeding and Lloyd iterations
on at most a few tens of thousands of rows, and chunked nearest-centre queries on whole pools.
"""

from __future__ import annotations

import numpy as np

_BLOCK = 16384


def sq_norms(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    return np.einsum("ij,ij->i", X, X, dtype=np.float64) if X.dtype != np.float32 else np.einsum("ij,ij->i", X, X)


def nearest(A: np.ndarray, B: np.ndarray, *, a_sq=None, b_sq=None) -> tuple[np.ndarray, np.ndarray]:
    """For each row of A, the index of and squared distance to its nearest row of B, in blocks.

    A : (n, d), B : (k, d), k >= 1. Returns (idx (n,) int64, d2 (n,) float64 clipped at 0).
    """
    a_sq = sq_norms(A) if a_sq is None else a_sq
    b_sq = sq_norms(B) if b_sq is None else b_sq
    idx = np.empty(len(A), dtype=np.int64)
    d2 = np.full(len(A), np.inf)
    for bs in range(0, len(B), 2048):
        Bb, bb = B[bs:bs + 2048], b_sq[bs:bs + 2048]
        for s in range(0, len(A), _BLOCK):
            D = A[s:s + _BLOCK] @ Bb.T
            D *= -2.0
            D += bb[None, :]
            D += a_sq[s:s + _BLOCK, None]
            j = D.argmin(axis=1)
            best = D[np.arange(len(j)), j]
            better = best < d2[s:s + _BLOCK]
            idx[s:s + _BLOCK][better] = bs + j[better]
            d2[s:s + _BLOCK][better] = best[better]
    return idx, np.maximum(d2, 0.0)


def kmeans_plusplus(X: np.ndarray, k: int, rng: np.random.Generator, weights=None) -> np.ndarray:
    """k seed positions chosen by (weighted) D² sampling; fewer when X has fewer distinct rows."""
    n = len(X)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    x_sq = sq_norms(X).astype(np.float64)
    first = int(rng.choice(n, p=w / w.sum())) if w.sum() > 0 else int(rng.integers(n))
    chosen = [first]
    d2 = np.maximum(x_sq - 2.0 * (X @ X[first]) + x_sq[first], 0.0)
    for _ in range(1, k):
        p = d2 * w
        total = p.sum()
        if total <= 0:
            break
        c = int(np.searchsorted(np.cumsum(p), rng.random() * total, side="right"))
        c = min(c, n - 1)
        chosen.append(c)
        d2 = np.minimum(d2, np.maximum(x_sq - 2.0 * (X @ X[c]) + x_sq[c], 0.0))
    return np.asarray(chosen, dtype=np.int64)


def weighted_kmeans(X: np.ndarray, k: int, rng: np.random.Generator, weights=None, n_iter: int = 25,
                    tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding; weights let uncertain points pull centres harder.

    X : (n, d). Returns (centres (k', d) float64, labels (n,) int64) with k' <= k non-empty clusters.
    """
    X64 = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X64)) if weights is None else np.maximum(np.asarray(weights, dtype=np.float64), 1e-12)
    centres = X64[kmeans_plusplus(X64, k, rng, w)]
    x_sq = sq_norms(X64)
    prev = np.inf
    for _ in range(n_iter):
        labels, d2 = nearest(X64, centres, a_sq=x_sq)
        inertia = float((d2 * w).sum())
        mass = np.bincount(labels, weights=w, minlength=len(centres))
        keep = mass > 0
        onehot = np.zeros((len(centres), len(X64)))
        onehot[labels, np.arange(len(X64))] = w
        centres = (onehot @ X64)[keep] / mass[keep, None]
        if prev - inertia <= tol * max(prev, 1e-12):
            break
        prev = inertia
    labels, _ = nearest(X64, centres, a_sq=x_sq)
    used = np.unique(labels)
    remap = np.full(len(centres), -1)
    remap[used] = np.arange(len(used))
    return centres[used], remap[labels]
