"""From several readers' labels to one training label per scan.

``consensus`` is what training uses (below an adjudicated label, which the app applies): Dawid–Skene
when enough scans were read twice to tell reliable readers from unreliable ones, else majority vote.
Pure: numpy only. Never imports Qt, sqlite or the store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from aldesk.review.dawid_skene import DawidSkene
from aldesk.review.ratings import MISSING, category_counts, check_ratings


def majority_labels(reads: Iterable[tuple[int, str]], classes: list[str]) -> dict[int, str]:
    """scan id -> the class most readers chose. 'unsure'/'skip' reads do not vote; ties give no label,
    so a disputed scan never trains the model until someone settles it."""
    votes: dict[int, Counter] = {}
    valid = set(classes)
    for scan_id, value in reads:
        if value in valid:
            votes.setdefault(scan_id, Counter())[value] += 1
    final = {}
    for scan_id, counter in votes.items():
        (top, n), *rest = counter.most_common(2) + [(None, 0)]
        if rest[0][1] < n:
            final[scan_id] = top
    return final


# --------------------------------------------------------------------------------------------------
# On a ratings matrix (see aldesk.review.ratings): majority vote and the reliability-weighted consensus.

MIN_OVERLAP = 20  # items read by at least two readers before reader reliabilities can be estimated


def majority_vote(ratings, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels (n_items,) int64, share (n_items,) float64): the class most readers chose and the share
    of votes it got. Ties and items without a class vote get MISSING and share 0."""
    R, k = check_ratings(ratings, n_classes)
    counts = category_counts(R, k)
    total = counts.sum(axis=1)
    top = counts.max(axis=1)
    winners = (counts == top[:, None]).sum(axis=1)
    decided = (total > 0) & (winners == 1)
    labels = np.where(decided, counts.argmax(axis=1), MISSING).astype(np.int64)
    share = np.where(decided, top / np.maximum(total, 1), 0.0)
    return labels, share


@dataclass
class Consensus:
    """One training label per item, and how sure it is.

    labels : (n_items,) int64 class index, MISSING where there is none (no class vote, or a tie
             under majority vote)
    weights : (n_items,) float64 in [0, 1]: posterior (Dawid–Skene) or vote share (majority) of the
              chosen class; 0 where labels is MISSING
    posterior : (n_items, n_classes) float64 class probabilities (vote shares under majority)
    method : 'dawid-skene' or 'majority'
    confusion : (n_raters, n_classes, n_classes) estimated confusion matrices (row = true class),
                None under majority vote
    prior : (n_classes,) class prior, None under majority vote
    """

    labels: np.ndarray
    weights: np.ndarray
    posterior: np.ndarray
    method: str
    confusion: np.ndarray | None = None
    prior: np.ndarray | None = None
    n_multi_read: int = 0


def consensus(ratings, n_classes: int | None = None, *, truth=None, min_overlap: int = MIN_OVERLAP,
              prior_strength: float = 50.0, max_iter: int = 1000) -> Consensus:
    """Dawid–Skene when at least ``min_overlap`` items were read by two or more readers, else majority
    vote (with too little overlap a reader's reliability cannot be told from the data).

    ``truth`` : optional (n_items,) int64 known classes (adjudicated), MISSING elsewhere; Dawid–Skene
    learns from them. The caller still puts them above the consensus (they are final either way)."""
    R, k = check_ratings(ratings, n_classes)
    counts = category_counts(R, k)
    n_multi = int((counts.sum(axis=1) >= 2).sum())
    has_vote = counts.sum(axis=1) > 0
    if R.shape[1] >= 2 and n_multi >= max(min_overlap, 1):
        model = DawidSkene(k, prior_strength=prior_strength, max_iter=max_iter).fit(R, truth)
        post = model.posterior_
        labels = np.where(has_vote, post.argmax(axis=1), MISSING).astype(np.int64)
        weights = np.where(has_vote, post.max(axis=1), 0.0)
        return Consensus(labels, weights, np.where(has_vote[:, None], post, 0.0), "dawid-skene",
                         model.confusion_, model.prior_, n_multi)
    labels, share = majority_vote(R, k)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    return Consensus(labels, share, shares, "majority", None, None, n_multi)
