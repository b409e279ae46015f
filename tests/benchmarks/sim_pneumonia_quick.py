"""Quick check of the product claim on real scans, with a stand-in feature extractor.

PneumoniaMNIST: the official train split is the pool (4,708 chest X-rays), the test split the test set
(624). Features: the 28x28 image block-averaged to 14x14 (196 values) plus 8 intensity statistics,
standardised over pool and test together (as the app standardises the whole project). The real feature
extractor lives in aldesk.features; this stand-in only checks the strategies.

Claim (issue): over >= 10 paired seeds, initial 20, batch 10, budget 300, the default ``hybrid`` reaches
random sampling's final accuracy with <= 150 labels, and its AULC beats random with paired p < 0.05.

    python tests/benchmarks/sim_pneumonia_quick.py --seeds 10 --out /tmp/sim --json /tmp/sim/results.json

Last run (2 cores, hybrid = top 50·b by entropy, one typical scan per weighted k-means group; its
design was chosen on seeds 100-119 and on scikit-learn's digits, never on the seeds below):
  seeds 0-9:  hybrid reaches random's final accuracy (0.848) at 70 labels; AULC 0.852 vs 0.838,
              Wilcoxon p = 0.064 (7/10 wins): the p < 0.05 part of the claim is NOT met with 10 seeds.
  seeds 0-19: 110 labels; AULC 0.854 vs 0.843, p = 0.0073 (15/20 wins): met. ~3 min for 10 seeds,
              ~7 min for 20, all 13 strategies, 2 processes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
NPZ = REPO.parent / "shared" / "data" / "pneumoniamnist" / "pneumoniamnist.npz"
ALL = ["random", "least_confidence", "margin", "entropy", "qbc_vote_entropy", "qbc_kl", "bald", "coreset",
       "badge", "eer", "emc", "hybrid", "cold_start"]


def stand_in_features(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) uint8 -> (n, 204) float32: 14x14 block means + mean, sd, 5 percentiles, edge energy."""
    im = images.astype(np.float32) / 255.0
    small = im.reshape(len(im), 14, 2, 14, 2).mean(axis=(2, 4)).reshape(len(im), -1)
    flat = im.reshape(len(im), -1)
    pct = np.percentile(flat, [5, 25, 50, 75, 95], axis=1).T
    gy, gx = np.gradient(im, axis=(1, 2))
    edges = np.sqrt(gx**2 + gy**2).mean(axis=(1, 2))
    return np.hstack([small, flat.mean(1, keepdims=True), flat.std(1, keepdims=True), pct, edges[:, None]])


def load(path: Path = NPZ):
    from aldesk.learning.base import standardize

    with np.load(path) as d:
        pool_x, test_x = d["train_images"], d["test_images"]
        pool_y, test_y = d["train_labels"].reshape(-1), d["test_labels"].reshape(-1)
    X = standardize(stand_in_features(np.concatenate([pool_x, test_x])))
    y = np.concatenate([pool_y, test_y]).astype(np.int64)
    test_idx = np.arange(len(pool_x), len(X))
    return X, y, test_idx


def _run(args):
    from aldesk.learning.simulation import simulate

    name, seeds, initial, batch, budget = args
    X, y, test_idx = load()
    return simulate(X, y, test_idx=test_idx, strategies=[name], seeds=seeds, initial=initial, batch=batch,
                    budget=budget, n_classes=2)


def main(argv=None) -> int:
    from aldesk.learning.simulation import format_table, plot_curves, summarise

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed+seeds-1")
    p.add_argument("--strategies", default=",".join(ALL))
    p.add_argument("--initial", type=int, default=20)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--budget", type=int, default=300)
    p.add_argument("--jobs", type=int, default=2, help="processes, one strategy each (strategies are independent)")
    p.add_argument("--out", default=None, help="folder for curves.png and summary.txt")
    p.add_argument("--json", default=None, help="write the results here")
    a = p.parse_args(argv)
    names = [s.strip() for s in a.strategies.split(",") if s.strip()]
    if "random" not in names:
        names.insert(0, "random")
    seeds = list(range(a.first_seed, a.first_seed + a.seeds))
    started = time.perf_counter()
    jobs = [(n, seeds, a.initial, a.batch, a.budget) for n in names]
    with ProcessPoolExecutor(max_workers=a.jobs) as ex:
        parts = list(ex.map(_run, jobs))
    elapsed = time.perf_counter() - started
    results = {"strategies": {}}
    for part in parts:  # same seeds, same initial sets, same model per seed: runs merge exactly
        for name, entry in part["strategies"].items():
            results["strategies"][name] = {"runs": entry["runs"], "seconds": entry["seconds"]}
    summarise(results)
    results["setup"] = {**parts[0]["setup"], "features": "stand-in: 14x14 block means + 8 intensity stats",
                        "wall_seconds": round(elapsed, 1), "jobs": a.jobs}
    table = format_table(results)
    print(table)
    h = results["strategies"].get("hybrid")
    if h:
        vs = h.get("vs_random", {})
        ok = (h["labels_to_match_random"] is not None and h["labels_to_match_random"] <= 150
              and vs.get("p_wilcoxon") is not None and vs["p_wilcoxon"] < 0.05 and vs["aulc_diff"] > 0)
        print(f"\nclaim (hybrid matches random's final accuracy with <= 150 labels, AULC better at p < 0.05): "
              f"{'MET' if ok else 'NOT MET'}  [labels {h['labels_to_match_random']}, p {vs.get('p_wilcoxon')}]")
    print(f"wall time {elapsed:.0f} s with {a.jobs} processes; per strategy (s): "
          + ", ".join(f"{n} {e['seconds']:.0f}" for n, e in results["strategies"].items()))
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        plot_curves(results, out / "curves.png")
        (out / "summary.txt").write_text(table + "\n")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
