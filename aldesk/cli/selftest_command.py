"""``aldesk selftest``: prove an installation works, offscreen, in a throw-away folder.

For the IT team rolling aldesk out (and for the bundle's CI test): builds the demo project from the
shipped scans in a temporary data folder, decodes a JPEG 2000 DICOM, labels a few scans, extracts
the default features (the ImageNet network aldesk ships, run by onnxruntime), ranks a batch and (when
the GUI is importable) opens the main window offscreen. Prints each step, then ``OK``
(exit 0), or what failed (exit 1). Never touches the user's settings, projects or log folder.

The GUI step is injected by aldesk.main (``gui_check``): the CLI layer never imports Qt itself.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from aldesk.app.label_sets import resources_dir
from aldesk.cli.common import EXIT_ERROR, EXIT_OK

DEMO_CLASSES = ["normal", "pneumonia"]
J2K_SCAN = "dicom/chest_cr_RG1_J2KI.dcm"
N_LABELLED = 20
BATCH = 10

#: set by aldesk.main to a function (project folder) -> one-line description; None = no GUI step
gui_check: Callable[[Path], str] | None = None


def _step_build(work: Path) -> tuple[Path, str]:
    from aldesk.app.importer import import_paths
    from aldesk.app.projects import create_project

    demo = resources_dir() / "demo"
    if not (demo / "scans").is_dir():
        raise FileNotFoundError(f"demo scans not found at {demo / 'scans'}; the installation is incomplete")
    path = work / "demo-project"
    shutil.copytree(demo / "scans", path / "scans")
    with create_project(path, DEMO_CLASSES, name="aldesk selftest") as project:
        summary = import_paths(project, [path / "scans"], jobs=1)
        n = project.scans.count()
    if summary.status != "done" or not summary.imported:
        raise RuntimeError(f"import {summary.status}, {summary.imported} scans imported")
    return path, f"{n} scans imported"


def _step_decode(path: Path) -> str:
    import numpy as np

    from aldesk.imaging import read_frames

    frames, _params = read_frames(path / "scans" / J2K_SCAN)
    if frames.size == 0 or not np.isfinite(frames).all():
        raise RuntimeError(f"decoded frames are empty or not finite: shape {frames.shape}")
    return f"{Path(J2K_SCAN).name}: {frames.shape[0]} frame(s) {frames.shape[1]}×{frames.shape[2]}"


def _step_label(path: Path) -> str:
    from aldesk.app.labelling import label_from_csv
    from aldesk.store import Project

    with open(resources_dir() / "demo" / "answers.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    # a few of each class, so the model has something to learn from
    picked = [r for r in body if r[1] == DEMO_CLASSES[0]][: N_LABELLED // 2]
    picked += [r for r in body if r[1] == DEMO_CLASSES[1]][: N_LABELLED // 2]
    # answers.csv paths start at the demo folder; the importer knows them relative to scans/
    picked = [[r[0].removeprefix("scans/")] + r[1:] for r in picked]
    subset = path / "selftest-labels.csv"
    with open(subset, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header] + picked)
    with Project.open(path) as project:
        counts = label_from_csv(project, subset, "selftest")
    return f"{counts.get('added', 0)} labels recorded"


def _step_rank(path: Path) -> str:
    from aldesk.app.features import extract_features
    from aldesk.app.modelling import rank
    from aldesk.store import Project

    with Project.open(path) as project:
        features = extract_features(project, jobs=1)  # the default extractor
        ranking = rank(project, batch=BATCH)
    if len(ranking.batch) != BATCH:
        raise RuntimeError(f"asked for {BATCH} scans, got {len(ranking.batch)}")
    return (f"{features.extractor} features, {features.dim} per scan; "
            f"{len(ranking.batch)} scans ranked by {ranking.strategy}")


def run_selftest(out=sys.stdout) -> int:
    """Run every step in a temporary folder; 0 when all passed, 1 otherwise."""
    from aldesk import __version__

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    print(f"aldesk {__version__} selftest (Python {sys.version.split()[0]}, {sys.platform})", file=out)
    saved = {k: os.environ.get(k) for k in ("ALDESK_DATA_DIR", "ALDESK_CONFIG_DIR")}
    with tempfile.TemporaryDirectory(prefix="aldesk-selftest-") as tmp:
        work = Path(tmp)
        os.environ["ALDESK_DATA_DIR"] = str(work / "data")
        os.environ["ALDESK_CONFIG_DIR"] = str(work / "config")
        state: dict = {}
        steps: list[tuple[str, Callable[[], str]]] = [
            ("build the demo project", lambda: _build(state, work)),
            ("decode a JPEG 2000 DICOM", lambda: _step_decode(state["path"])),
            ("label a few scans", lambda: _step_label(state["path"])),
            ("extract the default features and rank a batch", lambda: _step_rank(state["path"])),
        ]
        if gui_check is not None:
            steps.append(("open the main window offscreen", lambda: gui_check(state["path"])))
        try:
            for i, (name, step) in enumerate(steps, 1):
                print(f"[{i}/{len(steps)}] {name} ...", end=" ", flush=True, file=out)
                started = time.monotonic()
                try:
                    detail = step()
                except Exception as exc:  # the point of a selftest: report any failure, then stop
                    print("FAILED", file=out)
                    print(f"selftest failed at step {i} ({name}): {type(exc).__name__}: {exc}", file=out)
                    traceback.print_exc(file=sys.stderr)
                    return EXIT_ERROR
                print(f"ok ({detail}; {time.monotonic() - started:.1f} s)", file=out, flush=True)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    print("OK", file=out)
    return EXIT_OK


def _build(state: dict, work: Path) -> str:
    state["path"], detail = _step_build(work)
    return detail


def cmd_selftest(args) -> int:
    return run_selftest()


def register(add) -> None:
    add("selftest", cmd_selftest, "check this installation offscreen: demo project, JPEG 2000 decoding, features, "
                                    "ranking, GUI")
