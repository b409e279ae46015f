"""Dawid–Skene (1979): each reader's confusion matrix and each scan's true class, by EM.

A reader who is often wrong counts for less than one who is rarely wrong, and a reader who always
says "pneumonia" tells little when they say it. Readers may have read any subset of the scans.

Two stages. First a "one-coin" model (one accuracy per reader, errors spread evenly over the other
classes), which a few reads already estimate well. Then the full model, whose confusion rows get a
Dirichlet prior of ``prior_strength`` pseudo-reads centred on that reader's one-coin matrix: a reader
with few reads is judged by their overall accuracy, and class-specific error rates (an over-caller)
emerge as their reads accumulate. The prior also settles the case the data alone cannot: with three
readers of whom one guesses, a lopsided class prior and lopsided error rates fit equally well, and
plain EM drifts to either (measured in tests/benchmarks/bench_consensus.py).

Arrays:
    ratings : (n_items, n_raters) int64, class index or MISSING (-1)
    truth : optional (n_items,) int64 known class (adjudicated) or MISSING
    posterior_ : (n_items, n_classes) float64, P(true class | every read); the prior for unread items
    confusion_ : (n_raters, n_classes, n_classes) float64, row = true class, column = class given;
                 rows sum to 1
    one_coin_accuracy_ : (n_raters,) float64, the first stage's accuracy per reader
    n_iter_ : EM iterations of both stages; n_patterns_ : distinct rating patterns EM ran on
    prior_ : (n_classes,) float64, class frequencies

Pure: numpy only. Never imports Qt, sqlite or the store.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from aldesk.review.ratings import MISSING, category_counts, check_ratings


class DawidSkene:
    """EM over per-reader confusion matrices, started from the (soft) majority vote.

    Parameters are stored as given and checked in ``fit`` (scikit-learn style):
    prior_strength : pseudo-reads per confusion row (true class), centred on the reader's
        one-coin matrix; 0 gives plain maximum likelihood (plus one pseudo-count per class prior).
    """

    def __init__(self, n_classes: int | None = None, *, max_iter: int = 1000, tol: float = 1e-6,
                 prior_strength: float = 50.0):
        self.n_classes = n_classes
        self.max_iter = max_iter
        self.tol = tol
        self.prior_strength = prior_strength

    def _check_params(self) -> None:
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, Integral) or self.max_iter < 1:
            raise ValueError(f"max_iter == {self.max_iter!r}, must be an integer >= 1")
        if not isinstance(self.tol, Real) or self.tol < 0:
            raise ValueError(f"tol == {self.tol!r}, must be >= 0")
        if not isinstance(self.prior_strength, Real) or self.prior_strength < 0:
            raise ValueError(f"prior_strength == {self.prior_strength!r}, must be >= 0")

    def fit(self, ratings, truth=None) -> "DawidSkene":
        """``truth`` items keep their class and teach the readers' confusion matrices."""
        self._check_params()
        R, k = check_ratings(ratings, self.n_classes)
        n, r = R.shape
        known = np.full(n, MISSING, dtype=np.int64) if truth is None else np.asarray(truth, dtype=np.int64)
        if known.shape != (n,) or known.max(initial=MISSING) >= k or known.min(initial=MISSING) < MISSING:
            raise ValueError(f"truth must be ({n},) class indices 0..{k - 1} or MISSING")
        observed = R != MISSING
        read = observed.any(axis=1)
        if not read.any():
            raise ValueError("ratings hold no read at all; nothing to estimate")
        # EM only sees an item through its pattern (the class each reader gave, and its adjudicated class if
        # any): items with the same pattern share a posterior. So EM runs on the distinct patterns weighted
        # by how often each occurs -- the same fixed point, at a cost per iteration that no longer grows with
        # the number of reads (a few dozen patterns for 3 readers, whether 5k or 500k reads).
        patterns, inverse, weight = np.unique(np.column_stack([R[read], known[read]]), axis=0,
                                              return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        weight = weight.astype(np.float64)
        Rr, known_r = patterns[:, :r], patterns[:, r]
        # per reader: patterns with a read of theirs, the class given, and how many items have that pattern
        cols = []
        for j in range(r):
            rows = np.flatnonzero(Rr[:, j] != MISSING)
            cols.append((rows, Rr[rows, j], weight[rows]))
        fixed = np.flatnonzero(known_r != MISSING)
        fixed_t = np.eye(k)[known_r[fixed]]
        counts = category_counts(Rr, k)
        start = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)  # soft majority vote
        start[fixed] = fixed_t
        reads_of = np.array([w.sum() for _, _, w in cols])

        # stage 1: one accuracy per reader
        def one_coin_m(t):
            hits = np.array([(t[rows, given] * w).sum() for rows, given, w in cols])
            acc = (hits + 1.0) / (reads_of + 2.0)
            return acc, self._one_coin_matrices(acc, k)

        prior = self._prior(start, weight)
        acc, confusion = one_coin_m(start)
        it1 = 0
        for it1 in range(1, self.max_iter + 1):
            t, _ = self._e_step(prior, confusion, cols, len(Rr), k, weight)
            t[fixed] = fixed_t
            new_prior, (new_acc, confusion) = self._prior(t, weight), one_coin_m(t)
            change = max(np.abs(new_prior - prior).max(), np.abs(new_acc - acc).max())
            prior, acc = new_prior, new_acc
            if change <= self.tol:
                break
        centre = self._one_coin_matrices(acc, k)

        # stage 2: full confusion matrices, shrunk towards the one-coin ones
        t = start
        prior, confusion = self._prior(t, weight), self._full_m(t, cols, centre)
        self.converged_ = False
        it2 = 0
        for it2 in range(1, self.max_iter + 1):
            t, _ = self._e_step(prior, confusion, cols, len(Rr), k, weight)
            t[fixed] = fixed_t
            new_prior, new_confusion = self._prior(t, weight), self._full_m(t, cols, centre)
            change = max(np.abs(new_prior - prior).max(), np.abs(new_confusion - confusion).max())
            prior, confusion = new_prior, new_confusion
            if change <= self.tol:
                self.converged_ = True
                break
        posterior = np.tile(prior, (n, 1))
        post_patterns, ll = self._e_step(prior, confusion, cols, len(Rr), k, weight)
        posterior[read] = post_patterns[inverse]
        posterior[known != MISSING] = np.eye(k)[known[known != MISSING]]
        self.n_iter_ = it1 + it2
        self.n_patterns_ = len(Rr)
        self.log_likelihood_ = ll
        self.prior_ = prior
        self.one_coin_accuracy_ = acc
        self.confusion_ = confusion
        self.posterior_ = posterior
        self.n_reads_ = observed.sum(axis=0)
        return self

    @staticmethod
    def _one_coin_matrices(acc: np.ndarray, k: int) -> np.ndarray:
        off = (1.0 - acc) / (k - 1)
        return np.where(np.eye(k, dtype=bool)[None], acc[:, None, None], off[:, None, None])

    @staticmethod
    def _prior(t: np.ndarray, weight: np.ndarray) -> np.ndarray:
        prior = weight @ t + 1.0
        return prior / prior.sum()

    @staticmethod
    def _e_step(prior, confusion, cols, n, k, weight) -> tuple[np.ndarray, float]:
        log_post = np.tile(np.log(np.maximum(prior, 1e-300)), (n, 1))
        log_conf = np.log(np.maximum(confusion, 1e-300))
        for j, (rows, given, _) in enumerate(cols):
            log_post[rows] += log_conf[j][:, given].T
        top = log_post.max(axis=1, keepdims=True)
        norm = top + np.log(np.exp(log_post - top).sum(axis=1, keepdims=True))
        return np.exp(log_post - norm), float(weight @ norm[:, 0])

    def _full_m(self, t, cols, centre: np.ndarray) -> np.ndarray:
        k = t.shape[1]
        cells = float(self.prior_strength) * centre
        for j, (rows, given, w) in enumerate(cols):
            for true in range(k):
                cells[j, true] += np.bincount(given, weights=t[rows, true] * w, minlength=k)
        totals = cells.sum(axis=2, keepdims=True)
        # a reader with no reads of a true class and no prior: their one-coin row, not 0/0
        return np.where(totals > 0, cells / np.where(totals > 0, totals, 1.0), centre)

    def predict(self) -> np.ndarray:
        """(n_items,) int64 most probable true class of each fitted item."""
        return self.posterior_.argmax(axis=1)

    def reader_accuracy(self) -> np.ndarray:
        """(n_raters,) each reader's estimated accuracy: the diagonal weighted by the class prior."""
        return np.einsum("k,rkk->r", self.prior_, self.confusion_)


def dawid_skene(ratings, n_classes: int | None = None, *, truth=None, **params) -> DawidSkene:
    """Fit and return a ``DawidSkene``; the plain-function form of the estimator."""
    return DawidSkene(n_classes, **params).fit(ratings, truth)
