"""Dawid–Skene (1979): each reader's confusion matrix and each scan's true class, by EM.

A reader who is often wrong counts for less than one who is rarely wrong, and a reader who always
says "pneumonia" tells little when they say it. Readers may have read any subset of the scans.
Smoothing (a Dirichlet pseudo-count in every confusion cell and in the class prior) keeps a reader
with few reads from getting a certain-looking 0 or 1.

Arrays:
    ratings : (n_items, n_raters) int64, class index or MISSING (-1)
    posterior_ : (n_items, n_classes) float64, P(true class | every read); the prior for unread items
    confusion_ : (n_raters, n_classes, n_classes) float64, row = true class, column = class given;
                 rows sum to 1
    prior_ : (n_classes,) float64, class frequencies

Pure: numpy only. Never imports Qt, sqlite or the store.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from aldesk.review.ratings import MISSING, category_counts, check_ratings


class DawidSkene:
    """EM over per-reader confusion matrices, started from the (soft) majority vote.

    Parameters are stored as given and checked in ``fit`` (scikit-learn style)."""

    def __init__(self, n_classes: int | None = None, *, max_iter: int = 1000, tol: float = 1e-5,
                 smoothing: float = 1.0):
        self.n_classes = n_classes
        self.max_iter = max_iter
        self.tol = tol
        self.smoothing = smoothing

    def _check_params(self) -> None:
        if not isinstance(self.max_iter, Integral) or self.max_iter < 1:
            raise ValueError(f"max_iter == {self.max_iter!r}, must be an integer >= 1")
        if not isinstance(self.tol, Real) or self.tol < 0:
            raise ValueError(f"tol == {self.tol!r}, must be >= 0")
        if not isinstance(self.smoothing, Real) or self.smoothing < 0:
            raise ValueError(f"smoothing == {self.smoothing!r}, must be >= 0")

    def fit(self, ratings, truth=None) -> "DawidSkene":
        """``truth`` : optional (n_items,) int64 class known for sure (an adjudicated label), MISSING
        elsewhere; those items keep that class and teach the readers' confusion matrices."""
        self._check_params()
        R, k = check_ratings(ratings, self.n_classes)
        n, r = R.shape
        known = np.full(n, MISSING, dtype=np.int64) if truth is None else np.asarray(truth, dtype=np.int64)
        if known.shape != (n,) or known.max(initial=MISSING) >= k or known.min(initial=MISSING) < MISSING:
            raise ValueError(f"truth must be ({n},) class indices 0..{k - 1} or MISSING")
        observed = R != MISSING
        read = observed.any(axis=1)
        counts = category_counts(R, k)
        # per reader: the rows they read and the class they gave
        cols = [(np.flatnonzero(observed[:, j]), R[observed[:, j], j]) for j in range(r)]
        Rr = R[read]
        cols_read = [(np.flatnonzero(Rr[:, j] != MISSING), Rr[Rr[:, j] != MISSING, j]) for j in range(r)]

        if not read.any():
            raise ValueError("ratings hold no read at all; nothing to estimate")
        fixed = np.flatnonzero(known[read] != MISSING)
        fixed_t = np.eye(k)[known[read][fixed]]
        # start: soft majority vote (the share of votes per class)
        t = counts[read] / counts[read].sum(axis=1, keepdims=True)
        t[fixed] = fixed_t
        prior, confusion = self._m_step(t, cols_read, k, r)
        self.converged_ = False
        it = 0
        for it in range(1, self.max_iter + 1):
            t, ll = self._e_step(prior, confusion, cols_read, len(Rr), k)
            t[fixed] = fixed_t
            new_prior, new_confusion = self._m_step(t, cols_read, k, r)
            change = max(np.abs(new_prior - prior).max(), np.abs(new_confusion - confusion).max())
            prior, confusion = new_prior, new_confusion
            if change <= self.tol:
                self.converged_ = True
                break
        posterior = np.tile(prior, (n, 1))
        posterior[read], ll = self._e_step(prior, confusion, cols_read, len(Rr), k)
        posterior[known != MISSING] = np.eye(k)[known[known != MISSING]]
        self.n_iter_ = it
        self.log_likelihood_ = ll
        self.prior_ = prior
        self.confusion_ = confusion
        self.posterior_ = posterior
        self.n_reads_ = np.array([len(rows) for rows, _ in cols], dtype=np.int64)
        return self

    @staticmethod
    def _e_step(prior, confusion, cols, n, k) -> tuple[np.ndarray, float]:
        log_post = np.tile(np.log(np.maximum(prior, 1e-300)), (n, 1))
        log_conf = np.log(np.maximum(confusion, 1e-300))
        for j, (rows, given) in enumerate(cols):
            log_post[rows] += log_conf[j][:, given].T
        top = log_post.max(axis=1, keepdims=True)
        norm = top + np.log(np.exp(log_post - top).sum(axis=1, keepdims=True))
        return np.exp(log_post - norm), float(norm.sum())

    def _m_step(self, t, cols, k, r) -> tuple[np.ndarray, np.ndarray]:
        a = float(self.smoothing)
        prior = t.sum(axis=0) + a
        prior = prior / prior.sum()
        cells = np.full((r, k, k), a)
        for j, (rows, given) in enumerate(cols):
            for true in range(k):
                cells[j, true] += np.bincount(given, weights=t[rows, true], minlength=k)
        totals = cells.sum(axis=2, keepdims=True)
        # a reader with no reads of a true class and no smoothing: uniform, not 0/0
        confusion = np.divide(cells, totals, out=np.full_like(cells, 1.0 / k), where=totals > 0)
        return prior, confusion

    def predict(self) -> np.ndarray:
        """(n_items,) int64 most probable true class of each fitted item."""
        return self.posterior_.argmax(axis=1)

    def reader_accuracy(self) -> np.ndarray:
        """(n_raters,) each reader's estimated accuracy: the diagonal weighted by the class prior."""
        return np.einsum("k,rkk->r", self.prior_, self.confusion_)


def dawid_skene(ratings, n_classes: int | None = None, **params) -> DawidSkene:
    """Fit and return a ``DawidSkene``; the plain-function form of the estimator."""
    return DawidSkene(n_classes, **params).fit(ratings)
