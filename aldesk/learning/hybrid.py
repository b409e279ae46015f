"""The default strategy: uncertain *and* diverse scans in one batch, typical ones while labels are few.

Pure uncertainty sampling fills a batch of 10 with near copies of the same ambiguous scan (a run of
similar slices, a duplicated study); pure diversity wastes labels on easy scans. ``hybrid`` takes the
most uncertain ``pool_fraction`` of the candidates (10 %, at most ``pool_factor · b`` = 50·b, at least 2·b)
and spreads the batch over them:

* ``diversity="kmeans"`` (default): uncertainty-weighted k-means into b groups and, from each group, the
  scan nearest its centre (Zhdanov 2019, "Diverse mini-batch active learning");
* ``diversity="kcenter"``: greedy k-center among them with the labelled scans as fixed centres.

Uncertainty is the *margin* between the two likeliest classes (``uncertainty="margin"``). With two
classes it ranks as entropy does; with more, entropy favours scans spread over many unlikely classes,
which on the suite's 7-class colour set lost to random (-0.015 AULC) where margin gained (+0.03).

Cold to warm (``warm_per_class``, default 2): while there are fewer than 2 labels per class the model's
uncertainty is worth little, and the pre-filter keeps the whole pool, so the batch is the typical scans
of uncertainty-weighted groups (Hacohen et al. 2022, "Active learning on a budget": typical first,
uncertain later). The kept fraction then shrinks as 2 / (labels per class) down to ``pool_fraction``.
Why 2, not 5 (the second session's choice): with 5 the pre-filter stays wide for most of a campaign on a
set of 6-10 classes (at 150 labels and 6 classes it still keeps 20 % of the pool), and the default
trailed plain margin sampling by 0.021-0.025 AULC on grey textures; with 2 it is within 0.005 of the best
single strategy on every tuning set (tests/benchmarks/suite-RESULTS.md, third session).

Why a fraction: the pre-filter used to keep 50·b whatever the pool. On a pool of a few hundred scans that
is the whole pool, and hybrid became diversity alone: it tied random on a 546-image ultrasound set where
5·b (about 10 % of that pool) gained +0.04 AULC (issue 11). 50·b had been tuned on PneumoniaMNIST's
4,708-image pool, where it is also about 10 %. The defaults were chosen on the whole strategy suite
(tests/benchmarks/suite.py: 8 data sets, then checked on 2 held out; suite-RESULTS.md), never on one set.
"Nearest the centre": the group's central scan beat its most uncertain one; k-center among the uncertain
scans lost to random on PneumoniaMNIST (it chases outliers).

Falls back to cold start while no model can be trained, and says so in every reason.
Cost beyond predict_proba: a k-means on the kept rows (at most PREFILTER_MAX = 10,000; measured at
100,000 scans × 128 features: 0.2-0.3 s while labels are few, 0.05-0.15 s after).
"""

from __future__ import annotations

import numpy as np

from aldesk.errors import LearningError
from aldesk.learning.base import BaseStrategy, QueryInput, make_result, ordinal, rank_of, top_k
from aldesk.learning.clustering import weighted_kmeans
from aldesk.learning.coreset import k_center_greedy, typical_distance
from aldesk.learning.models import DEFAULT_MODEL
from aldesk.learning.querymodel import model_proba
from aldesk.learning.uncertainty import (
    SCORE_FUNCTIONS,
    SCORE_LABELS,
    check_model_params,
    favour_rare_factors,
    rare_reason,
)


PREFILTER_MAX = 10_000  # keeps the k-means cheap for unusually large batches (never below 2·b)
REF_ROWS = 100  # rows the reasons' typical distance is the median of


def prefilter_size(n_candidates: int, b: int, pool_factor: int, pool_fraction: float) -> int:
    """How many of the most uncertain candidates the diverse pick chooses among: a fraction of the pool,
    at most pool_factor·b (and PREFILTER_MAX), never fewer than 2·b."""
    keep = min(int(np.ceil(pool_fraction * n_candidates)), pool_factor * b, PREFILTER_MAX)
    return max(keep, 2 * b)


