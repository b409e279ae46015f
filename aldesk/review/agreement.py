"""How much readers agree: percent agreement, Cohen's, Fleiss' kappa and Krippendorff's alpha.

Each statistic is a plain function of counts that also takes per-item ``weights`` (how often a
bootstrap sample drew the item), so one ``bootstrap_ci`` serves all of them: the confidence
interval resamples scans, not reads, because reads of one scan are not independent.

Arrays (see ``aldesk.review.ratings``):
    ratings : (n_items, n_raters) int64, MISSING (-1) where a rater gave no class
    counts  : (n_items, n_classes) float64, raters per class per item
    a, b    : (n,) int64 class indices two raters gave the same n items

Statistics that cannot be computed (no shared items, no variation at all) are NaN, never an error:
the report turns them into ``None``.

A reader is never judged against a consensus that holds their own read (``reader_reliability``): with
few reads per scan that consensus mostly *is* the reader, and a reader wrong on a quarter of their
scans came out as "accuracy 1.000". Pure: numpy only. Never imports Qt, sqlite or the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations

import numpy as np

from aldesk.review.consensus import MIN_OVERLAP, consensus as consensus_of
from aldesk.review.ratings import MISSING, category_counts, check_ratings

LEVELS = ("nominal", "ordinal", "interval")
KAPPA_WEIGHTS = (None, "linear", "quadratic")


def _item_weights(n: int, weights) -> np.ndarray:
    return np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)


def _pairable(counts: np.ndarray, weights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items with at least two ratings: (counts, ratings per item, weights)."""
    counts = np.asarray(counts, dtype=np.float64)
    m = counts.sum(axis=1)
    ok = m >= 2
    return counts[ok], m[ok], _item_weights(len(counts), weights)[ok]


def percent_agreement(counts, weights=None) -> float:
    """Share of agreeing reader pairs, averaged over items read at least twice (Fleiss' P-bar)."""
    c, m, w = _pairable(counts, weights)
    if w.sum() <= 0:
        return float("nan")
    p_i = (c * (c - 1)).sum(axis=1) / (m * (m - 1))
    return float((w * p_i).sum() / w.sum())


def fleiss_kappa(counts, weights=None) -> float:
    """Fleiss' kappa (1971) from ``counts``; items with fewer than two ratings are left out.

    With a varying number of raters per item each item's agreement uses its own n_i, and the
    chance term pools every rating; with a constant number this is Fleiss' formula exactly."""
    c, m, w = _pairable(counts, weights)
    if w.sum() <= 0:
        return float("nan")
    p_i = (c * (c - 1)).sum(axis=1) / (m * (m - 1))
    p_bar = (w * p_i).sum() / w.sum()
    p_j = (w[:, None] * c).sum(axis=0) / (w * m).sum()
    p_e = float((p_j ** 2).sum())
    if p_e >= 1.0 - 1e-12:
        return float("nan")
    return float((p_bar - p_e) / (1.0 - p_e))


def coincidences(counts, weights=None) -> np.ndarray:
    """Krippendorff's coincidence matrix (n_classes, n_classes) over pairable items."""
    c, m, w = _pairable(counts, weights)
    cw = c * (w / (m - 1))[:, None]
    return cw.T @ c - np.diag(cw.sum(axis=0))


def _delta2(level: str, marginals: np.ndarray) -> np.ndarray:
    """Squared difference between categories (n_classes, n_classes) at a level of measurement."""
    k = len(marginals)
    idx = np.arange(k, dtype=np.float64)
    if level == "nominal":
        return 1.0 - np.eye(k)
    if level == "interval":
        return (idx[:, None] - idx[None, :]) ** 2
    if level == "ordinal":
        cum = np.cumsum(marginals)
        lo, hi = np.minimum.outer(np.arange(k), np.arange(k)), np.maximum.outer(np.arange(k), np.arange(k))
        between = cum[hi] - cum[lo] + marginals[lo]  # sum of n_g for g from lo to hi
        return (between - (marginals[lo] + marginals[hi]) / 2.0) ** 2
    raise ValueError(f"level == {level!r}, must be one of {', '.join(LEVELS)}")


def krippendorff_alpha(counts, level: str = "nominal", weights=None) -> float:
    """Krippendorff's alpha (2011) from ``counts``; missing reads are simply absent from counts.

    ``level``: 'nominal' (classes unordered), 'ordinal' (class order matters, e.g. grades) or
    'interval' (class index differences matter)."""
    if level not in LEVELS:
        raise ValueError(f"level == {level!r}, must be one of {', '.join(LEVELS)}")
    o = coincidences(counts, weights)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n <= 1:
        return float("nan")
    d = _delta2(level, n_c)
    expected = (np.outer(n_c, n_c) * d).sum() / (n - 1)
    if expected <= 0:
        return float("nan")
    return float(1.0 - (o * d).sum() / expected)


