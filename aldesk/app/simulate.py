"""Replay a labelling campaign with a known answer key, to show how many labels a strategy saves.

The answers come from a ``path,label[,split]`` CSV matched to imported scans, or from a
MedMNIST-style ``.npz`` written out as PNGs and imported first. The replay itself is pure
(aldesk.learning.simulation); this module gathers the data and writes the results.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aldesk.app.answers import read_labelled_csv
from aldesk.app.callbacks import Progress, ShouldStop, never_stop, no_progress
from aldesk.app.features import load_features
from aldesk.errors import InputFileError, LearningError
from aldesk.learning.base import standardize
from aldesk.store import Project


@dataclass
class SimulationOutput:
    results: dict
    results_path: Path
    curves_path: Path
    table: str


def patient_test_split(y: np.ndarray, groups: np.ndarray, fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Indices of a stratified test split where no patient (group) is on both sides."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_splits = max(2, round(1 / fraction))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, test = next(splitter.split(np.zeros(len(y)), y, groups))
    return np.sort(test)


def simulate_project(
    project: Project,
    answers: str | os.PathLike,
    *,
    strategies: list[str],
    seeds: int = 10,
    initial: int = 20,
    batch: int = 10,
    budget: int = 300,
    out: str | os.PathLike,
    extractor: str = "default",
    model: str | None = None,
    strict: bool = False,
    objective: str | None = None,
    progress: Progress = no_progress,
    should_stop: ShouldStop = never_stop,
) -> SimulationOutput:
    """Replay labelling from an answer key. Images the key labels two ways are left out (``strict``:
    refused); images in both pool and test split are held out of the pool; both are reported in
    ``results["answers"]``. The objective (default: the project's setting) is what AULC is computed on."""
    from aldesk.app.objective import project_objective
    from aldesk.learning.models import default_model
    from aldesk.learning.simulation import format_table, plot_curves, resolve_default, simulate

    strategies = resolve_default(strategies)
    if "random" not in strategies:
        strategies = ["random", *strategies]  # every comparison is against random sampling
    read = read_labelled_csv(project, answers, allow_unknown=False, on_conflict="refuse" if strict else "drop")
    rows = read.rows
    classes = project.classes
    objective, ordered = project_objective(project, objective)
    model = model or default_model(ordered)
    rows = [r for r in rows if r.label in classes]
    if not rows:
        raise InputFileError(f"{answers}: no row names a scan with a class label")
    ids, X = load_features(project, extractor, progress=progress, should_stop=should_stop)
    pos = {s: i for i, s in enumerate(ids.tolist())}
    take = np.array([pos[r.scan_id] for r in rows], dtype=np.int64)
    X = standardize(X[take])
    y = np.array([classes.index(r.label) for r in rows], dtype=np.int64)
    scan_ids = ids[take]
    patients = project.scans.patient_keys(scan_ids.tolist())
    groups = np.array([patients.get(int(s)) or f"scan-{int(s)}" for s in scan_ids])
    is_test = np.array([r.split == "test" for r in rows])
    if is_test.any():
        test_idx = np.flatnonzero(is_test)
    else:
        test_idx = patient_test_split(y, groups)
    pool = len(y) - len(test_idx)
    if budget > pool:
        raise LearningError(f"budget == {budget}, but the pool has only {pool} scans; lower --budget")
    results = simulate(X, y, test_idx=test_idx, strategies=strategies, seeds=seeds, initial=initial,
                       batch=batch, budget=budget, n_classes=len(classes), groups=groups, model=model,
                       objective=objective, ordered=ordered, progress=progress, should_stop=should_stop)
    results["answers"] = read.report()
    results.setdefault("setup", {}).update({
        "extractor": extractor, "model": model, "pool": int(pool), "test": int(len(test_idx)),
        "initial": initial, "batch": batch, "budget": budget, "classes": classes,
        "test_split": "from answers" if is_test.any() else "stratified, patient-level, 20%",
    })
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results_path.write_text(json.dumps(results, indent=2))
    curves_path = out / "curves.png"
    plot_curves(results, curves_path)
    table = "\n".join([*read.warnings(), format_table(results)])
    (out / "summary.txt").write_text(table + "\n")
    return SimulationOutput(results, results_path, curves_path, table)


def npz_to_folder(npz_path: str | os.PathLike, folder: str | os.PathLike,
                  splits: tuple[str, ...] = ("train", "test")) -> tuple[Path, Path, int]:
    """Write a MedMNIST-style .npz (``<split>_images``, ``<split>_labels``) as PNGs plus an answer key.

    Returns (images folder, answers CSV, number of classes). The CSV's paths are relative to the images
    folder, its split column keeps 'test' apart so the replay scores on the official test split.
    """
    from PIL import Image

    npz_path, folder = Path(npz_path), Path(folder)
    try:
        data = np.load(npz_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{npz_path}: not a readable .npz ({exc})") from exc
    with data:
        missing = [k for s in splits for k in (f"{s}_images", f"{s}_labels") if k not in data.files]
        if missing:
            raise InputFileError(f"{npz_path}: lacks {', '.join(missing)}; expected MedMNIST keys like train_images")
        images_dir = folder / "images"
        lines = ["path,label,split"]
        n_classes = 0
        for split in splits:
            images, labels = data[f"{split}_images"], data[f"{split}_labels"].reshape(len(data[f"{split}_labels"]), -1)
            if labels.shape[1] != 1:
                raise InputFileError(f"{npz_path}: {split}_labels has {labels.shape[1]} columns; only single-label tasks are supported")
            (images_dir / split).mkdir(parents=True, exist_ok=True)
            n_classes = max(n_classes, int(labels.max()) + 1)
            width = len(str(len(images)))
            for i, (img, lab) in enumerate(zip(images, labels[:, 0])):
                rel = f"{split}/{split}_{i:0{width}d}.png"
                target = images_dir / rel
                if not target.exists():
                    Image.fromarray(np.asarray(img, dtype=np.uint8)).save(target)
                lines.append(f"{rel},{int(lab)},{'test' if split == 'test' else 'pool'}")
    answers = folder / "answers.csv"
    answers.write_text("\n".join(lines) + "\n")
    return images_dir, answers, n_classes
