"""Consensus and label errors on real chest X-ray labels: does Dawid–Skene beat the majority vote,
and does confident learning find flipped labels? (not collected by pytest)

PneumoniaMNIST (all 5856 images, 0 normal / 1 pneumonia, 74% pneumonia) gives the true labels.
Simulated readers each flip a label with their own known error rate (independently per scan):

  similar           three readers, errors 10%, 15%, 20%; everyone reads every scan
  one much worse    three readers, errors 10%, 10%, 45%
  four, one worse   four readers, errors 5%, 10%, 15%, 45% (majority ties are common)
  five, 3 per scan  five readers, errors 5%, 10%, 15%, 20%, 45%; each scan read by 3 of them at random
  over-caller       three readers, errors 10%, 15% and one who calls 35% of normals pneumonia but
                    misses only 5% of pneumonias (class-dependent: only a confusion matrix sees it)

For each, over ``--seeds`` seeds: share of scans whose true label is recovered by Dawid–Skene
(aldesk.review.consensus) and by majority vote (ties broken at random: a coin is what a tie gives),
and the error rates Dawid–Skene estimated for each reader. "plain EM" is Dawid–Skene without the
prior on the confusion matrices (prior_strength=0), for comparison.

Label errors: ``--n`` random scans, 10% of their labels flipped; features are 4 x 4 block means of
the 28 x 28 pixels (49 values), standardised; out-of-fold logistic regression (5 folds) and
confident learning (aldesk.review.label_errors). Precision at k = share of truly flipped scans among
the k top-ranked, k = number flipped; also how many were flagged and their precision and recall.

    python tests/benchmarks/bench_consensus.py --json bench_consensus.json
    python tests/benchmarks/bench_consensus.py --seeds 3 --features pixels
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from aldesk.review.consensus import consensus, majority_vote
from aldesk.review.dawid_skene import DawidSkene
from aldesk.review.label_errors import find_label_issues, out_of_fold_proba
from aldesk.review.ratings import MISSING

DATA = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pneumoniamnist"
        / "pneumoniamnist.npz")

# name -> (per reader: (P(says 1 | true 0), P(says 0 | true 1)), readers per scan or None for all)
SCENARIOS: dict[str, tuple[list[tuple[float, float]], int | None]] = {
    "similar": ([(0.10, 0.10), (0.15, 0.15), (0.20, 0.20)], None),
    "one much worse": ([(0.10, 0.10), (0.10, 0.10), (0.45, 0.45)], None),
    "four, one worse": ([(0.05, 0.05), (0.10, 0.10), (0.15, 0.15), (0.45, 0.45)], None),
    "five, 3 per scan": ([(0.05, 0.05), (0.10, 0.10), (0.15, 0.15), (0.20, 0.20), (0.45, 0.45)], 3),
    "over-caller": ([(0.10, 0.10), (0.15, 0.15), (0.35, 0.05)], None),
}


def load(path: Path = DATA) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 28, 28) uint8, labels (n,) int64) of every split."""
    d = np.load(path)
    images = np.concatenate([d[f"{s}_images"] for s in ("train", "val", "test")])
    labels = np.concatenate([d[f"{s}_labels"].ravel() for s in ("train", "val", "test")]).astype(np.int64)
    return images, labels


def simulate_readers(y: np.ndarray, errors: list[tuple[float, float]], per_scan: int | None,
                     rng: np.random.Generator) -> np.ndarray:
    """(n, n_readers) ratings of binary ``y``: reader r says the other class with probability
    errors[r][y]; with ``per_scan`` each scan is read by that many readers chosen at random."""
    n, r = len(y), len(errors)
    flip_p = np.array(errors, dtype=np.float64).T  # (2, n_readers): row = true class
    flips = rng.random((n, r)) < flip_p[y]
    R = np.where(flips, 1 - y[:, None], y[:, None]).astype(np.int64)
    if per_scan is not None:
        keep = np.argsort(rng.random((n, r)), axis=1)[:, :per_scan]
        mask = np.zeros((n, r), dtype=bool)
        np.put_along_axis(mask, keep, True, axis=1)
        R[~mask] = MISSING
    return R


def consensus_accuracy(y: np.ndarray, R: np.ndarray, rng: np.random.Generator, *, plain_em: bool = True) -> dict:
    """Share of true labels recovered by Dawid–Skene and by majority vote (ties: a coin); with
    ``plain_em`` also by Dawid–Skene without its prior."""
    ds = consensus(R, 2, min_overlap=1)
    plain = DawidSkene(2, prior_strength=0.0).fit(R) if plain_em else None
    mv, _ = majority_vote(R, 2)
    ties = mv == MISSING
    mv = mv.copy()
    mv[ties] = rng.integers(0, 2, int(ties.sum()))
    estimated = [[float(c[0, 1]), float(c[1, 0])] for c in ds.confusion]
    return {"dawid_skene": float((ds.labels == y).mean()), "majority": float((mv == y).mean()),
            "plain_em": float((plain.predict() == y).mean()) if plain is not None else None,
            "ties": float(ties.mean()), "estimated_errors": estimated}