def _kappa_weights(n_classes: int, weights: str | None) -> np.ndarray:
    if weights not in KAPPA_WEIGHTS:
        raise ValueError(f"weights == {weights!r}, must be None, 'linear' or 'quadratic'")
    idx = np.arange(n_classes, dtype=np.float64)
    diff = np.abs(idx[:, None] - idx[None, :])
    if weights is None:
        return (diff > 0).astype(np.float64)
    return diff if weights == "linear" else diff ** 2


def cohen_kappa(a, b, n_classes: int | None = None, weights: str | None = None,
                sample_weight=None) -> float:
    """Cohen's kappa of two raters over the same items; ``weights`` as scikit-learn's
    ``cohen_kappa_score`` (None, 'linear', 'quadratic'). NaN when there is nothing to compare."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a.shape == {a.shape}, b.shape == {b.shape}: must be equal 1-d")
    if len(a) == 0:
        return float("nan")
    k = int(n_classes if n_classes is not None else max(a.max(), b.max()) + 1)
    w = _item_weights(len(a), sample_weight)
    confusion = np.bincount(a * k + b, weights=w, minlength=k * k).reshape(k, k)
    total = confusion.sum()
    if total <= 0:
        return float("nan")
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / total
    wm = _kappa_weights(k, weights)
    denominator = (wm * expected).sum()
    if denominator <= 1e-12:
        return float("nan")
    return float(1.0 - (wm * confusion).sum() / denominator)


def bootstrap_ci(statistic: Callable[[np.ndarray], float], n_items: int, *, n_boot: int = 1000,
                 confidence: float = 0.95, random_state=0, groups: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile interval of ``statistic(weights)`` over ``n_boot`` resamples of the items.

    ``weights`` (n_items,) counts how often each item was drawn. With ``groups`` (n_groups,) -- how many
    items share each distinct value, as from ``np.unique(..., return_counts=True)`` -- ``weights`` is
    (n_groups,) instead: how many draws fell in each group, Multinomial(n_items, groups / n_items), the
    same distribution as drawing items, at a cost per resample that no longer grows with the items.
    (NaN, NaN) when there are no items, n_boot is 0, or most resamples give no value (e.g. every
    resample lacks variation)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence == {confidence}, must be in (0, 1)")
    if n_boot < 0:
        raise ValueError(f"n_boot == {n_boot}, must be >= 0")
    if n_items == 0 or n_boot == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(random_state)
    if groups is not None:
        share = np.asarray(groups, dtype=np.float64) / n_items
        values = np.array([statistic(rng.multinomial(n_items, share)) for _ in range(n_boot)])
    else:
        values = np.array([statistic(np.bincount(rng.integers(0, n_items, n_items), minlength=n_items))
                           for _ in range(n_boot)])
    finite = values[np.isfinite(values)]
    if len(finite) < n_boot / 2:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def leave_one_out_reference(ratings, reader: int, n_classes: int, *, truth=None,
                            min_overlap: int = MIN_OVERLAP) -> tuple[np.ndarray, np.ndarray, str]:
    """What the *other* readers say about each item, for judging ``reader``.

    Returns (posterior (n_items, n_classes) float64 — rows sum to 1 where there is a reference, 0
    elsewhere; strong (n_items,) bool — two or more other readers read the item, or it was adjudicated;
    method 'dawid-skene' (three or more other readers and enough overlap) or 'majority' of the others).
    ``truth`` (adjudicated, MISSING elsewhere)
    replaces the others' consensus where known and is always strong."""
    R, k = check_ratings(ratings, n_classes)
    others = np.delete(R, reader, axis=1)
    t = None if truth is None else np.asarray(truth, dtype=np.int64)
    if others.shape[1] == 0:
        post, method = np.zeros((len(R), k)), "majority"
        n_votes = np.zeros(len(R))
    else:
        # Dawid–Skene cannot tell which of two readers is the reliable one: majority (ties left out) then
        result = consensus_of(others, k, truth=t, min_overlap=min_overlap if others.shape[1] >= 3 else len(R) + 1)
        post, method = result.posterior.astype(np.float64), result.method
        n_votes = (others != MISSING).sum(axis=1)
    strong = n_votes >= 2  # one other read says how often two readers differ, not who is right
    if t is not None:
        known = t != MISSING
        post[known] = np.eye(k)[t[known]]
        strong = strong | known
    return post, strong & (post.sum(axis=1) > 0), method


