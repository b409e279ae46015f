"""Opening a project in the GUI makes the daily backup in a worker, never on the UI thread."""

from aldesk.store.project import list_backups


def test_daily_backup_is_made_in_the_background(qtbot, window, real_project):
    qtbot.waitUntil(lambda: len(list_backups(real_project)) == 1, timeout=10_000)
    made = list_backups(real_project)[0]
    assert "scheduled" in made.name and made.stat().st_size > 0
    qtbot.waitUntil(lambda: "Daily backup saved" in window.statusBar().currentMessage(), timeout=5_000)


def test_closing_waits_for_a_running_backup(qtbot, real_project, monkeypatch):
    """Closing the window (or a selftest deleting its folder) never races a backup still being written."""
    import time

    import aldesk.app.projects as projects
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings

    real = projects.scheduled_backup
    finished = []

    def slow_backup(path, progress=None, should_stop=None):
        time.sleep(0.5)
        made = real(path)
        finished.append(made)
        return made

    monkeypatch.setattr(projects, "scheduled_backup", slow_backup)
    win = MainWindow(Settings(), "dr_test", real_project, retrain_on_open=False)
    qtbot.addWidget(win)
    win.show()
    win.close()
    assert len(finished) == 1 and finished[0].is_file()


def test_closing_after_labelling_backs_up_the_sessions_labels(qtbot, real_project, monkeypatch):
    """Issue 16, also 4: the scheduled backup holds the session's labels (it used to be taken at open,
    before them). Closing starts it in a detached process: the window closes without waiting."""
    import time

    from aldesk.store.backups import commits_of
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings
    from tests.store.test_backups import _labels_in

    monkeypatch.delenv("ALDESK_NO_BACKGROUND_BACKUP", raising=False)
    win = MainWindow(Settings(), "dr_test", real_project, retrain_on_open=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: len(list_backups(real_project)) == 1, timeout=10_000)  # earlier work, at open
    at_open = list_backups(real_project)[0]
    import os

    os.utime(at_open, (time.time() - 7200, time.time() - 7200))  # made two hours ago
    for value in ("normal", "pneumonia", "normal"):
        win.label_current(value)
    win.close()
    qtbot.waitUntil(lambda: len(list_backups(real_project)) == 2, timeout=60_000)
    newest = list_backups(real_project)[0]
    assert newest != at_open and _labels_in(newest) == 3 and commits_of(newest) > commits_of(at_open)


def test_a_long_session_is_backed_up_while_open(qtbot, window, real_project):
    """Labels of a session that stays open all day reach a backup without closing the window."""
    import os
    import time

    from tests.store.test_backups import _labels_in

    qtbot.waitUntil(lambda: len(list_backups(real_project)) == 1, timeout=10_000)
    os.utime(list_backups(real_project)[0], (time.time() - 7200, time.time() - 7200))
    window._on_backup_timer_timeout()  # nothing written yet this session: no backup
    window.label_current("normal")
    window.label_current("pneumonia")
    window._on_backup_timer_timeout()  # what the quarter-hourly timer does
    qtbot.waitUntil(lambda: len(list_backups(real_project)) == 2, timeout=30_000)
    assert _labels_in(list_backups(real_project)[0]) == 2


def test_backup_at_open_waits_for_the_first_ranking(qtbot, real_project, monkeypatch):
    """On 2 cores the catch-up backup would slow the first retrain the reader waits for (issue 14): it starts
    once that ranking is done."""
    import aldesk.app.projects as projects
    from aldesk.ui.main_window import MainWindow
    from aldesk.ui.settings import Settings

    real = projects.scheduled_backup
    order = []

    def noted_backup(path, progress=None, should_stop=None):
        order.append(("backup", win.retrainer.busy))
        return real(path)

    monkeypatch.setattr(projects, "scheduled_backup", noted_backup)
    win = MainWindow(Settings(), "dr_test", real_project, retrain_on_open=True)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: len(list_backups(real_project)) == 1, timeout=60_000)
    assert order == [("backup", False)]  # started once the ranking was done, never during it