def block_features(images: np.ndarray, block: int = 4) -> np.ndarray:
    """(n, (28 // block)^2) block means, standardised."""
    n, h, w = images.shape
    X = images[:, : h // block * block, : w // block * block].reshape(n, h // block, block, w // block, block)
    X = X.mean(axis=(2, 4)).reshape(n, -1).astype(np.float64)
    return (X - X.mean(axis=0)) / np.maximum(X.std(axis=0), 1e-12)


def pixel_features(images: np.ndarray) -> np.ndarray:
    X = images.reshape(len(images), -1).astype(np.float64)
    return (X - X.mean(axis=0)) / np.maximum(X.std(axis=0), 1e-12)


def label_error_run(images: np.ndarray, y: np.ndarray, n: int, flip_share: float, seed: int,
                    features: str = "blocks") -> dict:
    """Flip ``flip_share`` of ``n`` random scans' labels; how well are the flips found?"""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(y), n, replace=False)
    X = block_features(images[idx]) if features == "blocks" else pixel_features(images[idx])
    given = y[idx].copy()
    flipped = rng.choice(n, int(round(flip_share * n)), replace=False)
    given[flipped] = 1 - given[flipped]
    proba = out_of_fold_proba(X, given, 2, folds=5, random_state=seed)
    issues = find_label_issues(given, proba)
    k = len(flipped)
    truly = np.zeros(n, dtype=bool)
    truly[flipped] = True
    hits = truly[issues.indices]
    return {"n": n, "flipped": k, "precision_at_k": float(truly[issues.ranking[:k]].mean()),
            "flagged": int(len(issues.indices)),
            "flagged_precision": float(hits.mean()) if len(hits) else 0.0,
            "flagged_recall": float(hits.sum() / k) if k else 0.0}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n", type=int, default=2000, help="scans in the label-error runs")
    parser.add_argument("--features", choices=("blocks", "pixels"), default="blocks")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--quick", action="store_true", help="1 seed, 500 scans in the label-error runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.n = 1, min(args.n, 500)

    images, y = load()
    print(f"PneumoniaMNIST: {len(y)} scans, {y.mean():.0%} pneumonia; {args.seeds} seeds\n")
    results: dict = {"data": str(DATA), "n_scans": int(len(y)), "seeds": args.seeds, "scenarios": {},
                     "platform": platform.platform()}
    print(f"{'scenario':18} {'readers (error rates)':38} {'Dawid-Skene':>11} {'majority':>9} {'gain':>7} "
          f"{'ties':>6} {'plain EM':>9}")
    for name, (errors, per_scan) in SCENARIOS.items():
        t0 = time.perf_counter()
        runs = [consensus_accuracy(y, simulate_readers(y, errors, per_scan, np.random.default_rng(s)),
                                   np.random.default_rng(1000 + s)) for s in range(args.seeds)]
        ds = np.array([r["dawid_skene"] for r in runs])
        mv = np.array([r["majority"] for r in runs])
        plain = np.array([r["plain_em"] for r in runs])
        est = np.mean([r["estimated_errors"] for r in runs], axis=0)
        label = ", ".join(f"{a:.0%}" if a == b else f"{a:.0%}/{b:.0%}" for a, b in errors)
        if per_scan:
            label += f"; {per_scan} per scan"
        print(f"{name:18} {label:38} {ds.mean():11.4f} {mv.mean():9.4f} {ds.mean() - mv.mean():+7.4f} "
              f"{np.mean([r['ties'] for r in runs]):6.1%} {plain.mean():9.4f}")
        print(f"{'':18} estimated: " + ", ".join(f"{a:.1%}/{b:.1%}" for a, b in est))
        results["scenarios"][name] = {
            "errors": errors, "per_scan": per_scan, "dawid_skene": float(ds.mean()), "majority": float(mv.mean()),
            "gain": float(ds.mean() - mv.mean()), "gain_min": float((ds - mv).min()),
            "plain_em": float(plain.mean()),
            "estimated_errors": est.tolist(), "seconds": round(time.perf_counter() - t0, 3)}

    print(f"\nlabel errors: {args.n} scans, 10% of labels flipped, {args.features} features, 5-fold logistic")
    runs = [label_error_run(images, y, args.n, 0.10, seed=s, features=args.features) for s in range(args.seeds)]
    keys = ("precision_at_k", "flagged", "flagged_precision", "flagged_recall")
    summary = {k: float(np.mean([r[k] for r in runs])) for k in keys}
    summary["precision_at_k_min"] = float(min(r["precision_at_k"] for r in runs))
    print(f"  k = {runs[0]['flipped']} flipped; precision at k {summary['precision_at_k']:.3f} "
          f"(worst seed {summary['precision_at_k_min']:.3f}); flagged {summary['flagged']:.0f}, "
          f"of which {summary['flagged_precision']:.1%} truly flipped, finding {summary['flagged_recall']:.1%} of flips")
    results["label_errors"] = {"n": args.n, "flip_share": 0.10, "features": args.features, **summary, "runs": runs}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"\nwritten: {args.json}")
    return results


if __name__ == "__main__":
    main()
