"""Cold start: typical and diverse scans for when no model can be trained yet.

k-means on the candidates (a random subsample of at most ``max_fit`` rows when the pool is large) with
one cluster per scan wanted; from each cluster the scan nearest its centre (its most typical member).
Big clusters come first, and clusters that already hold labelled scans go last, so the first labels
cover the common kinds of scan before the odd ones. Never trains a model.
"""

from __future__ import annotations

import numpy as np

from aldesk.errors import LearningError
from aldesk.learning.base import BaseStrategy, QueryInput, make_result
from aldesk.learning.clustering import nearest, sq_norms, weighted_kmeans
from aldesk.learning.coreset import k_center_greedy


class ColdStartStrategy(BaseStrategy):
    """Cluster representatives (medoid-like), largest clusters first.

    max_fit : rows used to fit k-means (the rest are only assigned to the nearest centre)
    """

    name = "cold_start"

    def __init__(self, *, max_fit: int = 20000, n_iter: int = 25):
        self.max_fit = max_fit
        self.n_iter = n_iter

    def _check_params(self) -> None:
        if not isinstance(self.max_fit, int) or self.max_fit < 1:
            raise LearningError(f"max_fit == {self.max_fit!r}, must be an int >= 1")
        if not isinstance(self.n_iter, int) or self.n_iter < 1:
            raise LearningError(f"n_iter == {self.n_iter!r}, must be an int >= 1")

    def _query(self, data: QueryInput, model):
        return self.select(data, note=None)

    def select(self, data: QueryInput, note: str | None):
        """The cold-start batch for validated ``data``; ``note`` prefixes every reason (e.g. why no model)."""
        self._check_params()
        X, cand, b, rng = data.X, data.candidates, data.batch_size, data.rng
        m = len(cand)
        fit_rows = cand if m <= self.max_fit else np.sort(rng.choice(cand, self.max_fit, replace=False))
        Xf = X[fit_rows].astype(np.float64)
        centres, _ = weighted_kmeans(Xf, b, rng, n_iter=self.n_iter)
        k = len(centres)
        # assign every candidate (in blocks) and find each cluster's member nearest its centre
        c_sq = sq_norms(centres)
        labels = np.empty(m, dtype=np.int64)
        d2 = np.empty(m)
        for s in range(0, m, 65536):
            block = X[cand[s:s + 65536]].astype(np.float64)
            labels[s:s + 65536], d2[s:s + 65536] = nearest(block, centres, b_sq=c_sq)
        size = np.bincount(labels, minlength=k)
        medoid = np.full(k, -1, dtype=np.int64)
        order = np.lexsort((d2, labels))  # by cluster, then distance to centre
        firsts = np.flatnonzero(np.r_[True, labels[order][1:] != labels[order][:-1]])
        medoid[labels[order][firsts]] = order[firsts]
        labelled_in = np.zeros(k, dtype=np.int64)
        if len(data.labelled):
            lab_cluster, _ = nearest(X[data.labelled].astype(np.float64), centres, b_sq=c_sq)
            labelled_in = np.bincount(lab_cluster, minlength=k)
        score = size / m / (1.0 + labelled_in)
        order = np.lexsort((np.arange(k), -score, labelled_in > 0))  # unlabelled kinds first, big ones first
        clusters = [c for c in order if medoid[c] >= 0][:b]
        picks = [int(cand[medoid[c]]) for c in clusters]
        scores = [float(score[c]) for c in clusters]
        prefix = f"{note}: " if note else ""
        reasons = []
        for r, c in enumerate(clusters, 1):
            extra = f", {labelled_in[c]} already labelled there" if labelled_in[c] else ""
            reasons.append(f"{prefix}typical and diverse scan, cluster {r} of {len(clusters)} "
                           f"({size[c]:,} similar scan{'s' if size[c] != 1 else ''}{extra})")
        if len(picks) < b:  # duplicates left fewer distinct clusters than wanted: spread out the rest
            rest = np.setdiff1d(cand, picks)
            more = k_center_greedy(X, np.concatenate([data.labelled, picks]).astype(np.int64), rest, b - len(picks), rng)
            for i in more:
                picks.append(int(i))
                scores.append(0.0)
                reasons.append(f"{prefix}diverse scan, far from those already chosen")
        return make_result("cold_start", picks, scores, reasons, clusters=int(k), fitted_on=int(len(fit_rows)))