def scheduled_fraction(pool_fraction: float, warm_per_class: float, n_labelled: int, n_classes: int) -> float:
    """The pre-filter's fraction as labels accumulate: the whole pool while there are fewer than
    ``warm_per_class`` labels per class (typical scans first: the model's uncertainty is not worth much
    yet), shrinking as warm_per_class / (labels per class) down to ``pool_fraction``."""
    if warm_per_class <= 0 or n_labelled <= 0:
        return pool_fraction
    per_class = n_labelled / max(n_classes, 1)
    return float(min(1.0, max(pool_fraction, warm_per_class / per_class)))


class HybridStrategy(BaseStrategy):
    """Uncertainty pre-filter, then a diverse pick among the most uncertain.

    uncertainty : "margin" | "entropy" | "least_confidence" | "grade_variance"
    pool_factor : how many times b the pre-filter keeps (once labels are no longer few)
    pool_fraction : the fraction of the candidates the pre-filter keeps (once labels are no longer few)
    warm_per_class : below this many labels per class the pre-filter keeps more (see the module docstring)
    diversity : "kmeans" | "kcenter"
    favour_rare : weight uncertainty towards scans predicted to be of rarely labelled classes
    """

    name = "hybrid"

    def __init__(self, *, uncertainty: str = "margin", pool_factor: int = 50, pool_fraction: float = 0.1,
                 diversity: str = "kmeans", random_share: float = 0.0, warm_per_class: float = 2.0,
                 favour_rare: bool = False, estimator: str = DEFAULT_MODEL, calibrate: bool = True,
                 min_labels_per_class: int = 1, class_names=None):
        self.uncertainty = uncertainty
        self.pool_factor = pool_factor
        self.pool_fraction = pool_fraction
        self.random_share = random_share
        self.warm_per_class = warm_per_class
        self.diversity = diversity
        self.favour_rare = favour_rare
        self.estimator = estimator
        self.calibrate = calibrate
        self.min_labels_per_class = min_labels_per_class
        self.class_names = class_names

    def _check_params(self) -> None:
        if self.uncertainty not in SCORE_FUNCTIONS:
            raise LearningError(f"uncertainty == {self.uncertainty!r}; choose one of {', '.join(SCORE_FUNCTIONS)}")
        if isinstance(self.pool_factor, bool) or not isinstance(self.pool_factor, int) or self.pool_factor < 1:
            raise LearningError(f"pool_factor == {self.pool_factor!r}, must be an int >= 1")
        if isinstance(self.pool_fraction, bool) or not isinstance(self.pool_fraction, (int, float)) \
                or not 0 < self.pool_fraction <= 1:
            raise LearningError(f"pool_fraction == {self.pool_fraction!r}, must be a number in (0, 1]")
        if isinstance(self.random_share, bool) or not isinstance(self.random_share, (int, float)) \
                or not 0 <= self.random_share < 1:
            raise LearningError(f"random_share == {self.random_share!r}, must be a number in [0, 1)")
        if isinstance(self.warm_per_class, bool) or not isinstance(self.warm_per_class, (int, float)) \
                or not 0 <= self.warm_per_class < 1e6:
            raise LearningError(f"warm_per_class == {self.warm_per_class!r}, must be a number >= 0")
        if self.diversity not in ("kmeans", "kcenter"):
            raise LearningError(f"diversity == {self.diversity!r}; choose 'kmeans' or 'kcenter'")
        check_model_params(self)

    def _query(self, data: QueryInput, model):
        proba, fallback = model_proba(self, data, model)
        if fallback is not None:
            return fallback
        u = SCORE_FUNCTIONS[self.uncertainty](proba)
        score = u * favour_rare_factors(proba, data.class_counts) if self.favour_rare else u
        n_random = min(int(round(self.random_share * data.batch_size)), data.batch_size - 1)
        hedge = data.rng.choice(len(score), n_random, replace=False) if n_random > 0 else np.zeros(0, np.int64)
        b = data.batch_size - len(hedge)
        ranked = score.copy()
        ranked[hedge] = -np.inf  # the random share is drawn first and never ranked again
        fraction = scheduled_fraction(self.pool_fraction, self.warm_per_class, len(data.labelled),
                                      proba.shape[1])
        # while labels are few the b-multiple cap is lifted (PREFILTER_MAX still bounds the k-means)
        pool_factor = self.pool_factor if fraction == self.pool_fraction else PREFILTER_MAX
        keep = min(prefilter_size(len(data.candidates), b, pool_factor, fraction),
                   len(score) - len(hedge))
        top = top_k(ranked, keep)  # positions into candidates, most uncertain first
        if len(top) <= b:
            chosen = top
            groups = None
        elif self.diversity == "kmeans":
            chosen, groups = self._kmeans_pick(data, top, score, b)
        else:
            picks = k_center_greedy(data.X, data.labelled, data.candidates[top], b, data.rng)
            chosen = np.searchsorted(data.candidates, picks)
            groups = None
        chosen = chosen[np.lexsort((chosen, -score[chosen]))]  # most useful first
        ranks = rank_of(score)
        # the "x typical" of the reasons: distance to the nearest labelled scan against the median over the
        # kept rows (a stride of at most REF_ROWS of them: the median needs no more, and at 20k labels every
        # row costs a pass over all labelled scans), in one pass with the chosen
        sample = top[::max(1, -(-len(top) // REF_ROWS))]
        both = typical_distance(data.X, data.labelled, data.candidates[np.concatenate([chosen, sample])])
        dist, ref = both[:len(chosen)], both[len(chosen):]
        ref = float(np.median(ref)) if np.isfinite(ref).all() and len(ref) else np.inf
        label = SCORE_LABELS[self.uncertainty]
        reasons = []
        early = (f"; labels are still few ({len(data.labelled) / proba.shape[1]:.1f} per class): typical scans come first "
                 f"(the uncertainty pre-filter keeps {len(top) / len(score):.0%} of the pool, later "
                 f"{self.pool_fraction:.0%})") if fraction > self.pool_fraction else ""
        for i, d in zip(chosen, dist):
            text = f"{label} {u[i]:.2f}, {ordinal(int(ranks[i]))} most {'useful' if self.favour_rare else 'uncertain'}"
            if self.favour_rare:
                factor = float(score[i] / u[i]) if u[i] > 0 else 1.0
                text += "; " + rare_reason(proba[i], data.class_counts, factor, self.class_names)
            if np.isfinite(ref) and ref > 0:
                ratio = round(float(d / ref), 1)  # the words follow the number shown: 0.8x is never "typical"
                where = "far from" if ratio >= 1.2 else ("close to" if ratio <= 0.8 else "at a typical distance from")
                text += f"; {where} labelled scans ({ratio:.1f}x typical)"
            if groups is not None:
                text += f"; typical of a group of {groups[i]} similar uncertain scans"
            reasons.append(text + early)
        if len(hedge):
            reasons += ["drawn at random (the hedge share: keeps the labelled set representative)"] * len(hedge)
            chosen = np.concatenate([chosen, np.sort(hedge)])
        return make_result(self.name, data.candidates[chosen], score[chosen], reasons,
                           prefiltered=int(len(top)), prefilter_fraction=round(float(fraction), 4),
                           diversity=self.diversity, random_share=float(self.random_share))

    def _kmeans_pick(self, data: QueryInput, top: np.ndarray, score: np.ndarray, b: int):
        """One scan per uncertainty-weighted k-means group: the member nearest the group's centre."""
        Xt = data.X[data.candidates[top]].astype(np.float64)
        centres, labels = weighted_kmeans(Xt, b, data.rng, weights=score[top] + 1e-12)
        d2 = ((Xt - centres[labels]) ** 2).sum(axis=1)
        sizes = np.bincount(labels)
        order = np.lexsort((np.arange(len(top)), d2, labels))  # by group, nearest the centre first
        firsts = order[np.r_[True, labels[order][1:] != labels[order][:-1]]]
        chosen = [int(p) for p in top[firsts]]
        group_size = {int(top[j]): int(sizes[labels[j]]) for j in firsts}
        if len(chosen) < b:  # fewer distinct groups than wanted (exact duplicates): fill by k-center
            rest = np.setdiff1d(top, chosen)
            centres_idx = np.concatenate([data.labelled, data.candidates[chosen]]).astype(np.int64)
            more = k_center_greedy(data.X, centres_idx, data.candidates[rest], b - len(chosen), data.rng)
            for p in np.searchsorted(data.candidates, more):
                chosen.append(int(p))
                group_size[int(p)] = 1
        groups = np.zeros(len(score), dtype=np.int64)
        for p, g in group_size.items():
            groups[p] = g
        return np.asarray(chosen, dtype=np.int64), groups
