"""Reading a series like a PACS: wheel/arrow scrolling, Ctrl+wheel zoom, window and zoom kept across
slices, the slice overlay, cine, a bounded slice cache, and a study as a grid of series viewports."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from aldesk.app.importer import import_paths
from aldesk.app.units import unit_view
from aldesk.imaging.scan import WindowPreset
from aldesk.store import Project
from aldesk.ui.series_viewer import SeriesViewport, SliceLoader, StudyView, slice_caption
from tests.dicom_series import write_series


def _volume(n, size=32, base=0):
    return (np.arange(n, dtype=np.int16)[:, None, None] * 10 + base + np.zeros((n, size, size), np.int16))


@pytest.fixture
def study(tmp_path):
    """One study of three generated CT series (20, 12 and 8 slices), imported by study."""
    from pydicom.uid import generate_uid

    study_uid = generate_uid()
    for k, n in enumerate((20, 12, 8)):
        write_series(tmp_path / "d" / f"s{k}", _volume(n, base=100 * k), study_uid=study_uid, series_number=k + 1,
                     description=f"series {k + 1}", spacing=2.5, z0=-50.0)
    path = tmp_path / "p"
    with Project.create(path, ["normal", "abnormal"], unit="study") as p:
        import_paths(p, [tmp_path / "d"], jobs=1)
        [scan_id] = p.scans.ids().tolist()
        view = unit_view(p, scan_id)
    return path, scan_id, view


def wheel(widget, dy, modifiers=Qt.KeyboardModifier.NoModifier):
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    ev = QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, dy), Qt.MouseButton.NoButton,
                     modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, ev)


def shown(qtbot, vp):
    qtbot.waitUntil(lambda: vp.shown_key == vp.current_key(), timeout=5000)


def test_slice_caption_reads_like_a_pacs_overlay():
    assert slice_caption(46, 133, -112.5) == "slice 47 / 133 · z = −112.5 mm"
    assert slice_caption(0, 1, None) == "slice 1 / 1"


def test_wheel_scrolls_slices_ctrl_wheel_zooms_and_window_and_zoom_stay(qtbot, study):
    _, scan_id, view = study
    loader = SliceLoader()
    vp = SeriesViewport(loader)
    qtbot.addWidget(vp)
    vp.resize(400, 400)
    vp.show()
    vp.set_series(scan_id, view.series[0], {"modality": "CT"})
    shown(qtbot, vp)
    assert vp.n_frames == 20 and vp.frame == 0
    wheel(vp, -120)
    wheel(vp, -240)
    assert vp.frame == 3
    wheel(vp, 120)
    assert vp.frame == 2
    zoom = vp.zoom
    wheel(vp, -120, Qt.KeyboardModifier.ControlModifier)
    assert vp.frame == 2 and vp.zoom != zoom
    vp.set_window(WindowPreset(60.0, 120.0, "test"))
    zoom = vp.zoom
    vp.set_frame(15)
    shown(qtbot, vp)
    assert vp.effective_window == WindowPreset(60.0, 120.0, "test") and vp.zoom == zoom
    # the pixels on screen are slice 16's: value 150 windowed 0..120 -> white; slice 1 (0) -> black
    assert int(vp._pixels.mean()) == 255
    vp.set_frame(0)
    shown(qtbot, vp)
    assert int(vp._pixels.mean()) == 0
    assert vp.overlay_lines()["br"][0] == "slice 1 / 20 · z = −50.0 mm"
    loader.shutdown()


def test_cine_plays_through_the_stack_and_stops(qtbot, study):
    _, scan_id, view = study
    vp = SeriesViewport(SliceLoader())
    qtbot.addWidget(vp)
    vp.show()
    vp.set_series(scan_id, view.series[2])
    vp.toggle_cine()
    qtbot.waitUntil(lambda: vp.frame >= 3, timeout=5000)
    assert any(line.startswith("cine") for line in vp.overlay_lines()["br"])
    vp.toggle_cine()
    stopped = vp.frame
    qtbot.wait(200)
    assert vp.frame == stopped
    vp.loader.shutdown()


def test_slice_cache_is_bounded_by_bytes(qtbot, study):
    _, _, view = study
    one = 32 * 32 * 4
    loader = SliceLoader(budget_bytes=5 * one)
    keys = view.series[0].stacks[0].images
    for key in keys:
        loader.request(key)
    qtbot.waitUntil(lambda: not loader._pending, timeout=10000)
    assert loader.cached_bytes <= 5 * one
    assert keys[-1] in loader or any(k in loader for k in keys[-5:])
    loader.shutdown()


def test_study_grid_shows_each_series_and_keys_move_between_them(qtbot, study):
    _, scan_id, view = study
    grid = StudyView()
    qtbot.addWidget(grid)
    grid.resize(800, 600)
    grid.show()
    grid.show_unit(scan_id, view, {"modality": "CT"})
    visible = [vp for vp in grid.viewports if vp.isVisible()]
    assert len(visible) == 3 and grid.cells == 4          # three series: 2 x 2 with one empty cell
    assert [vp.series.title for vp in visible] == ["S1 series 1", "S2 series 2", "S3 series 3"]
    assert grid.active is grid.viewports[0] and grid.active.active
    grid.next_series()
    assert grid.active is grid.viewports[1] and not grid.viewports[0].active
    grid.cycle_grid()                                       # 4 -> 1: the active series alone
    assert grid.cells == 1 and grid.active.series.title == "S2 series 2"
    grid.previous_series()
    assert grid.active.series.title == "S1 series 1"
    grid.loader.shutdown()


def test_main_window_reads_a_study_unit_and_labels_it(qtbot, study, tmp_path):
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings
    from tests.ui.conftest import label_values

    path, scan_id, _ = study
    win = MainWindow(Settings(), "dr_test", path, retrain_on_open=False)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    win.labelling.show_scan(scan_id)
    assert win.center.currentWidget() is win.study_view
    vp = win.study_view.active
    assert win.viewer_controls.viewer is vp
    shown(qtbot, vp)
    qtbot.keyClick(vp, Qt.Key.Key_Down)
    qtbot.keyClick(vp, Qt.Key.Key_Down)
    assert vp.frame == 2
    assert win.viewer_controls.frame_caption.text() == "Slice 3/20"
    qtbot.keyClick(vp, Qt.Key.Key_Right)
    assert win.viewer_controls.viewer is win.study_view.active is not vp
    win.labelling.label_current("abnormal")
    assert label_values(path)[scan_id] == "abnormal"
    win.close()


def test_new_project_dialog_offers_the_labelling_unit_image_first(qtbot, tmp_path):
    from aldesk.ui.project_dialogs import NewProjectDialog

    dlg = NewProjectDialog(None, str(tmp_path))
    qtbot.addWidget(dlg)
    assert dlg.chosen_unit() == "image"
    assert [dlg.unit.itemData(i) for i in range(dlg.unit.count())] == ["image", "series", "study"]
    dlg.unit.setCurrentIndex(2)
    assert dlg.chosen_unit() == "study"


def test_missing_slices_are_shown_on_the_viewport(qtbot, tmp_path):
    write_series(tmp_path / "d", _volume(10), spacing=2.0, skip={3, 4})
    with Project.create(tmp_path / "p", ["normal", "abnormal"], unit="series") as p:
        import_paths(p, [tmp_path / "d"], jobs=1)
        [scan_id] = p.scans.ids().tolist()
        view = unit_view(p, scan_id)
    vp = SeriesViewport(SliceLoader())
    qtbot.addWidget(vp)
    vp.set_series(scan_id, view.series[0])
    assert "⚠ 2 missing slices (gaps of 2 mm steps)" in vp.overlay_lines()["tr"]
    vp.loader.shutdown()


def test_review_panel_shows_a_disputed_study_as_its_series(qtbot, study):
    from aldesk.app.labelling import record_label
    from aldesk.ui.review_panel import ReviewPanel

    path, scan_id, _ = study
    with Project.open(path) as p:
        record_label(p, scan_id, "dr_a", "normal")
        record_label(p, scan_id, "dr_c", "abnormal")
    panel = ReviewPanel(path, "dr_b")
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.queue_loaded, timeout=10_000):
        pass
    panel.show_scan(scan_id)
    assert panel.scan_area.currentWidget() is panel.study_view
    assert [vp.series.title for vp in panel.study_view.viewports if vp.series is not None] == [
        "S1 series 1", "S2 series 2", "S3 series 3"]
    panel.shutdown()


def test_closing_the_dashboard_returns_to_the_series_grid(qtbot, study):
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings

    path, scan_id, _ = study
    win = MainWindow(Settings(), "dr_test", path, retrain_on_open=False)
    qtbot.addWidget(win)
    win.show()
    win.labelling.show_scan(scan_id)
    win._on_dashboard_toggled(True)
    win._on_dashboard_toggled(False)
    assert win.center.currentWidget() is win.study_view
    win.close()


def test_brackets_move_between_the_stacks_of_a_series(qtbot, tmp_path):
    from pydicom.uid import generate_uid

    series_uid = generate_uid()
    for echo in (1, 2):   # one series, two echoes at the same positions: two stacks
        write_series(tmp_path / "d" / f"e{echo}", _volume(6, base=1000 * echo), series_uid=series_uid, echo=echo,
                     instance_offset=10 * echo, series_number=1, description="dual echo")
    with Project.create(tmp_path / "p", ["normal", "abnormal"], unit="series") as p:
        import_paths(p, [tmp_path / "d"], jobs=1)
        [scan_id] = p.scans.ids().tolist()
        view = unit_view(p, scan_id)
    grid = StudyView()
    qtbot.addWidget(grid)
    grid.show()
    grid.show_unit(scan_id, view)
    vp = grid.active
    shown(qtbot, vp)
    vp.set_frame(5)
    assert vp.overlay_lines()["tl"][0] == "S1 dual echo · axial echo 1 (1/2)"
    qtbot.keyClick(vp, Qt.Key.Key_BracketRight)
    assert vp.stack_index == 1 and vp.frame == 5
    assert vp.overlay_lines()["tl"][0] == "S1 dual echo · axial echo 2 (2/2)"
    shown(qtbot, vp)
    qtbot.keyClick(vp, Qt.Key.Key_BracketLeft)
    assert vp.stack_index == 0
    grid.loader.shutdown()
