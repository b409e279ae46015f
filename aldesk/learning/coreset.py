"""Core-set selection (Sener & Savarese 2018): greedy k-center, the scans farthest from everything
labelled or already chosen, so a batch covers the pool instead of piling up in one corner.

``k_center_greedy`` is the plain algorithm; ``CoresetStrategy`` wraps it in the query signature. Never
trains a model. Cost: one (m, d) pass per pick, plus distances from candidates to labelled scans once.
"""

from __future__ import annotations

import numpy as np

from aldesk.learning.base import BaseStrategy, QueryInput, check_random_state, make_result, ordinal
from aldesk.learning.clustering import nearest, sq_norms


BOUND_CENTRES = 128  # with more labelled scans, start from an upper bound and refine lazily
REFINE = 64


def k_center_greedy(X: np.ndarray, centres_idx, candidates, b: int, rng=None, *,
                    return_distances: bool = False):
    """Greedy k-center: repeatedly take the candidate farthest from its nearest centre, then make it a centre.

    X : (n, d) float32; centres_idx : (L,) indices into X already covered (labelled scans), may be empty;
    candidates : (m,) indices into X to choose from; b : picks wanted (capped at m).
    With no centres the first pick is drawn with ``rng``. Returns (b,) indices into X in pick order, and
    with ``return_distances`` also (b,) Euclidean distance of each pick to its nearest centre when picked.

    Exact, but lazy when there are many labelled centres: distances to a spread subset of
    ``BOUND_CENTRES`` of them bound every candidate's true distance from above, and only candidates whose
    bound could win are measured against all centres (the same picks as the full (m, L) computation).
    """
    rng = check_random_state(rng)
    cand = np.asarray(candidates, dtype=np.int64)
    centres_idx = np.asarray(centres_idx, dtype=np.int64).reshape(-1)
    b = min(int(b), len(cand))
    if b <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return (empty, np.zeros(0)) if return_distances else empty
    Xc = X[cand]
    if Xc.dtype != np.float32:
        Xc = Xc.astype(np.float32)
    x_sq = sq_norms(Xc)
    exact = np.ones(len(cand), dtype=bool)
    if len(centres_idx):
        C = X[centres_idx].astype(np.float32)
        c_sq = sq_norms(C)
        if len(C) > BOUND_CENTRES:
            sub = np.linspace(0, len(C) - 1, BOUND_CENTRES).astype(np.int64)
            _, mind = nearest(Xc, C[sub], a_sq=x_sq, b_sq=c_sq[sub])
            exact[:] = False
        else:
            _, mind = nearest(Xc, C, a_sq=x_sq, b_sq=c_sq)
    else:
        mind = np.full(len(cand), np.inf)
    picks = np.empty(b, dtype=np.int64)
    dists = np.empty(b)
    for t in range(b):
        if t == 0 and not len(centres_idx):
            i = int(rng.integers(len(cand)))
        else:
            while True:
                i = int(np.argmax(mind))
                if exact[i]:
                    break
                k = min(REFINE, len(cand))
                top = np.argpartition(-mind, k - 1)[:k]
                top = top[~exact[top]]
                _, d_all = nearest(Xc[top], C, a_sq=x_sq[top], b_sq=c_sq)
                mind[top] = np.minimum(mind[top], d_all)
                exact[top] = True
        picks[t], dists[t] = i, mind[i]
        d = Xc @ Xc[i]
        d *= -2.0
        d += x_sq
        d += x_sq[i]
        np.minimum(mind, np.maximum(d, 0.0), out=mind)
        mind[i] = -1.0  # never again
        exact[i] = True
    out = cand[picks]
    if return_distances:
        return out, np.sqrt(np.maximum(dists, 0.0))
    return out


def typical_distance(X: np.ndarray, labelled: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(len(rows),) Euclidean distance of each row to its nearest labelled scan (inf when none)."""
    if len(labelled) == 0:
        return np.full(len(rows), np.inf)
    _, d2 = nearest(X[rows].astype(np.float32, copy=False), X[labelled].astype(np.float32, copy=False))
    return np.sqrt(d2)


class CoresetStrategy(BaseStrategy):
    """k-center greedy over all candidates with labelled scans as the starting centres."""

    name = "coreset"

    def _query(self, data: QueryInput, model):
        picks, dist = k_center_greedy(data.X, data.labelled, data.candidates, data.batch_size, data.rng,
                                      return_distances=True)
        finite = dist[np.isfinite(dist)]
        ref = float(np.median(finite)) if len(finite) else 0.0
        reasons = []
        for r, d in enumerate(dist, 1):
            if not np.isfinite(d):
                reasons.append("first pick of a spread-out batch (nothing labelled yet)")
                continue
            rel = f" ({d / ref:.1f}x this batch's median)" if ref > 0 else ""
            where = "far from labelled scans and earlier picks" if r == 1 or d >= ref else "fills a gap left by earlier picks"
            reasons.append(f"{where}: distance {d:.2f}{rel}, {ordinal(r)} k-center pick")
        scores = np.where(np.isfinite(dist), dist, np.nan)
        if np.isnan(scores).any():
            scores[np.isnan(scores)] = np.nanmax(scores) if np.isfinite(scores).any() else 1.0
        return make_result(self.name, picks, scores, reasons)
