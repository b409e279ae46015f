"""Dashboard: figures from the store, real plots, strategy switch with an explanation."""

from PySide6.QtCore import Qt

from aldesk.app.dashboard import dashboard_data
from aldesk.app.labelling import record_label
from aldesk.app.modelling import train
from aldesk.store import Project
from aldesk.ui.dashboard import DashboardPanel


def labelled(project_path, n=6):
    with Project.open(project_path) as p:
        ids = p.scans.ids()[:n]
        for i, s in enumerate(ids):
            record_label(p, int(s), "dr_a" if i % 3 else "dr_b", ["normal", "pneumonia"][i % 2])
        record_label(p, int(p.scans.ids()[n]), "dr_a", "unsure")
        train(p, folds=2)
        return dashboard_data(p)


def test_dashboard_data_counts_readers_classes_and_learning_curve(real_project):
    d = labelled(real_project)
    assert d["per_reader"] == {"dr_a": 5, "dr_b": 2}
    assert d["class_balance"] == {"normal": 3, "pneumonia": 3, "unsure": 1, "skip": 0}
    assert [p[1] for p in d["labels_over_time"]["dr_a"]] == [1, 2, 3, 4, 5]
    assert len(d["learning_curve"]) == 1 and d["learning_curve"][0][0] == 6
    assert 0 <= d["learning_curve"][0][1] <= 1
    assert d["scans"] == 12 and d["labelled"] == 6


def test_panel_draws_four_real_plots_and_switches_strategy(qtbot, real_project):
    d = labelled(real_project)
    panel = DashboardPanel(theme="dark")
    qtbot.addWidget(panel)
    panel.set_strategies({"hybrid": "uncertain and diverse", "random": "the baseline"}, "hybrid")
    panel.set_data(d)
    axes = panel.figure.axes
    titles = [a.get_title() for a in axes]
    assert titles[:4] == ["Labels over time", "Reads per reader", "Class balance", "Learning curve (cross-validated)"]
    assert [round(b.get_height()) for b in axes[2].patches] == [3, 3, 1, 0]
    assert panel.figure.get_facecolor()[0] < 0.2  # dark background
    assert "6 of 12 scans" in panel.summary.text()
    with qtbot.waitSignal(panel.strategy_changed) as sig:
        panel.strategy_box.setCurrentIndex(1)
        panel.strategy_box.activated.emit(1)
    assert sig.args == ["random"] and panel.strategy_help.text() == "random: the baseline"


def test_main_window_dashboard_toggle_and_keys_do_not_label_unseen_scans(qtbot, window):
    win = window
    win.activateWindow()
    qtbot.keyClick(win.viewer, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert win.dashboard_visible and win.center.currentWidget() is win.dashboard
    win.label_current("normal")
    assert win.project.labels.count() == 0
    win.show_dashboard(False)
    assert win.center.currentWidget() is win.viewer
    win.label_current("normal")
    assert win.project.labels.count() == 1
