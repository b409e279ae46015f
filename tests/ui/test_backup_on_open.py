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
