"""The queue filter changes what is listed, never what "next" means (issue 13 point 3).

"All scans" made Next follow import order, and after a restart the first scan shown was unranked.
"""

from __future__ import annotations

import numpy as np

from aldesk.app.worklist import Worklist
from aldesk.ui import main_window as mw


def ranked_backwards(win) -> Worklist:
    """A ranking that is the reverse of import order, so the two cannot be confused."""
    ids = np.array(sorted(win.project.scans.ids().tolist(), reverse=True), dtype=np.int64)
    return Worklist(to_label=ids, scores={int(s): 1.0 / (i + 1) for i, s in enumerate(ids)},
                    reasons={int(s): "test ranking" for s in ids}, strategy="hybrid", n_labels=0)


def test_all_scans_filter_lists_import_order_but_next_follows_the_ranking(qtbot, window):
    win = window
    wl = ranked_backwards(win)
    win._apply_worklist(wl, first=True)
    assert win.current_scan_id == wl.to_label[0]
    win.queue_panel.set_filter("all")
    listed = [win.queue_model.scan_id_at(i) for i in range(3)]
    assert listed == sorted(win.project.scans.ids().tolist())[:3]          # what is listed changed
    win.label_current("normal")
    assert win.current_scan_id == wl.to_label[1]                            # what next means did not
    win.label_current("pneumonia")
    assert win.current_scan_id == wl.to_label[2]
    win.labelling.show_next()
    assert win.current_scan_id == wl.to_label[3]


def test_the_first_scan_after_opening_is_the_top_of_the_ranking(qtbot, real_project, monkeypatch):
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings

    ranking: dict = {}

    def fake_body(project_path, annotator, strategy, retrain=True):
        def body(progress, should_stop):
            from aldesk.store import Project

            with Project.open(project_path) as p:
                ids = np.array(sorted(p.scans.ids().tolist(), reverse=True)[1:], dtype=np.int64)
            ranking["top"] = int(ids[0])
            return Worklist(to_label=ids, scores={int(ids[0]): 0.9}, reasons={int(ids[0]): "torn"}, strategy="hybrid")
        return body

    monkeypatch.setattr(mw, "retrain_body", fake_body)
    shown: list[int] = []
    win = MainWindow(Settings(), "dr_test", None)
    qtbot.addWidget(win)
    win.scan_shown.connect(shown.append)
    with qtbot.waitSignal(win.worklist_applied, timeout=30_000):
        win.open_project(real_project)
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert shown == [ranking["top"]]            # never an unranked scan first
    assert win.current_scan_id == ranking["top"]
    win.close()


def test_if_ranking_fails_at_opening_the_reader_still_gets_a_scan(qtbot, real_project, monkeypatch, message_boxes):
    from aldesk.errors import LearningError
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings

    def failing(project_path, annotator, strategy, retrain=True):
        def body(progress, should_stop):
            raise LearningError("no features")
        return body

    monkeypatch.setattr(mw, "retrain_body", failing)
    win = MainWindow(Settings(), "dr_test", real_project)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.current_scan_id is not None, timeout=10_000)
    assert win.current_scan_id == min(win.project.scans.ids().tolist())    # the plain list, said so
    win.close()
