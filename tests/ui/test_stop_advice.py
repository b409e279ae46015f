"""'When can I stop?' in the dashboard and the audit figures in the status bar."""

from __future__ import annotations

import os

import pytest

import numpy as np

from aldesk.app.dashboard import dashboard_data
from aldesk.app.progress import progress_report
from aldesk.app.worklist import Worklist
from aldesk.store import Project
from aldesk.ui.dashboard import DashboardPanel
from aldesk.ui.status_bar import WorkStatusBar


@pytest.fixture(scope="module")
def campaign(read_campaign):
    """The shared read-through project (tests/conftest.py), its report and dashboard figures."""
    with Project.open(read_campaign) as p:
        return read_campaign, progress_report(p, n_boot=50), dashboard_data(p)


def test_panel_shows_the_recommendation_and_the_audit_curve(qtbot, campaign, tmp_path):
    _, report, data = campaign
    panel = DashboardPanel(theme="dark")
    qtbot.addWidget(panel)
    panel.resize(1200, 900)
    panel.set_strategies({"hybrid": "uncertain and diverse"}, "hybrid")
    panel.set_progress(None, pending=True)
    assert panel.stop_text.text().startswith("Working out")
    panel.set_data(data)
    panel.set_progress(report)
    assert panel.stop_text.text() == report["recommendation"]
    details = panel.stop_details.text()
    assert "<b>audit accuracy</b>: " in details and f"{report['audit']['n']} audit scans" in details
    assert "<b>stability</b>: κ" in details
    colour = "#2e8b57" if report["stop"] else "#c08a1e"
    assert colour in panel.stop_box.styleSheet()
    # the audit accuracy of every model that had audit labels, with its interval, on the learning curve
    assert len(data["audit_curve"]) >= 2 and all(lo <= a <= hi for _, a, lo, hi, _ in data["audit_curve"])
    curve_axes = panel.figure.axes[3]
    assert "audit accuracy (95 % CI)" in [t.get_text() for t in curve_axes.get_legend().get_texts()]
    panel.show()
    qtbot.waitExposed(panel)
    out = os.environ.get("ALDESK_GRAB_DIR", str(tmp_path))
    assert panel.grab().save(os.path.join(out, "dashboard-stop-advice.png"))


def test_panel_reports_a_failure_in_words(qtbot):
    panel = DashboardPanel(theme="light")
    qtbot.addWidget(panel)
    panel.set_progress(None, error="Cannot work out when to stop: no features")
    assert panel.stop_text.text() == "Cannot work out when to stop: no features" and panel.stop_details.text() == ""


def test_status_bar_shows_audit_accuracy_and_stability(qtbot):
    bar = WorkStatusBar()
    qtbot.addWidget(bar)
    metrics = {"labels": 140, "accuracy": 0.85, "ece": 0.031, "audit_accuracy": 0.8667, "audit_ci": [0.84, 0.90],
               "audit_n": 60, "stability_kappa": 0.9951}
    bar.show_model(Worklist(to_label=np.zeros(0, np.int64), metrics=metrics, model_id=7, n_labels=140))
    text = bar.model_status.text()
    assert "Model v7" in text and "audit 0.87 ± 0.03 (n=60)" in text and "stable (κ 0.995)" in text
    metrics.update(stability_kappa=0.95)
    metrics.pop("audit_accuracy")
    bar.show_model(Worklist(to_label=np.zeros(0, np.int64), metrics=metrics, model_id=8, n_labels=150))
    text = bar.model_status.text()
    assert "audit" not in text and "still changing (κ 0.950)" in text


def test_main_window_dashboard_fills_the_advice_in_a_worker(qtbot, window):
    win = window
    win.show_dashboard(True)
    qtbot.waitUntil(lambda: win._advice_job is None, timeout=60_000)
    text = win.dashboard.stop_text.text()
    assert text.startswith("Keep labelling (0 labels)") and "not enough models yet" in text