def corrected_accuracy(agreement: float, reference_accuracy: float, n_classes: int) -> float:
    """A reader's accuracy from their agreement with a reference that is itself sometimes wrong.

    With errors spread evenly over the other classes and independent of the reference's (the
    one-coin model), P(agree) = acc * q + (1 - acc) * (1 - q) / (k - 1); solved for acc and clipped to
    [0, 1]. ``reference_accuracy`` q is the reference's mean probability of its own class (1 for
    adjudicated scans). NaN when q is no better than chance."""
    chance = (1.0 - reference_accuracy) / max(n_classes - 1, 1)
    if reference_accuracy - chance <= 1e-9:
        return float("nan")
    return float(np.clip((agreement - chance) / (reference_accuracy - chance), 0.0, 1.0))


def reader_reliability(ratings, raters: Sequence[str], n_classes: int, *, truth=None,
                       min_overlap: int = MIN_OVERLAP) -> list[dict]:
    """Each reader against the consensus of the *other* readers (and adjudicated truth), per reader:

    reader, n (their reads that others also read), percent_agreement and cohen_kappa against the
    others' consensus class (items where it is a tie are left out), accuracy (share of the reader's
    reads equal to that class on items with a strong reference — two or more other readers, or
    adjudication — corrected for the reference's own errors by ``corrected_accuracy``), confusion (n_classes, n_classes) rows =
    reference class, columns = class given,
    rows sum to 1 (NaN rows where the reference never had that class), reference ('dawid-skene' or
    'majority' of the others), n_strong, and ``why`` — None, or in plain words why accuracy and
    confusion cannot be estimated (then they are None / NaN)."""
    rows = []
    for row, a, b in _versus_others(ratings, raters, n_classes, truth=truth, min_overlap=min_overlap):
        row["percent_agreement"] = float((a == b).mean()) if len(a) else float("nan")
        row["cohen_kappa"] = cohen_kappa(a, b, n_classes)
        rows.append(row)
    return rows


def _versus_others(ratings, raters, n_classes, *, truth, min_overlap):
    """(row, a, b) per reader: a = the reader's class, b = the others' consensus class, where decided."""
    R, k = check_ratings(ratings, n_classes)
    for j, name in enumerate(raters):
        post, strong, method = leave_one_out_reference(R, j, k, truth=truth, min_overlap=min_overlap)
        given = R[:, j]
        mine = given != MISSING
        ref = mine & (post.sum(axis=1) > 0)
        top = post.max(axis=1)
        decided = ref & ((post == top[:, None]).sum(axis=1) == 1)
        hard = post.argmax(axis=1)
        row = {"reader": name, "n": int(ref.sum()), "n_strong": int((ref & strong).sum()), "reference": method}
        use = decided & strong
        confusion = np.full((k, k), np.nan)
        why = None
        if not mine.any():
            why = f"{name} has no class read yet"
        elif not ref.any():
            why = f"no scan {name} read was also read by another reader"
        elif not (ref & strong).any():
            why = (f"each scan {name} shares with others was read by one other reader only: agreement shows how "
                   "often the two of you differ, not which of you is right")
        if why is None:
            counts = np.zeros((k, k))
            np.add.at(counts, (hard[use], given[use]), 1.0)
            totals = counts.sum(axis=1, keepdims=True)
            confusion = np.divide(counts, totals, out=np.full_like(counts, np.nan), where=totals > 0)
            row["accuracy"] = corrected_accuracy(float((given[use] == hard[use]).mean()),
                                                 float(top[use].mean()), k) if use.any() else float("nan")
        else:
            row["accuracy"] = float("nan")
        row["confusion"], row["why"] = confusion, why
        yield row, given[decided], hard[decided]


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


def _ci(pair: tuple[float, float]) -> list | None:
    return None if not all(np.isfinite(pair)) else [round(pair[0], 6), round(pair[1], 6)]


