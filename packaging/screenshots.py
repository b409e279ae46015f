"""Regenerate the README screenshots from the real app: resources/screenshots/*.png.

Builds the demo project in a temporary data folder, records a few labels from the demo's answer
key (as a reader would), retrains, and grabs the main window, an import report and the dashboard.

    QT_QPA_PLATFORM=offscreen python packaging/screenshots.py      # or: xvfb-run python packaging/screenshots.py
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "resources" / "screenshots"
SHARED = (REPO / ".." / "shared" / "data" / "dicom-samples").resolve()
READER = "dr_demo"


def pump(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)


def wait(app, predicate, timeout: float = 120) -> None:
    end = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > end:
            raise TimeoutError("the app did not get there in time")
        app.processEvents()
        time.sleep(0.005)


def seed_labels(project_path: Path, n: int, step: int = 6) -> None:
    """Label ``n`` demo chest X-rays from the answer key, alternating classes and two readers, training
    every ``step`` labels (3-fold CV, as the app does) so the dashboard has a learning curve."""
    from aldesk.app.labelling import record_label
    from aldesk.app.modelling import train
    from aldesk.errors import LearningError
    from aldesk.store import Project
    from aldesk.ui.settings import resources_dir

    rows = list(csv.DictReader((resources_dir() / "demo" / "answers.csv").open()))
    by_class: dict[str, list[str]] = {}
    for r in rows:
        by_class.setdefault(r["label"], []).append(Path(r["path"]).name)
    with Project.open(project_path) as project:
        ids = {Path(r.relpath).name: r.id for r in project.scans.rows()}
        picks = [name for pair in zip(*by_class.values()) for name in pair][:n]
        for i, name in enumerate(picks):
            value = next(c for c, names in by_class.items() if name in names)
            record_label(project, ids[name], READER if i % 4 else "dr_lee", value)
            if (i + 1) % step == 0:
                try:
                    train(project, folds=3)
                except LearningError:
                    pass  # too few labels of a class for 3 folds yet: no point on the curve


def import_report_folder(tmp: Path) -> Path:
    """A folder like a real export: good scans, a note, a non-image DICOM, a truncated file, a duplicate."""
    from aldesk.ui.settings import resources_dir

    import numpy as np
    from PIL import Image

    folder = tmp / "incoming-2026-11"
    folder.mkdir(parents=True)
    demo = resources_dir() / "demo" / "scans"
    npz = SHARED.parent / "pneumoniamnist" / "pneumoniamnist.npz"
    if npz.is_file():  # new real chest X-rays (validation split: not in the demo)
        images = np.load(npz)["val_images"][:9]
        for i, img in enumerate(images):
            Image.fromarray(img).save(folder / f"cxr_val_{i:03d}.png")
    shutil.copy(sorted((demo / "chest-xray-mnist").glob("*.png"))[0], folder / "cxr_resent.png")
    shutil.copy(demo / "dicom" / "CT_small.dcm", folder / "CT_small.dcm")
    shutil.copy(demo / "dicom" / "CT_small.dcm", folder / "CT_small_copy.dcm")
    (folder / "README.txt").write_text("export notes\n")
    for name in ("MR_truncated.dcm", "rtplan.dcm", "JPEG-lossy.dcm"):
        src = SHARED / "pydicom-test-files" / name
        if src.is_file():
            shutil.copy(src, folder / name)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--theme", default="dark")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="aldesk-shots-"))
    os.environ["ALDESK_CONFIG_DIR"] = str(tmp / "config")
    os.environ["ALDESK_DATA_DIR"] = str(tmp / "data")
    os.environ["ALDESK_LOG_DIR"] = str(tmp / "logs")
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(REPO))

    from aldesk.ui.app import create_app
    from aldesk.ui.demo import ensure_demo_project
    from aldesk.ui.import_dialog import ImportDialog, ImportReportDialog
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings

    app = create_app(theme=args.theme)
    project_path, _ = ensure_demo_project()
    seed_labels(project_path, 36)

    settings = Settings(annotator=READER, theme=args.theme)
    win = MainWindow(settings, READER, None)
    win.resize(1680, 1000)
    win.show()
    applied: list = []
    win.worklist_applied.connect(applied.append)
    win.open_project(project_path)
    wait(app, lambda: len(applied) >= 2)  # the ranked list after retraining
    chest = next(r.id for r in win.project.scans.rows() if r.relpath.endswith("chest_cr_RG1_J2KI.dcm"))
    win.show_scan(chest)
    win._apply_worklist(win.worklist)  # as after a re-rank: the scan being read first, then the ranking
    wait(app, lambda: win.viewer.frames is not None and not win.viewer.is_preview)
    pump(app, 0.3)
    win.grab().save(str(out / "main_window.png"))
    print("wrote", out / "main_window.png")

    dlg = ImportDialog(str(project_path), [str(import_report_folder(tmp))], win, jobs=1)
    dlg.show()
    wait(app, lambda: dlg.summary is not None or dlg.error is not None)
    if dlg.error is not None:
        raise dlg.error
    report = ImportReportDialog(dlg.summary, win)
    report.resize(980, 440)
    report.show()
    pump(app, 0.3)
    report.grab().save(str(out / "import_report.png"))
    print("wrote", out / "import_report.png")
    report.close()

    if hasattr(win, "show_dashboard"):
        win.show_dashboard()
        pump(app, 1.0)
        win.grab().save(str(out / "dashboard.png"))
        print("wrote", out / "dashboard.png")
    win.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
