"""Workers: plain bodies on a pool, signals on the GUI thread, newest-only delivery, no lost errors."""

import threading
import time

from PySide6.QtCore import QThread

from aldesk.errors import CancelledError
from aldesk.ui.workers import LatestOnly, run_in_pool


def test_run_in_pool_delivers_result_and_progress_on_the_gui_thread(qtbot):
    seen = {}
    main = QThread.currentThread()

    def body(progress, should_stop):
        seen["worker_thread"] = threading.current_thread().name
        progress(1, 1, "half")
        return 42

    def done(result):
        seen["result"] = result
        seen["on_gui_thread"] = QThread.currentThread() is main

    job = run_in_pool(body, on_finished=done, on_failed=lambda e: seen.setdefault("error", e),
                      on_progress=lambda d, t, m: seen.setdefault("progress", (d, t, m)))
    qtbot.waitUntil(lambda: "result" in seen, timeout=5000)
    assert seen["result"] == 42 and seen["on_gui_thread"] and seen["progress"] == (1, 1, "half")
    assert job.done


def test_failure_is_delivered_with_traceback(qtbot):
    errors = []
    run_in_pool(lambda p, s: 1 / 0, on_finished=lambda r: None, on_failed=errors.append)
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert isinstance(errors[0], ZeroDivisionError) and "ZeroDivisionError" in errors[0].traceback_text


def test_latest_only_cancels_the_running_job_and_delivers_only_the_newest(qtbot):
    runner = LatestOnly("test")
    stopped = []

    def slow(progress, should_stop):
        while not should_stop():
            time.sleep(0.005)
        stopped.append(True)
        raise CancelledError("superseded")

    results = []
    runner.finished.connect(results.append)
    runner.request(slow)
    qtbot.wait(30)
    with qtbot.waitSignal(runner.idle, timeout=5000):
        gen = runner.request(lambda p, s: "new")
    assert gen == 2 and results == ["new"] and stopped == [True]
    assert runner.stale_dropped == 1 and not runner.busy


def test_latest_only_drops_a_stale_result_that_ignored_the_stop(qtbot):
    runner = LatestOnly("test")
    results = []
    runner.finished.connect(results.append)

    def stubborn(progress, should_stop):
        time.sleep(0.1)  # never looks at should_stop
        return "old"

    runner.request(stubborn)
    runner.request(lambda p, s: "new")
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert results == ["new"]


def test_progress_is_throttled(qtbot):
    runner = LatestOnly("test")
    got = []
    runner.progress.connect(lambda d, t, m: got.append(d))

    def chatty(progress, should_stop):
        for i in range(10_000):
            progress(i, 10_000, "")
        progress(10_000, 10_000, "done")
        return None

    with qtbot.waitSignal(runner.idle, timeout=5000):
        runner.request(chatty)
    assert 1 <= len(got) < 100 and got[-1] == 10_000
