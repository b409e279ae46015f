"""Background retraining: triggered every K labels, superseded by newer requests, errors shown."""

import time

from PySide6.QtCore import Qt

from aldesk.app.worklist import Worklist
from aldesk.errors import LearningError
from aldesk.store import Project
from aldesk.ui import main_window as mw


def press(qtbot, win, key):
    win.activateWindow()
    qtbot.keyClick(win.viewer, key)


def test_retrain_after_every_k_labels_updates_queue_and_status(qtbot, window, real_project):
    win = window
    with Project.open(real_project) as p:
        p.update_settings(retrain_every=4)
    started = []
    win.retrainer.started.connect(started.append)
    for key in (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_1):
        press(qtbot, win, key)
    assert started == []
    reading_before = None
    with qtbot.waitSignal(win.worklist_applied, timeout=60_000) as applied:
        press(qtbot, win, Qt.Key.Key_2)  # 4th label -> retrain in the background
        assert started == [1]
        reading_before = win.current_scan_id
        assert win.status.progress_bar.isVisible()
    wl = applied.args[0]
    assert isinstance(wl, Worklist)
    assert wl.n_labels == 4 and wl.strategy
    assert wl.metrics is not None and 0.0 <= wl.metrics["accuracy"] <= 1.0 and "ece" in wl.metrics
    status = win.status.model_status.text()
    assert f"Model v{wl.model_id}" in status and "4 labels" in status and "accuracy" in status and "ECE" in status
    # the scan being read did not move: still on screen and first in the list
    assert win.current_scan_id == reading_before == win.viewer.scan_id
    assert win.queue_model.scan_id_at(0) == reading_before
    ranked = [s for s in wl.scores]
    assert ranked and all(win.queue_model.reasons.get(s) for s in ranked)
    assert win.label_panel.prediction_label.text().startswith("Model:")
    qtbot.waitUntil(lambda: not win.status.progress_bar.isVisible(), timeout=5000)


def test_a_newer_request_supersedes_the_running_one(qtbot, window, monkeypatch):
    win = window
    calls = []

    def fake_body(project_path, annotator, strategy, retrain=True):
        n = len(calls)
        calls.append(n)

        def body(progress, should_stop):
            if n == 0:  # the first one is slow and cooperative
                for _ in range(500):
                    if should_stop():
                        from aldesk.errors import CancelledError
                        raise CancelledError("stale")
                    time.sleep(0.01)
            with Project.open(project_path) as p:
                from aldesk.app.worklist import plain_worklist
                wl = plain_worklist(p, annotator)
            wl.strategy, wl.note = "random", f"run {n}"
            return wl

        return body

    monkeypatch.setattr(mw, "retrain_body", fake_body)
    applied = []
    win.worklist_applied.connect(applied.append)
    win.request_retrain("first")
    qtbot.wait(50)
    with qtbot.waitSignal(win.worklist_applied, timeout=10_000):
        win.request_retrain("second")
    qtbot.waitUntil(lambda: not win.retrainer.busy, timeout=10_000)
    assert [wl.note for wl in applied] == ["run 1"]  # only the newest result is shown
    assert win.retrainer.stale_dropped == 1


def test_failing_retrain_shows_a_message_the_user_can_act_on(qtbot, window, message_boxes, monkeypatch):
    win = window

    def failing(*args, **kwargs):
        def body(progress, should_stop):
            raise LearningError("strategy 'x' needs a model; label at least one scan of every class")
        return body

    monkeypatch.setattr(mw, "retrain_body", failing)
    with qtbot.waitSignal(win.errors.reported, timeout=10_000) as rep:
        win.request_retrain("test")
    assert "Retraining failed" in rep.args[0]
    assert message_boxes and "label at least one scan of every class" in message_boxes[-1][2]
    assert win.status.progress_label.text() == "Ranking unavailable"


def test_unexpected_error_is_reported_as_a_bug_with_the_log(qtbot, window, message_boxes, monkeypatch):
    win = window

    def broken(*args, **kwargs):
        def body(progress, should_stop):
            raise ZeroDivisionError("division by zero")
        return body

    monkeypatch.setattr(mw, "retrain_body", broken)
    with qtbot.waitSignal(win.errors.reported, timeout=10_000) as rep:
        win.request_retrain("test")
    assert "ZeroDivisionError" in rep.args[1]


def test_closing_during_a_retrain_cancels_and_waits(qtbot, real_project, monkeypatch):
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings

    stopped = []

    def slow(*args, **kwargs):
        def body(progress, should_stop):
            for _ in range(1000):
                if should_stop():
                    stopped.append(True)
                    from aldesk.errors import CancelledError
                    raise CancelledError("closing")
                time.sleep(0.005)
            return None
        return body

    monkeypatch.setattr(mw, "retrain_body", slow)
    win = MainWindow(Settings(), "dr_test", real_project, retrain_on_open=False)
    qtbot.addWidget(win)
    win.show()
    win.label_current("normal")
    win.request_retrain("test")
    qtbot.wait(30)
    win.close()
    assert stopped == [True]  # the running body saw should_stop() and ended (no wall-clock bound: issue 13)
    assert win.project is None
    with Project.open(real_project) as p:
        assert [l.value for l in p.labels.current("dr_test")] == ["normal"]  # nothing lost


def test_real_retrain_on_open_ranks_in_the_background(qtbot, real_project):
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings

    win = MainWindow(Settings(), "dr_test", None)
    qtbot.addWidget(win)
    applied = []
    win.worklist_applied.connect(applied.append)
    win.open_project(real_project)
    # the plain list is listed at once (import order); the first scan shown is the ranking's top (issue 13)
    assert len(applied) == 1 and applied[0].strategy is None and win.current_scan_id is None
    assert "Ranking the queue" in win.viewer.message
    qtbot.waitUntil(lambda: len(applied) == 2, timeout=60_000)
    wl = applied[1]
    assert wl.strategy == "cold_start" and wl.metrics is None and "label" in wl.note
    assert win.current_scan_id == wl.to_label[0]
    assert len(wl.scores) > 0
    win.close()


def test_switching_project_during_a_retrain_leaves_no_stale_job(qtbot, window, real_project, monkeypatch):
    win = window

    def slow(*args, **kwargs):
        def body(progress, should_stop):
            for _ in range(400):
                if should_stop():
                    from aldesk.errors import CancelledError
                    raise CancelledError("switching")
                time.sleep(0.005)
        return body

    monkeypatch.setattr(mw, "retrain_body", slow)
    win.request_retrain("one")
    win.request_retrain("two")   # queued behind the first
    qtbot.wait(20)
    monkeypatch.undo()
    assert win.open_project(real_project)  # reopening closes the old one: cancel, wait, forget
    assert not win.retrainer.busy
    assert not win.status.progress_bar.isVisible()
