"""Opening a project in the GUI makes the daily backup in a worker, never on the UI thread."""

from aldesk.store.project import list_backups


def test_daily_backup_is_made_in_the_background(qtbot, window, real_project):
    qtbot.waitUntil(lambda: len(list_backups(real_project)) == 1, timeout=10_000)
    made = list_backups(real_project)[0]
    assert "scheduled" in made.name and made.stat().st_size > 0
    qtbot.waitUntil(lambda: "Daily backup saved" in window.statusBar().currentMessage(), timeout=5_000)
