"""Replay a labelling campaign with a known answer key, to measure how many labels a strategy saves.

Pure: arrays in, a JSON-ready dict out (plus a PNG and a text table on request). The use case in
aldesk.app.simulate gathers the features and the answers and writes the files.

Fairness: seeds are paired. For a given seed every strategy starts from the same stratified random
initial set, trains the same model the same way (same random_state) at every step, and is scored on the
same test scans, so strategy-vs-random differences can be tested seed by seed (Wilcoxon signed-rank).

What is compared is the project's objective (learning.objectives): AULC, "labels to match random" and the
paired tests use its curve; accuracy, balanced accuracy, AUC and ECE (and quadratic kappa and mean absolute
grade error for ordered classes) are recorded beside it at every step. The model weighs classes as the
objective says. ``"default"`` in the strategy list means the default strategy, run under its own name;
results record that name as ``results["default"]``.
"""

from __future__ import annotations

import math
import time
import warnings
from numbers import Integral

import numpy as np

from aldesk.errors import CancelledError, LearningError, NotEnoughLabelsError
from aldesk.learning.base import UNLABELLED, check_features
from aldesk.learning.models import MODEL_NAMES, fit_model
from aldesk.learning.objectives import DEFAULT_OBJECTIVE, check_objective, class_weighting, score_all
from aldesk.learning.strategies import DEFAULT_STRATEGY, get_strategy, strategy_params

METRICS = ("accuracy", "balanced_accuracy", "auc", "ece")
GRADED_METRICS = ("quadratic_kappa", "grade_mae")


def metric_names(objective: str = DEFAULT_OBJECTIVE, ordered: bool = False, n_classes: int = 2) -> tuple[str, ...]:
    """The curves recorded per step: the objective first, then the others."""
    names = list(METRICS) + (list(GRADED_METRICS) if ordered or objective == "quadratic_kappa" else [])
    if n_classes == 2:
        names.append("sensitivity_at_specificity")
    return tuple(dict.fromkeys([objective, *names]))


def resolve_default(strategies: list[str]) -> list[str]:
    """``default`` replaced by the default strategy's own name (it is never run twice)."""
    out = [DEFAULT_STRATEGY if s == "default" else s for s in strategies]
    return list(dict.fromkeys(out))


def _none_if_nan(v):
    v = float(v)
    return None if math.isnan(v) else v


