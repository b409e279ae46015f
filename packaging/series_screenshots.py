"""Regenerate the series screenshots: resources/screenshots/study_grid.png and series_scroll.png.

study_grid: the real GE MR exam of ../shared/data/dicom-series (localizers + fMRI, 8 series) imported
as one study unit, shown in the main window as a 2x2 grid, the second series active and scrolled.
series_scroll: a generated 300-slice CT series (tests/dicom_series.py) scrolled to slice 150 with a
lung window, in the main window.

    QT_QPA_PLATFORM=offscreen python packaging/series_screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "resources" / "screenshots"
GE_EXAM = (REPO / ".." / "shared" / "data" / "dicom-series" / "dcm_qa_table" / "GE" / "Exam1486_Laser794mm").resolve()


def settle(app, vp, seconds: float = 1.0) -> None:
    end = time.perf_counter() + 30
    while vp.shown_key != vp.current_key() and time.perf_counter() < end:
        app.processEvents()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def window_on(app, project_path: Path, unit: str, folder: Path):
    from aldesk.app.importer import import_paths
    from aldesk.store import Project
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings

    with Project.create(project_path, ["normal", "abnormal"], unit=unit) as p:
        import_paths(p, [folder], jobs=1)
    win = MainWindow(Settings(), "dr_demo", project_path, retrain_on_open=False)
    win.resize(1600, 960)
    win.show()
    app.processEvents()
    return win


def main() -> int:
    from PySide6.QtWidgets import QApplication

    from aldesk.imaging.scan import WindowPreset
    from tests.dicom_series import ct_volume, write_series

    app = QApplication.instance() or QApplication([])
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        win = window_on(app, tmp / "study", "study", GE_EXAM)
        [scan_id] = win.project.scans.ids().tolist()
        win.labelling.show_scan(scan_id)
        grid = win.study_view
        grid.next_series()
        for _ in range(5):
            grid.active.set_frame(grid.active.frame + 1)
        settle(app, grid.active)
        win.grab().save(str(OUT / "study_grid.png"))
        print("wrote", OUT / "study_grid.png")
        win.close()

        write_series(tmp / "ct", ct_volume(300, 512), spacing=1.25, z0=-300.0, description="Chest CT (generated)")
        win = window_on(app, tmp / "series", "series", tmp / "ct")
        [scan_id] = win.project.scans.ids().tolist()
        win.labelling.show_scan(scan_id)
        vp = win.study_view.active
        vp.set_window(WindowPreset(40, 400, "soft tissue"))
        for i in range(150):
            vp.set_frame(i)
            app.processEvents()
        settle(app, vp)
        win.grab().save(str(OUT / "series_scroll.png"))
        print("wrote", OUT / "series_scroll.png")
        win.close()
        win.study_view.loader.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
