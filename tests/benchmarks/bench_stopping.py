"""Does "you can stop now" (aldesk progress) cost accuracy, and how many labels does it save?

A simulated campaign per data set and seed, as the app runs it: 20 stratified initial labels, then
batches of 10 (the app retrains every 10 labels) of which a share (--audit, default 0.1) are audit
scans drawn in a fixed random key order and the rest are picked by the active strategy (the project
default unless --strategy), up to --budget labels. After every batch the model is refitted and scores
the held-out test split; its predictions on a fixed stop set (--stop-set random pool scans) feed the
stability κ; the audit evidence (cross-fitted audit accuracy, learning curve projection at +--more
labels) is computed exactly as ``aldesk progress`` does (aldesk.learning.stopping.audit_evidence).

The stop point of a seed is the first step at which ``recommend(...)`` says stop. Reported per data
set: labels at the stop (mean, range), labels saved against the budget, test accuracy at the stop
and at the budget, the loss (budget − stop, in accuracy points: the claim is ≤ 1 point on average and
per data set), and how often a seed never stopped (then it costs nothing and saves nothing).

    python tests/benchmarks/bench_stopping.py --quick --json /tmp/stopping.json --md tests/benchmarks/stopping-RESULTS.md

Data: PneumoniaMNIST (/work/shared/data/pneumoniamnist, the stand-in pixel features of
sim_pneumonia_quick.py), scikit-learn's bundled digits (10 classes, 8×8), and an imbalanced chest set
(all pneumonia, normal subsampled to 1:8, the test split likewise).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


# ====================================================================================== data sets
def _pneumonia(imbalance: int | None = None, seed: int = 0):
    from sim_pneumonia_quick import NPZ, stand_in_features

    from aldesk.learning.base import standardize

    with np.load(NPZ) as d:
        px, tx = d["train_images"], d["test_images"]
        py, ty = d["train_labels"].reshape(-1).astype(np.int64), d["test_labels"].reshape(-1).astype(np.int64)
    if imbalance:
        rng = np.random.default_rng(seed)

        def thin(y):
            minority = np.flatnonzero(y == 0)
            keep = rng.choice(minority, max(2, (y == 1).sum() // imbalance), replace=False)
            return np.sort(np.concatenate([keep, np.flatnonzero(y == 1)]))

        pk, tk = thin(py), thin(ty)
        px, py, tx, ty = px[pk], py[pk], tx[tk], ty[tk]
    X = standardize(stand_in_features(np.concatenate([px, tx])))
    return X, np.concatenate([py, ty]), np.arange(len(px), len(X)), 2


def _digits(seed: int = 0):
    from sklearn.datasets import load_digits

    from aldesk.learning.base import standardize

    d = load_digits()
    rng = np.random.default_rng(seed)
    test = np.sort(rng.choice(len(d.target), len(d.target) // 4, replace=False))
    return standardize(d.data.astype(np.float32)), d.target.astype(np.int64), test, 10


DATASETS = {
    "pneumoniamnist": (lambda: _pneumonia(), 600),
    "digits": (lambda: _digits(), 500),
    "pneumonia-1:8": (lambda: _pneumonia(imbalance=8), 600),
}


# ====================================================================================== one campaign
def campaign(args) -> dict:
    """One seed of one data set: per step the label count, test accuracy, stability and audit figures."""
    from aldesk.errors import LearningError
    from aldesk.learning.base import UNLABELLED
    from aldesk.learning.models import evaluate, fit_model
    from aldesk.learning.objectives import DEFAULT_OBJECTIVE, class_weighting
    from aldesk.learning.simulation import stratified_initial
    from aldesk.learning.stopping import audit_evidence, audit_members, audit_picks, stability
    from aldesk.learning.strategies import get_strategy

    name, seed, o = args
    X, y, test, n_classes = DATASETS[name][0]()
    budget = o["budget"] or DATASETS[name][1]
    n = len(X)
    rng = np.random.default_rng(seed)
    keys = rng.random(n)
    is_pool = np.ones(n, dtype=bool)
    is_pool[test] = False
    pool = np.flatnonzero(is_pool)
    stop_set = np.sort(rng.choice(pool, min(o["stop_set"], len(pool)), replace=False))
    order = list(stratified_initial(y, pool, o["initial"], rng))
    y_obs = np.full(n, UNLABELLED, dtype=np.int64)
    y_obs[order] = y[order]
    drawn = np.zeros(n, dtype=bool)
    strategy = get_strategy(o["strategy"])
    weighting = class_weighting(DEFAULT_OBJECTIVE)  # as the app fits for the default objective (accuracy)
    audit_due = 0.0
    history, steps = [], []
    model = None
    target = o["initial"]
    while True:
        if len(order) < target:
            need = target - len(order)
            audit_due += need * o["audit"]
            k = int(audit_due)
            audit_due -= k
            eligible = is_pool & (y_obs == UNLABELLED)
            picks = audit_picks(keys, eligible, k)
            drawn[picks] = True
            y_obs[picks] = y[picks]
            cand = np.flatnonzero(is_pool & (y_obs == UNLABELLED))
            res = strategy.query(X, y_obs, candidates=cand, batch_size=need - len(picks),
                                 random_state=seed * 1_000_003 + target, model=model, n_classes=n_classes)
            y_obs[res.indices] = y[res.indices]
            new = np.concatenate([res.indices, picks])
            order.extend(new[rng.permutation(len(new))].tolist())
        idx = np.asarray(order, dtype=np.int64)
        try:
            model = fit_model(X[idx], y[idx], n_classes=n_classes, random_state=seed, class_weight=weighting)
        except LearningError:
            model = None
        row = {"labels": len(order), "accuracy": None, "kappa": None, "agreement": None, "audit_n": 0,
               "audit_accuracy": None, "audit_ci": None, "gain": None, "gain_ci": None}
        if model is not None:
            row["accuracy"] = evaluate(model.predict_proba(X[test]), y[test])["accuracy"]
            history.append((len(order), stop_set, model.predict_proba(X[stop_set]).argmax(axis=1)))
            stab = stability(history, n_classes)
            row["kappa"], row["agreement"] = stab.mean_kappa, stab.agreement
            members = audit_members(keys, drawn, y_obs != UNLABELLED)
            # the audit evidence only matters to the rules once the predictions are stable: computed then
            # every --every steps (a stop can come that much later than it could), and every 10th step for
            # the record; the costly part, skipped elsewhere
            wanted = (stab.stable and len(steps) % o["every"] == 0) or len(steps) % 10 == 0 or target >= budget
            if len(members) >= o["min_audit"] and wanted:
                C = getattr(model, "C_", None)

                def fit(rows):
                    return fit_model(X[rows], y_obs[rows], n_classes=n_classes, calibrate=False, C=C,
                                     random_state=seed, class_weight=weighting)

                ev = audit_evidence(X, y_obs, idx, members, n_classes=n_classes, fit=fit, more=o["more"],
                                    n_boot=o["boot"], random_state=seed)
                row.update(audit_n=ev["audit"]["n"], audit_accuracy=ev["audit"]["accuracy"],
                           audit_ci=ev["audit"]["ci"])
                if ev["projected"]:
                    row.update(gain=ev["projected"]["gain"], gain_ci=ev["projected"]["gain_ci"])
        steps.append(row)
        if target >= budget:
            break
        target = min(budget, target + o["batch"])
    print(f"{name} seed {seed}: {len(order)} labels, final accuracy {steps[-1]['accuracy']:.3f}", file=sys.stderr,
          flush=True)
    return {"dataset": name, "seed": seed, "steps": steps}


# ====================================================================================== stop rules
RULES = ("κ≥0.99 (BV2009)", "stability", "stability+projection", "recommend")

def stop_step(steps: list[dict], rule: str, o: dict) -> int:
    """Index of the first step at which ``rule`` says stop (the last step if never).

    κ≥0.99 (BV2009): Bloodgood & Vijay-Shanker's threshold; stability: the same with ours (STABILITY_KAPPA);
    stability+projection: also a projection (from >= 20 audit
    scans) below the worthwhile gain; recommend: exactly ``aldesk.learning.stopping.recommend`` (what
    ``aldesk progress`` and the dashboard say; no readers' ceiling in simulation)."""
    from aldesk.learning.stopping import STABILITY_KAPPA, Stability, recommend

    for i, s in enumerate(steps):
        stable = s["kappa"] is not None and s["kappa"] >= STABILITY_KAPPA
        small_gain = s["gain"] is not None and s["gain"] < o["worthwhile"]
        if rule == "stability" and stable:
            return i
        if rule == "κ≥0.99 (BV2009)" and s["kappa"] is not None and s["kappa"] >= 0.99:
            return i
        if rule == "stability+projection" and stable and small_gain:
            return i
        if rule == "recommend" and stable:
            stab = Stability(mean_kappa=s["kappa"], agreement=s["agreement"], stable=True)
            audit = {"n": s["audit_n"], "accuracy": s["audit_accuracy"], "ci": s["audit_ci"]}
            projected = None if s["gain"] is None else {"more": o["more"], "gain": s["gain"], "gain_ci": s["gain_ci"]}
            if recommend(labels=s["labels"], stab=stab, audit=audit, projected=projected,
                         worthwhile=o["worthwhile"], min_audit=o["min_audit"]).stop:
                return i
    return len(steps) - 1


def summarise(runs: list[dict], o: dict) -> dict:
    out = {}
    for name in dict.fromkeys(r["dataset"] for r in runs):
        mine = [r for r in runs if r["dataset"] == name]
        out[name] = {}
        for rule in RULES:
            at, saved, loss, never = [], [], [], 0
            for r in mine:
                steps = r["steps"]
                i = stop_step(steps, rule, o)
                never += i == len(steps) - 1
                at.append(steps[i]["labels"])
                saved.append(steps[-1]["labels"] - steps[i]["labels"])
                loss.append(100 * (steps[-1]["accuracy"] - steps[i]["accuracy"]))
            out[name][rule] = {"stop_labels_mean": float(np.mean(at)), "stop_labels_min": int(min(at)),
                               "stop_labels_max": int(max(at)), "budget": mine[0]["steps"][-1]["labels"],
                               "saved_mean": float(np.mean(saved)), "saved_share": float(np.mean(saved) / mine[0]["steps"][-1]["labels"]),
                               "loss_points_mean": float(np.mean(loss)), "loss_points_max": float(np.max(loss)),
                               "never_stopped": int(never), "seeds": len(mine),
                               "acc_at_budget": float(np.mean([r["steps"][-1]["accuracy"] for r in mine]))}
    return out


def markdown(summary: dict, o: dict, seconds: float) -> str:
    lines = [f"| data set | rule | stop at (mean, range) | budget | labels saved | acc. at budget | "
             f"loss at stop (mean / worst seed, points) | seeds never stopped |",
             "|---|---|---|---|---|---|---|---|"]
    for name, rules in summary.items():
        for rule, s in rules.items():
            lines.append(f"| {name} | {rule} | {s['stop_labels_mean']:.0f} ({s['stop_labels_min']}–{s['stop_labels_max']}) "
                         f"| {s['budget']} | {s['saved_mean']:.0f} ({100 * s['saved_share']:.0f} %) "
                         f"| {s['acc_at_budget']:.3f} | {s['loss_points_mean']:+.2f} / {s['loss_points_max']:+.2f} "
                         f"| {s['never_stopped']}/{s['seeds']} |")
    head = (f"Settings: strategy {o['strategy']}, {o['seeds']} seeds, initial {o['initial']}, batch {o['batch']}, "
            f"audit share {o['audit']}, stop set {o['stop_set']}, projection +{o['more']} labels, "
            f"worthwhile gain {o['worthwhile']}, audit evidence every {o.get('every', 1)} step(s) while stable, "
            f"{o['boot']} bootstrap resamples; {seconds:.0f} s.")
    return head + "\n\n" + "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from aldesk.learning.strategies import DEFAULT_STRATEGY
    from aldesk.learning.stopping import MIN_AUDIT, WORTHWHILE_GAIN

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + seeds - 1")
    p.add_argument("--quick", action="store_true",
                   help="3 seeds, 20 bootstrap resamples, audit evidence every 3rd step while stable")
    p.add_argument("--strategy", default=DEFAULT_STRATEGY)
    p.add_argument("--initial", type=int, default=20)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--budget", type=int, default=0, help="labels (default: per data set, see DATASETS)")
    p.add_argument("--audit", type=float, default=0.1)
    p.add_argument("--stop-set", type=int, default=1000)
    p.add_argument("--more", type=int, default=200)
    p.add_argument("--boot", type=int, default=100, help="bootstrap resamples for the intervals (the rules use "
                                                          "only point estimates)")
    p.add_argument("--every", type=int, default=1, help="while stable, audit evidence every N steps (default 1)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--runs", metavar="FILE.jsonl", help="append each finished campaign here as it ends")
    p.add_argument("--runs-from", metavar="FILE.jsonl", help="only summarise the campaigns in these files (comma-separated)")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--md", metavar="FILE")
    a = p.parse_args(argv)
    seeds = 3 if a.quick else a.seeds
    if a.quick:
        a.boot, a.every = 20, 3
    o = {"strategy": a.strategy, "initial": a.initial, "batch": a.batch, "budget": a.budget, "audit": a.audit,
         "stop_set": a.stop_set, "more": a.more, "boot": a.boot, "every": a.every, "min_audit": MIN_AUDIT, "worthwhile": WORTHWHILE_GAIN,
         "seeds": seeds}
    t0 = time.perf_counter()
    if a.runs_from:  # summarise campaigns saved by earlier (possibly interrupted) runs
        runs = [json.loads(line) for f in a.runs_from.split(",") for line in Path(f).read_text().splitlines()
                if line.strip()]
        o["seeds"] = len({r["seed"] for r in runs})
    else:
        jobs = [(name, seed, o) for seed in range(a.first_seed, a.first_seed + seeds) for name in a.datasets.split(",")]
        runs = []
        sink = open(a.runs, "w") if a.runs else None
        with ProcessPoolExecutor(a.jobs) as ex:
            for run in ex.map(campaign, jobs):
                runs.append(run)
                if sink:
                    sink.write(json.dumps(run) + "\n")
                    sink.flush()
        if sink:
            sink.close()
    seconds = time.perf_counter() - t0
    summary = summarise(runs, o)
    table = markdown(summary, o, seconds)
    print(table)
    if a.json:
        Path(a.json).write_text(json.dumps({"settings": o, "summary": summary, "runs": runs}, indent=1))
    if a.md:
        Path(a.md).write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