def _as_float_array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def stratified_initial(y: np.ndarray, pool: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` pool indices drawn per class in proportion to the pool, at least one of every class present."""
    classes, counts = np.unique(y[pool], return_counts=True)
    size = min(size, len(pool))
    if size < len(classes):
        return np.sort(rng.choice(pool, size, replace=False))
    share = counts / counts.sum() * size
    take = np.maximum(1, np.floor(share).astype(int))
    while take.sum() > size:
        k = int(np.argmax(take - share + (take <= 1) * -1e9))
        take[k] -= 1
    while take.sum() < size:
        k = int(np.argmax((share - take) + (take >= counts) * -1e9))
        take[k] += 1
    picks = [rng.choice(pool[y[pool] == c], int(t), replace=False) for c, t in zip(classes, take)]
    return np.sort(np.concatenate(picks))


def _label_grid(initial: int, batch: int, budget: int) -> list[int]:
    grid = list(range(initial, budget + 1, batch))
    if grid[-1] != budget:
        grid.append(budget)
    return grid


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise LearningError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise LearningError(f"{name} == {value}, must be >= {minimum}")
    return int(value)


def simulate(X, y_true, *, test_idx, strategies: list[str], seeds: int | list[int] = 10, initial: int = 20,
             batch: int = 10, budget: int = 300, n_classes: int, groups=None, model: str = "logistic",
             objective: str = DEFAULT_OBJECTIVE, ordered: bool = False, params: dict | None = None,
             progress=None, should_stop=None) -> dict:
    """Replay labelling for every strategy and seed; score on ``test_idx`` after every batch.

    X : (n, d) float32 standardised features; y_true : (n,) the answer key; test_idx : indices kept out of
    the pool; groups : optional (n,) patient keys — pool scans of a patient who is in the test set are
    dropped so no patient is on both sides; objective : what AULC is computed on (learning.objectives);
    ordered : classes are grades (adds quadratic_kappa and grade_mae); params : {strategy name: keyword
    parameters}. Returns {"objective", "default", "strategies": {name: {"runs": [{"seed", "labels",
    <metric>: [...]}], "aulc", "labels_to_match_random", ...}}, "setup": {...}}. Raises CancelledError
    when ``should_stop()``.
    """
    progress = progress or (lambda done, total, message: None)
    should_stop = should_stop or (lambda: False)
    X = check_features(X)
    n = len(X)
    y_true = np.asarray(y_true)
    if y_true.shape != (n,):
        raise LearningError(f"X has {n} rows but y_true has shape {y_true.shape}; give one answer per scan")
    y_true = y_true.astype(np.int64)
    n_classes = _check_int("n_classes", n_classes, 2)
    if y_true.min() < 0 or y_true.max() >= n_classes:
        raise LearningError(f"y_true must hold classes 0..{n_classes - 1}; found {int(y_true.min())}..{int(y_true.max())}")
    test_idx = np.unique(np.asarray(test_idx, dtype=np.int64))
    if len(test_idx) == 0:
        raise LearningError("test_idx is empty; keep some scans out of the pool to score on")
    if test_idx.min() < 0 or test_idx.max() >= n:
        raise LearningError(f"test_idx contains an index out of range for X with {n} rows")
    if not strategies:
        raise LearningError("strategies is empty; name at least one, e.g. ['random', 'hybrid']")
    if len(set(strategies)) != len(strategies):
        raise LearningError(f"strategies lists a name twice: {strategies}")
    strategies = resolve_default(strategies)
    objective = check_objective(objective, n_classes)
    params = dict(params or {})
    for name in strategies:
        get_strategy(name, **params.get(name, {}))  # unknown names and parameters fail here, before any work
    if model not in MODEL_NAMES:
        raise LearningError(f"unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}")
    seed_list = list(range(_check_int("seeds", seeds, 1))) if isinstance(seeds, Integral) else list(seeds)
    if not seed_list:
        raise LearningError("seeds is empty; give a count (e.g. 10) or a list of seeds")
    seed_list = [_check_int("seed", s, 0) for s in seed_list]
    initial = _check_int("initial", initial, 1)
    batch = _check_int("batch", batch, 1)
    budget = _check_int("budget", budget, initial)

    is_test = np.zeros(n, dtype=bool)
    is_test[test_idx] = True
    dropped = 0
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != n:
            raise LearningError(f"groups has {len(groups)} entries but X has {n} rows")
        leaking = np.isin(groups, np.unique(groups[test_idx])) & ~is_test
        dropped = int(leaking.sum())
        pool = np.flatnonzero(~is_test & ~leaking)
    else:
        pool = np.flatnonzero(~is_test)
    if budget > len(pool):
        raise LearningError(f"budget == {budget}, but the pool has only {len(pool)} scans; lower the budget")

    grid = _label_grid(initial, batch, budget)
    total = len(strategies) * len(seed_list) * len(grid)
    done = 0
    X_test, y_test = X[test_idx], y_true[test_idx]
    metrics = metric_names(objective, ordered, n_classes)
    weighting = class_weighting(objective)
    results: dict = {"objective": objective, "default": DEFAULT_STRATEGY, "strategies": {}}
    first_fit: dict = {}  # the initial set (and so its model) is the same for every strategy of a seed

    for name in strategies:
        kwargs = {"estimator": model} if "estimator" in strategy_params(name) else {}
        strategy = get_strategy(name, **{**kwargs, **params.get(name, {})})
        runs = []
        started = time.perf_counter()
        for seed in seed_list:
            labelled = stratified_initial(y_true, pool, initial, np.random.default_rng(seed))
            y_obs = np.full(n, UNLABELLED, dtype=np.int64)
            y_obs[labelled] = y_true[labelled]
            in_pool = np.zeros(n, dtype=bool)
            in_pool[pool] = True
            curves = {m: [] for m in metrics}
            trained = None  # the model fitted at the previous step; it ranks the next batch
            for step, target in enumerate(grid):
                if should_stop():
                    raise CancelledError(f"simulation stopped after {done} of {total} steps; nothing was saved")
                if step and len(labelled) < target:
                    candidates = np.flatnonzero(in_pool & (y_obs == UNLABELLED))
                    result = strategy.query(X, y_obs, candidates=candidates, batch_size=target - len(labelled),
                                            random_state=seed * 1_000_003 + step, model=trained, n_classes=n_classes)
                    new = result.indices
                    y_obs[new] = y_true[new]
                    labelled = np.concatenate([labelled, new])
                trained = first_fit.get(seed) if step == 0 else None
                if trained is None:
                    try:
                        trained = fit_model(X[labelled], y_true[labelled], n_classes=n_classes, name=model,
                                            random_state=seed, class_weight=weighting)
                    except NotEnoughLabelsError:
                        trained = None
                    if step == 0:
                        first_fit[seed] = trained
                scores = (score_all(trained.predict_proba(X_test), y_test, ordered=ordered or objective == "quadratic_kappa")
                          if trained is not None else {})
                for m in metrics:
                    curves[m].append(_none_if_nan(scores.get(m, float("nan"))))
                done += 1
                progress(done, total, f"{name}, seed {seed}: {len(labelled)} labels")
            runs.append({"seed": seed, "labels": [int(v) for v in grid], **curves})
        results["strategies"][name] = {"runs": runs, "seconds": round(time.perf_counter() - started, 2)}

    summarise(results)
    results["setup"] = {"seeds": seed_list, "initial": initial, "batch": batch, "budget": budget, "model": model,
                        "objective": objective, "ordered": bool(ordered), "class_weight": weighting,
                        "pool": int(len(pool)), "test": int(len(test_idx)), "n_classes": n_classes,
                        "pool_dropped_for_patient_overlap": dropped}
    return results


def aulc(labels, accuracy) -> float:
    """Area under the accuracy curve divided by its label span: a mean accuracy over the campaign."""
    x = np.asarray(labels, dtype=np.float64)
    a = _as_float_array(accuracy)
    if len(x) < 2:
        return float(a[0]) if len(a) else float("nan")
    return float(np.trapezoid(a, x) / (x[-1] - x[0]))


def _paired_tests(a: np.ndarray, b: np.ndarray) -> dict:
    from scipy.stats import ttest_rel, wilcoxon

    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    diff = a - b
    out = {"aulc_diff": _none_if_nan(diff.mean()) if len(diff) else None, "wins": int((diff > 0).sum()),
           "losses": int((diff < 0).sum()), "pairs": int(len(diff)), "p_wilcoxon": None, "p_ttest": None}
    if len(diff) >= 2 and np.any(diff != 0):
        out["p_wilcoxon"] = _none_if_nan(wilcoxon(a, b).pvalue)
        out["p_ttest"] = _none_if_nan(ttest_rel(a, b).pvalue)
    elif len(diff) >= 2:
        out["p_wilcoxon"] = out["p_ttest"] = 1.0
    return out


def summarise(results: dict) -> dict:
    """Add aulc, mean curves, labels_to_match_random and the paired comparison with random to every
    strategy of ``{"strategies": {name: {"runs": [...]}}}`` (also used to merge runs made separately).

    AULC, final_score and labels_to_match_random are on ``results["objective"]`` (accuracy if absent)."""
    strategies = results["strategies"]
    objective = results.setdefault("objective", DEFAULT_OBJECTIVE)
    grid = next(iter(strategies.values()))["runs"][0]["labels"]
    for entry in strategies.values():
        per_seed = np.array([aulc(grid, r[objective]) for r in entry["runs"]])
        entry["aulc"] = _none_if_nan(np.nanmean(per_seed)) if np.isfinite(per_seed).any() else None
        entry["aulc_sd"] = _none_if_nan(np.nanstd(per_seed)) if np.isfinite(per_seed).any() else None
        entry["aulc_per_seed"] = [_none_if_nan(v) for v in per_seed]
        curve = {"labels": list(grid)}
        recorded = [k for k in entry["runs"][0] if k not in ("seed", "labels")]
        for m in recorded:
            vals = np.array([_as_float_array(r[m]) for r in entry["runs"]])
            with warnings.catch_warnings():  # a step where no seed could train: nan, reported as null
                warnings.simplefilter("ignore", RuntimeWarning)
                curve[m] = [_none_if_nan(v) for v in np.nanmean(vals, axis=0)]
                curve[f"{m}_sd"] = [_none_if_nan(v) for v in np.nanstd(vals, axis=0)]
        entry["mean_curve"] = curve
        entry["final_score"] = curve[objective][-1]
        entry["final_score_sd"] = curve[f"{objective}_sd"][-1]
        entry["final_accuracy"] = curve["accuracy"][-1]
        entry["final_accuracy_sd"] = curve["accuracy_sd"][-1]
        entry["final"] = {m: curve[m][-1] for m in recorded}
    random = strategies.get("random")
    target = random["final_score"] if random else None
    for name, entry in strategies.items():
        entry["labels_to_match_random"] = None
        if target is not None:
            mean = _as_float_array(entry["mean_curve"][objective])
            hit = np.flatnonzero(mean >= target - 1e-12)
            entry["labels_to_match_random"] = int(grid[hit[0]]) if len(hit) else None
        if random is not None and name != "random":
            entry["vs_random"] = _paired_tests(_as_float_array(entry["aulc_per_seed"]),
                                               _as_float_array(random["aulc_per_seed"]))
    results["random_final_score"] = target
    results["random_final_accuracy"] = random["final_accuracy"] if random else None
    return results


def format_table(results: dict) -> str:
    """One line per strategy: AULC, final accuracy, labels to match random, paired comparison with random."""
    strategies = results["strategies"]
    setup = results.get("setup", {})
    target = results.get("random_final_score", results.get("random_final_accuracy"))
    objective = results.get("objective", DEFAULT_OBJECTIVE)
    head = (f"{'strategy':<18} {'AULC':>15} {'final':>15} {'labels to match':>16} "
            f"{'dAULC vs random':>16} {'p (Wilcoxon)':>13} {'wins':>7}")

    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    lines = []
    if setup:
        lines.append(f"{len(setup.get('seeds', []))} paired seeds; {setup.get('initial')} initial labels + "
                     f"batches of {setup.get('batch')} up to {setup.get('budget')}; model {setup.get('model')}; "
                     f"pool {setup.get('pool')}, test {setup.get('test')}")
    lines.append(f"objective: {objective} (AULC and 'final' are on it; every other figure is in results.json)")
    if target is not None:
        lines.append(f"random sampling's mean final {objective}: {target:.4f} (the level 'labels to match' refers to)")
    lines.append(head)
    lines.append("-" * len(head))
    order = sorted(strategies, key=lambda s: (s != "random", -(strategies[s].get("aulc") or 0.0)))
    for name in order:
        e = strategies[name]
        vs = e.get("vs_random") or {}
        wins = f"{vs['wins']}/{vs['pairs']}" if vs else "-"
        diff = vs.get("aulc_diff")
        lines.append(
            f"{name:<18} {fmt(e.get('aulc'), '.4f'):>7} ± {fmt(e.get('aulc_sd'), '.4f'):<5} "
            f"{fmt(e.get('final_score'), '.4f'):>7} ± {fmt(e.get('final_score_sd'), '.4f'):<5} "
            f"{fmt(e.get('labels_to_match_random'), 'd'):>16} {fmt(diff, '+.4f'):>16} "
            f"{fmt(vs.get('p_wilcoxon'), '.4f'):>13} {wins:>7}")
    return "\n".join(lines)


def plot_curves(results: dict, path) -> None:
    """Mean objective (e.g. accuracy) against labels, ±1 sd bands, one line per strategy; writes a PNG.

    Random sampling is the dashed grey line; the dotted line is its mean final score.
    """
    objective = results.get("objective", DEFAULT_OBJECTIVE)
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    strategies = results["strategies"]
    others = [n for n in strategies if n != "random"]
    palette = colormaps["tab10" if len(others) <= 10 else "tab20"]
    fig = Figure(figsize=(10, 5.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.08, 0.1, 0.62, 0.8))
    for name in (["random"] if "random" in strategies else []) + others:
        e = strategies[name]
        curve = e["mean_curve"]
        x = np.asarray(curve["labels"], dtype=float)
        m = _as_float_array(curve[objective])
        sd = _as_float_array(curve[f"{objective}_sd"])
        if name == "random":
            style = {"color": "0.35", "linestyle": "--", "linewidth": 2.0}
        else:
            style = {"color": palette(others.index(name) % palette.N),
                     "linewidth": 2.4 if name == results.get("default", DEFAULT_STRATEGY) else 1.3}
        label = f"{name} (AULC {e['aulc']:.3f})" if e.get("aulc") is not None else name
        ax.plot(x, m, label=label, **style)
        ax.fill_between(x, m - sd, m + sd, color=style["color"], alpha=0.08, linewidth=0)
    target = results.get("random_final_score", results.get("random_final_accuracy"))
    if target is not None:
        ax.axhline(target, color="0.5", linestyle=":", linewidth=1)
    setup = results.get("setup", {})
    ax.set_xlabel("labelled scans")
    ax.set_ylabel(f"test {objective.replace('_', ' ')}")
    ax.set_title(f"Simulated labelling, {len(setup.get('seeds', []))} paired seeds (mean ± 1 sd)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.savefig(str(path))