def agreement_report(ratings, raters: Sequence[str], classes: Sequence[str], *, ordered: bool = False,
                     truth=None, min_overlap: int = MIN_OVERLAP, n_boot: int = 1000, confidence: float = 0.95,
                     random_state=0) -> dict:
    """Every agreement figure a study reports, as plain JSON-ready data.

    ratings : (n_items, n_raters) int64, MISSING where no class was given
    truth : optional (n_items,) int64 adjudicated class per item (MISSING where none). Each reader is
        compared with the consensus of the *other* readers, truth replacing it where known
        (``reader_reliability``), never with a consensus holding their own read.

    Keys: n_items, n_multi_read, percent_agreement, fleiss_kappa, krippendorff_alpha (nominal, always),
    krippendorff_alpha_ordinal (only when ``ordered``), each with ``*_ci`` ([low, high] or None);
    pairs: [{a, b, n, percent_agreement, cohen_kappa, ... _ci, weighted_kappa when ordered}];
    vs_consensus: [{reader, n, n_strong, reference, percent_agreement, cohen_kappa, cohen_kappa_ci,
    accuracy (None when it cannot be estimated), confusion (rows = reference class, None cells
    where unknown), why (None, or why accuracy cannot be estimated)}].
    """
    R, k = check_ratings(ratings, len(classes))
    if R.shape[1] != len(raters):
        raise ValueError(f"ratings has {R.shape[1]} columns but {len(raters)} raters were named")
    counts = category_counts(R, k)
    m = counts.sum(axis=1)
    multi = m >= 2
    cm = counts[multi]
    n_multi = int(multi.sum())
    seed = random_state

    def with_ci(stat: Callable[[np.ndarray, np.ndarray | None], float], data: np.ndarray,
                ) -> tuple[float | None, list | None]:
        """stat(rows, weights) on the items (rows of ``data``) and its bootstrap interval, resampled over
        the distinct rows (every statistic here is a weighted sum over items): bounded by the number of
        distinct rows (a few dozen), not of items (18 of 29 s at 50k reads before)."""
        data = np.asarray(data)
        point = _num(stat(data, None))
        if len(data) == 0:
            return point, None
        rows, counts = np.unique(data.reshape(len(data), -1), axis=0, return_counts=True)
        return point, _ci(bootstrap_ci(lambda w: stat(rows, w), len(data), n_boot=n_boot, confidence=confidence,
                                       random_state=seed, groups=counts))

    report: dict = {
        "classes": list(classes),
        "raters": list(raters),
        "level": "ordinal" if ordered else "nominal",
        "confidence": confidence,
        "bootstrap": n_boot,
        "n_items": int((m >= 1).sum()),
        "n_multi_read": n_multi,
    }
    for key, stat in (("percent_agreement", percent_agreement), ("fleiss_kappa", fleiss_kappa),
                      ("krippendorff_alpha", lambda c, w: krippendorff_alpha(c, "nominal", w))):
        report[key], report[f"{key}_ci"] = with_ci(stat, cm)
    if ordered:
        report["krippendorff_alpha_ordinal"], report["krippendorff_alpha_ordinal_ci"] = with_ci(
            lambda c, w: krippendorff_alpha(c, "ordinal", w), cm)
    report["n"] = n_multi

    pairs = []
    for i, j in combinations(range(R.shape[1]), 2):
        shared = (R[:, i] != MISSING) & (R[:, j] != MISSING)
        a, b = R[shared, i], R[shared, j]
        row: dict = {"a": raters[i], "b": raters[j], "n": int(shared.sum())}
        ab = np.column_stack([a, b])
        row["percent_agreement"], row["percent_agreement_ci"] = with_ci(
            lambda d, w: float(np.average(d[:, 0] == d[:, 1], weights=w)) if len(d) and (w is None or w.sum())
            else float("nan"), ab)
        row["cohen_kappa"], row["cohen_kappa_ci"] = with_ci(
            lambda d, w: cohen_kappa(d[:, 0], d[:, 1], k, sample_weight=w), ab)
        if ordered:
            row["weighted_kappa"], row["weighted_kappa_ci"] = with_ci(
                lambda d, w: cohen_kappa(d[:, 0], d[:, 1], k, weights="quadratic", sample_weight=w), ab)
        pairs.append(row)
    report["pairs"] = pairs

    vs = []
    if R.shape[1] >= 2:
        if truth is not None and np.asarray(truth).shape != (R.shape[0],):
            raise ValueError(f"truth.shape == {np.asarray(truth).shape}, must be ({R.shape[0]},)")
        for row, a, b in _versus_others(R, raters, k, truth=truth, min_overlap=min_overlap):
            row["percent_agreement"] = _num(float((a == b).mean())) if len(a) else None
            row["cohen_kappa"], row["cohen_kappa_ci"] = with_ci(
                lambda d, w: cohen_kappa(d[:, 0], d[:, 1], k, sample_weight=w), np.column_stack([a, b]))
            row["accuracy"] = _num(row["accuracy"])
            row["confusion"] = [[_num(v) for v in r] for r in row["confusion"]]
            vs.append(row)
    report["vs_consensus"] = vs
    return report
