"""Ranking speed and memory of aldesk.learning on synthetic pools (a script, not collected by pytest).

Synthetic features: 5 classes, 128 float32 dimensions (Gaussian classes that overlap, so uncertainty
means something), 1,000 labelled scans (200 per class), the rest unlabelled. Measures, as medians of
repeated runs in one process:

  100,000 scans  retrain (C chosen out of fold + calibration) + predict + hybrid batch of 100  (target < 1 s)
                 entropy and margin ranking of the pool with a trained model                  (target < 0.1 s)
                 BADGE and coreset, batch 100, with a trained model                           (target < 0.5 s)
  1,000,000      hybrid batch of 100 (with a trained model, and with the retrain)             (target < 5 s)
                 peak memory of the process (ru_maxrss, includes the 512 MB pool)             (target < 2 GB)

Each figure is printed with the ratio to a plain numpy reference doing the same job the obvious way in
the same process (one sklearn fit, full-pool k-center, the explicit BADGE embedding, ...).

    python tests/benchmarks/bench_rank.py --json bench_rank.json
    python tests/benchmarks/bench_rank.py --skip-million        # the 100k part only
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_limits

from aldesk.learning.base import UNLABELLED
from aldesk.learning.models import fit_model
from aldesk.learning.strategies import get_strategy

D, C, N_LABELLED, B = 128, 5, 1000, 100


def synthetic_pool(n: int, seed: int = 0):
    """(X (n, 128) float32, y (n,) with 1,000 labels and UNLABELLED elsewhere, y_true)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.35, size=(C, D)).astype(np.float32)
    y_true = rng.integers(0, C, size=n)
    X = rng.standard_normal((n, D), dtype=np.float32)
    for k in range(C):  # in place, class by class: no (n, d) float64 temporaries
        X[y_true == k] += centres[k]
    y = np.full(n, UNLABELLED, dtype=np.int64)
    for k in range(C):
        idx = rng.choice(np.flatnonzero(y_true == k), N_LABELLED // C, replace=False)
        y[idx] = k
    return X, y, y_true


def timeit(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time. One BLAS thread for everything timed, aldesk and references alike: on two cores
    numpy's and scipy's OpenBLAS pools otherwise fight and the references would look 3-10x worse."""
    with threadpool_limits(1, "blas"):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return float(np.median(times))


# ---------------------------------------------------------------------------------------------------
# Plain numpy references: the same job done the obvious way.

def ref_fit(X, y):
    from sklearn.linear_model import LogisticRegression

    lab = np.flatnonzero(y != UNLABELLED)
    with threadpool_limits(1, "blas"):
        clf = LogisticRegression(C=1.0, max_iter=1000).fit(X[lab], y[lab])
    return clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)


def ref_proba(X, W, b):
    z = X @ W.T + b
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def ref_entropy_top(X, y, W, b, k):
    cand = np.flatnonzero(y == UNLABELLED)
    p = ref_proba(X[cand], W, b)
    h = -(p * np.log(np.clip(p, 1e-12, 1))).sum(axis=1)
    return cand[np.argsort(-h)[:k]]


def ref_margin_top(X, y, W, b, k):
    cand = np.flatnonzero(y == UNLABELLED)
    p = np.sort(ref_proba(X[cand], W, b), axis=1)
    return cand[np.argsort(p[:, -1] - p[:, -2])[:k]]


def ref_kcenter(X, centres, cand, b):
    """Full-pool greedy k-center with explicit differences."""
    Xc = X[cand]
    mind = np.full(len(cand), np.inf, dtype=np.float32)
    for c in centres:
        mind = np.minimum(mind, ((Xc - X[c]) ** 2).sum(axis=1))
    picks = []
    for _ in range(b):
        i = int(np.argmax(mind))
        picks.append(i)
        mind = np.minimum(mind, ((Xc - Xc[i]) ** 2).sum(axis=1))
    return cand[picks]


def ref_hybrid(X, y, W, b, batch):
    top = ref_entropy_top(X, y, W, b, 10 * batch)
    return ref_kcenter(X, np.flatnonzero(y != UNLABELLED), top, batch)


def ref_badge(X, y, W, b, batch, rng):
    """BADGE with the (m, d·C) gradient embedding built explicitly."""
    cand = np.flatnonzero(y == UNLABELLED)
    p = ref_proba(X[cand], W, b)
    a = p.copy()
    a[np.arange(len(a)), a.argmax(1)] -= 1
    G = (a[:, :, None] * X[cand][:, None, :]).reshape(len(cand), -1).astype(np.float32)
    g_sq = (G * G).sum(1)
    picks = [int(np.argmax(g_sq))]
    d2 = np.full(len(cand), np.inf, dtype=np.float32)
    for _ in range(batch - 1):
        d2 = np.minimum(d2, ((G - G[picks[-1]]) ** 2).sum(1))
        picks.append(int(rng.choice(len(cand), p=d2 / d2.sum())))
    return cand[picks]


# ---------------------------------------------------------------------------------------------------

def row(results, key, seconds, ref_seconds=None, target=None, note=""):
    ratio = seconds / ref_seconds if ref_seconds else None
    results[key] = {"seconds": round(seconds, 4), "reference_seconds": None if ref_seconds is None else round(ref_seconds, 4),
                    "ratio_to_reference": None if ratio is None else round(ratio, 3), "target_seconds": target,
                    "met": None if target is None else seconds < target, "note": note}
    ref = f"  numpy reference {ref_seconds:7.3f} s  ratio {ratio:5.2f}" if ref_seconds else ""
    tgt = f"  target < {target:g} s {'ok' if seconds < target else 'MISSED'}" if target else ""
    print(f"{key:<44} {seconds:7.3f} s{ref}{tgt}  {note}", flush=True)


def bench_100k(results: dict, repeat: int) -> None:
    X, y, _ = synthetic_pool(100_000)
    print(f"pool 100,000 x {D} float32, {C} classes, {N_LABELLED} labelled", flush=True)
    lab = np.flatnonzero(y != UNLABELLED)
    model = fit_model(X[lab], y[lab], n_classes=C, random_state=0)
    W, b = ref_fit(X, y)
    hybrid = get_strategy("hybrid")

    def retrain_rank():
        m = fit_model(X[lab], y[lab], n_classes=C, random_state=0)
        hybrid.query(X, y, batch_size=B, random_state=0, model=m, n_classes=C)

    def ref_retrain_rank():
        Wr, br = ref_fit(X, y)
        ref_hybrid(X, y, Wr, br, B)

    row(results, "100k retrain + predict + hybrid b=100", timeit(retrain_rank, repeat), timeit(ref_retrain_rank, repeat),
        1.0, f"C chosen from 3 by 5-fold CV + temperature ({model.calibration_})")
    row(results, "100k retrain only", timeit(lambda: fit_model(X[lab], y[lab], n_classes=C, random_state=0), repeat),
        timeit(lambda: ref_fit(X, y), repeat), None, "16 fits (3 C x 5 folds + final) vs 1")
    row(results, "100k hybrid b=100 (trained model)",
        timeit(lambda: hybrid.query(X, y, batch_size=B, random_state=0, model=model, n_classes=C), repeat),
        timeit(lambda: ref_hybrid(X, y, W, b, B), repeat), None, "reference: top-1000 entropy + k-center")
    for name, ref in (("entropy", ref_entropy_top), ("margin", ref_margin_top)):
        s = get_strategy(name)
        row(results, f"100k {name} ranking b=100 (trained model)",
            timeit(lambda: s.query(X, y, batch_size=B, random_state=0, model=model, n_classes=C), repeat),
            timeit(lambda: ref(X, y, W, b, B), repeat), 0.1)
    badge = get_strategy("badge")
    row(results, "100k badge b=100 (trained model)",
        timeit(lambda: badge.query(X, y, batch_size=B, random_state=0, model=model, n_classes=C), repeat),
        timeit(lambda: ref_badge(X, y, W, b, B, np.random.default_rng(0)), max(1, repeat // 2)), 0.5,
        "reference builds the 100k x 640 embedding")
    coreset = get_strategy("coreset")
    cand = np.flatnonzero(y == UNLABELLED)
    row(results, "100k coreset b=100",
        timeit(lambda: coreset.query(X, y, batch_size=B, random_state=0, n_classes=C), repeat),
        timeit(lambda: ref_kcenter(X, lab, cand, B), max(1, repeat // 2)), 0.5, "whole pool, 1,000 labelled centres")
    for name in ("qbc_vote_entropy", "bald", "eer", "emc", "cold_start"):
        s = get_strategy(name)
        row(results, f"100k {name} b=100 (trained model)",
            timeit(lambda: s.query(X, y, batch_size=B, random_state=0, model=model, n_classes=C), max(1, repeat // 2)),
            note="for information")


def bench_1m(results: dict, repeat: int) -> None:
    X, y, _ = synthetic_pool(1_000_000)
    print(f"pool 1,000,000 x {D} float32 ({X.nbytes / 2**20:.0f} MiB), {N_LABELLED} labelled", flush=True)
    lab = np.flatnonzero(y != UNLABELLED)
    model = fit_model(X[lab], y[lab], n_classes=C, random_state=0)
    W, b = ref_fit(X, y)
    hybrid = get_strategy("hybrid")
    row(results, "1M hybrid b=100 (trained model)",
        timeit(lambda: hybrid.query(X, y, batch_size=B, random_state=0, model=model, n_classes=C), repeat),
        timeit(lambda: ref_hybrid(X, y, W, b, B), max(1, repeat // 2)), 5.0)

    def retrain_rank():
        m = fit_model(X[lab], y[lab], n_classes=C, random_state=0)
        hybrid.query(X, y, batch_size=B, random_state=0, model=m, n_classes=C)

    row(results, "1M retrain + predict + hybrid b=100", timeit(retrain_rank, repeat), None, 5.0)
    s = get_strategy("entropy")
    row(results, "1M entropy ranking b=100 (trained model)",
        timeit(lambda: s.query(X, y, batch_size=B, random_state=0, model=model, n_classes=C), repeat),
        timeit(lambda: ref_entropy_top(X, y, W, b, B), repeat))
    memory = measure_memory_in_fresh_process()
    results["1M hybrid query extra memory (tracemalloc peak)"] = {"bytes": memory["tracemalloc_peak"]}
    rss = memory["ru_maxrss"]
    results["1M process peak memory (ru_maxrss)"] = {"bytes": rss, "target_bytes": 2 * 2**30, "met": rss < 2 * 2**30,
                                                     "note": "fresh process: pool + retrain + hybrid query"}
    print(f"{'1M hybrid query extra memory (tracemalloc)':<44} {memory['tracemalloc_peak'] / 2**20:7.0f} MiB", flush=True)
    print(f"{'1M process peak memory (ru_maxrss)':<44} {rss / 2**20:7.0f} MiB  target < 2048 MiB "
          f"{'ok' if rss < 2 * 2**30 else 'MISSED'}  (fresh process: pool, retrain, hybrid query)", flush=True)


def memory_only() -> dict:
    """The 1M scenario alone: build the pool, retrain, rank; report peak memory."""
    X, y, _ = synthetic_pool(1_000_000)
    lab = np.flatnonzero(y != UNLABELLED)
    model = fit_model(X[lab], y[lab], n_classes=C, random_state=0)
    tracemalloc.start()
    get_strategy("hybrid").query(X, y, batch_size=B, random_state=0, model=model, n_classes=C)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"tracemalloc_peak": int(peak), "ru_maxrss": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)}


def measure_memory_in_fresh_process() -> dict:
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--memory-only"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--skip-million", action="store_true")
    p.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="the 100k part only, 2 repeats")
    a = p.parse_args(argv)
    if a.quick:
        a.skip_million, a.repeat = True, min(a.repeat, 2)
    if a.memory_only:
        print(json.dumps(memory_only()))
        return 0
    results: dict = {"machine": {"python": platform.python_version(), "numpy": np.__version__,
                                 "processor": platform.processor() or platform.machine()}}
    bench_100k(results, a.repeat)
    if not a.skip_million:
        bench_1m(results, a.repeat)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    missed = [k for k, v in results.items() if isinstance(v, dict) and v.get("met") is False]
    print("all targets met" if not missed else f"missed: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
