"""Feature extractors on real chest X-rays: does ``learned`` beat ``handcrafted``? (not collected by pytest)

(``handcrafted`` was named ``default`` when this was first run; ``default`` now builds ``imagenet``.)

PneumoniaMNIST (28 x 28 grey; train 4708 = unlabelled pool, test 624; 0 normal / 1 pneumonia).
Each extractor is fitted (if it needs to be) on the whole pool without labels; features are
standardised with the pool's mean and std, as the app does per project. Then, for 10 seeds:
  random  - a standardised LogisticRegression(class_weight="balanced") on n random labelled pool
            images (redrawn until both classes are present), n = 20, 50, 100, 150, 300;
  active  - the same model grown from 10 random labels by least-confidence sampling, 10 per round,
            read at the same n (a small active-learning campaign).
Reports test accuracy and balanced accuracy (means over seeds) and the paired difference
learned - handcrafted with its standard error. Also times transform at 28 x 28 and 128 x 128 previews
(one process, one BLAS thread, as in the app's workers) and the learned fit on the pool.

    python tests/benchmarks/bench_features.py --json bench_features.json
    python tests/benchmarks/bench_features.py --seeds 3 --no-active      # quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from aldesk.features.preview import resize
from aldesk.features.registry import get_extractor

DATA = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pneumoniamnist"
        / "pneumoniamnist.npz")
SIZES = (20, 50, 100, 150, 300)


def _fit_lr(X, y):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(class_weight="balanced", max_iter=2000).fit(X, y)


def _scores(model, X, y) -> tuple[float, float]:
    from sklearn.metrics import balanced_accuracy_score

    pred = model.predict(X)
    return float((pred == y).mean()), float(balanced_accuracy_score(y, pred))


def random_subsets(Xp, yp, Xt, yt, seeds: int) -> np.ndarray:
    """(len(SIZES), seeds, 2) accuracy and balanced accuracy."""
    out = np.zeros((len(SIZES), seeds, 2))
    for s in range(seeds):
        rng = np.random.default_rng(s)
        for i, n in enumerate(SIZES):
            while True:
                idx = rng.choice(len(yp), n, replace=False)
                if len(np.unique(yp[idx])) == 2:
                    break
            out[i, s] = _scores(_fit_lr(Xp[idx], yp[idx]), Xt, yt)
    return out


def active_campaign(Xp, yp, Xt, yt, seeds: int, start: int = 10, batch: int = 10) -> np.ndarray:
    """(len(SIZES), seeds, 2): least-confidence sampling from ``start`` random labels."""
    out = np.zeros((len(SIZES), seeds, 2))
    for s in range(seeds):
        rng = np.random.default_rng(s)
        while True:
            labelled = list(rng.choice(len(yp), start, replace=False))
            if len(np.unique(yp[labelled])) == 2:
                break
        while True:
            model = _fit_lr(Xp[labelled], yp[labelled])
            if len(labelled) in SIZES:
                out[SIZES.index(len(labelled)), s] = _scores(model, Xt, yt)
            if len(labelled) >= SIZES[-1]:
                break
            mask = np.ones(len(yp), bool)
            mask[labelled] = False
            cand = np.flatnonzero(mask)
            confidence = model.predict_proba(Xp[cand]).max(axis=1)
            labelled += list(cand[np.argsort(confidence, kind="stable")[:batch]])
    return out


def time_transform(ext, images, repeats: int = 3) -> float:
    """Median ms per image over ``repeats`` passes."""
    ext.transform(images[:4])
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        ext.transform(images)
        times.append((time.perf_counter() - t) / len(images) * 1e3)
    return float(np.median(times))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--extractors", nargs="+", default=["handcrafted", "learned"])
    ap.add_argument("--no-active", action="store_true", help="skip the active-learning campaign")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--quick", action="store_true", help="2 seeds, no active-learning campaign")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.no_active = min(args.seeds, 2), True

    with np.load(args.data) as d:
        pool, yp = d["train_images"], d["train_labels"].ravel().astype(np.int64)
        test, yt = d["test_images"], d["test_labels"].ravel().astype(np.int64)
    report: dict = {"data": str(args.data), "pool": len(pool), "test": len(test), "seeds": args.seeds,
                    "sizes": list(SIZES), "machine": platform.platform(), "extractors": {}}
    rng = np.random.default_rng(0)
    small = [pool[i] for i in rng.choice(len(pool), 500, replace=False)]
    # 128 x 128 previews: real content, upsampled (the anti-aliased resampler, as the importer would)
    big = [np.clip(resize(im, 128), 0, 255).astype(np.uint8) for im in small]
    big_pool = [np.clip(resize(im, 128), 0, 255).astype(np.uint8) for im in pool]

    results = {}
    with threadpool_limits(1, "blas"):
        for name in args.extractors:
            ext = get_extractor(name)
            info: dict = {"version": ext.version}
            if ext.needs_fit:
                t = time.perf_counter()
                ext.fit(list(pool))
                info["fit_s_28"] = time.perf_counter() - t
                t = time.perf_counter()
                get_extractor(name).fit(big_pool)
                info["fit_s_128"] = time.perf_counter() - t
            info["ms_per_image_28"] = time_transform(ext, small)
            info["ms_per_image_128"] = time_transform(ext, big)
            Xp = ext.transform(list(pool))
            Xt = ext.transform(list(test))
            info["dims"] = int(Xp.shape[1])
            mu, sd = Xp.mean(axis=0), Xp.std(axis=0)
            sd[sd < 1e-8] = 1.0
            Xp = ((Xp - mu) / sd).astype(np.float32)
            Xt = ((Xt - mu) / sd).astype(np.float32)
            results[name] = {"random": random_subsets(Xp, yp, Xt, yt, args.seeds)}
            if not args.no_active:
                results[name]["active"] = active_campaign(Xp, yp, Xt, yt, args.seeds)
            report["extractors"][name] = info
            fit = (f", fit {info['fit_s_28']:.1f} s on {len(pool)} (28x28) / "
                   f"{info['fit_s_128']:.1f} s (128x128)") if "fit_s_28" in info else ""
            print(f"{name:8s} dims {info['dims']:4d}  {info['ms_per_image_28']:.2f} ms/image at 28x28, "
                  f"{info['ms_per_image_128']:.2f} ms/image at 128x128{fit}", flush=True)

    for mode in ("random", "active"):
        if mode == "active" and args.no_active:
            continue
        print(f"\n{mode}: test accuracy / balanced accuracy, mean of {args.seeds} seeds")
        print(f"{'n labels':>8s} " + " ".join(f"{name:>15s}" for name in results)
              + ("   learned-handcrafted (acc, bal) +- s.e." if {"handcrafted", "learned"} <= set(results) else ""))
        report[mode] = {}
        for i, n in enumerate(SIZES):
            row = f"{n:8d} "
            entry = {}
            for name, res in results.items():
                acc, bal = res[mode][i].mean(axis=0)
                entry[name] = {"accuracy": acc, "balanced_accuracy": bal,
                               "per_seed": res[mode][i].tolist()}
                row += f"   {acc:.3f} / {bal:.3f}"
            if {"handcrafted", "learned"} <= set(results):
                diff = results["learned"][mode][i] - results["handcrafted"][mode][i]
                m = diff.mean(axis=0)
                se = diff.std(axis=0, ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.zeros(2)
                entry["learned_minus_handcrafted"] = {"mean": m.tolist(), "stderr": se.tolist()}
                row += f"   {m[0]:+.3f}+-{se[0]:.3f}, {m[1]:+.3f}+-{se[1]:.3f}"
            report[mode][str(n)] = entry
            print(row)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
        print(f"\nwrote {args.json}")
    return report


if __name__ == "__main__":
    main()
