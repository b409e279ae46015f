"""The reviewer's screens: the review queue model, the adjudication panel, the agreement view."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from aldesk.app import review
from aldesk.app.importer import import_paths
from aldesk.app.labelling import record_label
from aldesk.store import Project
from tests.app.conftest import write_png

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "resources" / "screenshots"

# scan index -> (dr_a, dr_b): 0 and 1 disputed, 2 unsure, 3..7 agree
READS = [("normal", "pneumonia"), ("pneumonia", "normal"), ("normal", "unsure"),
         ("normal", "normal"), ("pneumonia", "pneumonia"), ("normal", "normal"),
         ("pneumonia", "pneumonia"), ("normal", "normal")]
NOTES = {0: ("clear lungs", "right lower lobe opacity"), 1: ("patchy left base", "")}


@pytest.fixture
def review_project(tmp_path) -> Path:
    """Eight scans read by dr_a and dr_b (dr_b is the reviewer): two disputes, one unsure."""
    folder = tmp_path / "scans"
    for i in range(len(READS)):
        write_png(folder / f"cxr_{i}.png", seed=i, size=64)
    path = tmp_path / "review-project"
    with Project.create(path, ["normal", "pneumonia"]) as project:
        summary = import_paths(project, [folder], jobs=1)
        assert summary.imported == len(READS), summary.problems
        by_name = {Path(r.relpath).name: r.id for r in project.scans.rows()}
        for i, (a, b) in enumerate(READS):
            scan = by_name[f"cxr_{i}.png"]
            na, nb = NOTES.get(i, ("", ""))
            record_label(project, scan, "dr_a", a, note=na, duration_ms=4000)
            record_label(project, scan, "dr_b", b, note=nb, duration_ms=6000)
        review.set_role(project, "dr_b", "reviewer")
    return path


def scan_named(project_path, name: str) -> int:
    with Project.open(project_path) as p:
        return next(r.id for r in p.scans.rows() if Path(r.relpath).name == name)


# ====================================================================================== the model
def test_review_queue_model_rows_columns_and_roles_without_a_widget(review_project):
    from aldesk.ui.review_panel import (COL_IMPACT, COL_READS, COL_REASONS, COL_SCAN, COL_STATUS, HEADERS,
                                        ImpactRole, ItemRole, ReasonsRole, ReviewQueueModel, ScanIdRole, StatusRole)

    with Project.open(review_project) as p:
        items = review.review_queue(p)
    model = ReviewQueueModel()
    model.set_items(items)
    assert model.rowCount() == 3 and model.columnCount() == len(HEADERS)
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(len(HEADERS))] == list(HEADERS)
    names = [model.index(r, COL_SCAN).data() for r in range(3)]
    assert sorted(names) == ["cxr_0.png", "cxr_1.png", "cxr_2.png"]
    by_name = {model.index(r, COL_SCAN).data(): r for r in range(3)}
    r0 = by_name["cxr_0.png"]
    assert model.index(r0, COL_SCAN).data(ScanIdRole) == scan_named(review_project, "cxr_0.png")
    assert model.index(r0, COL_REASONS).data(ReasonsRole) == ["disagreement"]
    assert model.index(r0, COL_REASONS).data() == "disagreement"
    assert model.index(r0, COL_STATUS).data(StatusRole) == "to decide"
    assert model.index(r0, COL_READS).data() == "normal · pneumonia"
    assert "unsure" in model.index(by_name["cxr_2.png"], COL_REASONS).data(ReasonsRole)
    impacts = [model.index(r, COL_IMPACT).data(ImpactRole) for r in range(3)]
    assert impacts == sorted(impacts, reverse=True)  # most in doubt first
    assert model.index(r0, COL_IMPACT).data() == f"{impacts[r0]:.2f}"
    assert model.index(r0, 0).data(ItemRole).scan_id == model.index(r0, 0).data(ScanIdRole)
    assert "right lower lobe opacity" in model.index(r0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert model.counts() == {"to decide": 3, "awaiting read": 0}
    assert model.remove_scan(model.index(r0, 0).data(ScanIdRole)) and model.rowCount() == 2


# ====================================================================================== the panel
@pytest.fixture
def panel(qtbot, review_project):
    from aldesk.ui.review_panel import ReviewPanel

    w = ReviewPanel(review_project, "dr_b")
    qtbot.addWidget(w)
    w.resize(1500, 900)
    with qtbot.waitSignal(w.queue_loaded, timeout=10_000):
        pass
    yield w
    w.shutdown()


def select(panel, name: str) -> int:
    from aldesk.ui.review_panel import COL_SCAN

    row = next(r for r in range(panel.model.rowCount()) if panel.model.index(r, COL_SCAN).data() == name)
    panel.select_row(row)
    return panel.current.scan_id


def test_panel_shows_both_readers_labels_and_notes_side_by_side(panel):
    assert panel.model.rowCount() == 3
    assert panel.current is not None  # the first (most in doubt) scan is on screen at once
    select(panel, "cxr_0.png")
    assert sorted(panel.reads_view.labels()) == [("dr_a", "normal", "clear lungs"),
                                                  ("dr_b", "pneumonia", "right lower lobe opacity")]
    texts = [c.note.text() for c in panel.reads_view.cards]
    assert "right lower lobe opacity" in texts and "clear lungs" in texts
    assert panel.viewer.scan_id == panel.current.scan_id
    assert "Deciding as dr_b (reviewer)" in panel.reviewer_label.text()
    select(panel, "cxr_1.png")
    assert sorted(panel.reads_view.labels()) == [("dr_a", "pneumonia", "patchy left base"), ("dr_b", "normal", "")]


def test_adjudicating_from_the_panel_stores_the_final_label_and_leaves_the_queue(qtbot, panel, review_project):
    scan = select(panel, "cxr_0.png")
    panel.choose("pneumonia")
    panel.reason.setText("opacity confirmed on the lateral view")
    with qtbot.waitSignal(panel.decided) as sig:
        qtbot.mouseClick(panel.decide_button, Qt.MouseButton.LeftButton)
    assert sig.args == [scan, "pneumonia"]
    with Project.open(review_project) as p:
        decisions = review.review_item(p, scan).decisions
    assert [(d.value, d.reason, d.reviewer) for d in decisions] == [
        ("pneumonia", "opacity confirmed on the lateral view", "dr_b")]
    assert panel.model.row_of(scan) == -1 and panel.model.rowCount() == 2
    assert panel.current is not None and panel.current.scan_id != scan  # on to the next scan
    assert "final label pneumonia" in panel.status_label.text()
    with qtbot.waitSignal(panel.queue_loaded, timeout=10_000):
        panel.refresh()
    assert panel.model.row_of(scan) == -1  # the store agrees: decided scans leave the queue


def test_a_decision_needs_a_reason_and_a_reviewer(qtbot, panel, review_project, message_boxes):
    scan = select(panel, "cxr_1.png")
    assert panel.decide("normal", "   ") is None
    assert "reason" in message_boxes[-1][2]
    shown = len(message_boxes)
    panel.set_reviewer("dr_a")
    assert "only a reviewer or lead" in panel.reviewer_label.text()
    # issue 13: the controls are disabled, with the reason, instead of an error after the click
    for w in (*panel.class_buttons.values(), panel.decide_button, panel.request_button, panel.reason):
        assert not w.isEnabled() and "only a reviewer or lead" in w.toolTip()
    assert panel.decide("normal", "looks fine") is None          # Ctrl+Enter still reaches decide()
    assert len(message_boxes) == shown and "only a reviewer or lead" in panel.status_label.text()
    assert panel.model.row_of(scan) >= 0
    with Project.open(review_project) as p:
        assert review.review_item(p, scan).decisions == []


def test_roles_are_managed_in_the_review_window_with_the_cli_rules(qtbot, panel, review_project, monkeypatch):
    from aldesk.ui.readers_dialog import ReadersDialog

    select(panel, "cxr_1.png")
    panel.set_reviewer("dr_a")
    assert not panel.decide_button.isEnabled()

    def promote(dialog):
        assert dialog.role_boxes["dr_a"].currentData() == "annotator"
        dialog.role_boxes["dr_a"].setCurrentIndex(dialog.role_boxes["dr_a"].findData("reviewer"))
        return 0

    monkeypatch.setattr(ReadersDialog, "exec", promote)
    panel.roles_button.click()
    assert panel.decide_button.isEnabled() and panel.reviewer_label.text() == "Deciding as dr_a (reviewer)"
    with Project.open(review_project) as p:
        assert p.labels.role("dr_a") == "reviewer"
    assert panel.decide("normal", "no consolidation") is not None


def test_readers_dialog_adds_readers_and_shows_the_use_case_errors(qtbot, review_project):
    from aldesk.ui.readers_dialog import ReadersDialog

    with Project.open(review_project) as p:
        dialog = ReadersDialog(p)
        qtbot.addWidget(dialog)
        assert set(dialog.role_boxes) == {"dr_a", "dr_b"}
        assert [dialog.table.item(i, 2).text() for i in range(2)] == ["8", "8"]
        dialog.new_name.setText("dr_lee")
        dialog.new_role.setCurrentIndex(dialog.new_role.findData("lead"))
        assert dialog.add_reader()
        assert p.labels.role("dr_lee") == "lead" and "dr_lee" in dialog.role_boxes
        assert dialog.message.text() == "dr_lee is now a lead"
        dialog.new_name.setText("   ")
        assert not dialog.add_reader() and "name" in dialog.message.text()
        assert not dialog.set_role("dr_a", "boss")
        assert "must be one of annotator, reviewer, lead" in dialog.message.text()


def test_requesting_a_read_from_the_panel(qtbot, panel, review_project):
    scan = select(panel, "cxr_2.png")
    panel.request_reason.setText("second look at the costophrenic angle")
    with qtbot.waitSignal(panel.read_requested):
        qtbot.mouseClick(panel.request_button, Qt.MouseButton.LeftButton)
    with Project.open(review_project) as p:
        item = review.review_item(p, scan)
    assert [(q.reviewer, q.reason, q.status) for q in item.requests] == [
        ("dr_b", "second look at the costophrenic angle", "open")]
    row = panel.model.row_of(scan)
    from aldesk.ui.review_panel import COL_STATUS

    assert panel.model.index(row, COL_STATUS).data() == "awaiting read"
    assert panel.model.counts() == {"to decide": 2, "awaiting read": 1}
    assert "Read requested by dr_b" in panel.reads_view.context.text()
    panel.waiting_check.setChecked(False)  # hide what waits for a read
    qtbot.waitUntil(lambda: panel.model.rowCount() == 2 and panel.model.row_of(scan) == -1, timeout=10_000)


# ====================================================================================== agreement
def test_agreement_view_shows_the_kappas_the_use_case_computes(qtbot, review_project):
    from aldesk.ui.agreement_view import AgreementView

    with Project.open(review_project) as p:
        expected = review.agreement(p, n_boot=200)
    view = AgreementView(review_project, theme="dark", n_boot=200)
    qtbot.addWidget(view)
    view.resize(1400, 800)
    with qtbot.waitSignal(view.computed, timeout=30_000) as sig:
        pass  # computed in a worker with its own connection
    report = sig.args[0]
    pair = expected["pairs"][0]
    assert (pair["a"], pair["b"]) == ("dr_a", "dr_b")
    assert report["pairs"][0]["cohen_kappa"] == pytest.approx(pair["cohen_kappa"])
    assert view.pair_kappas() == {("dr_a", "dr_b"): f"{pair['cohen_kappa']:.3f}"}
    pair_row = view.pairs.texts()[0]
    assert pair_row[2] == str(pair["n"]) == "7"
    assert pair_row[4] == f"[{pair['cohen_kappa_ci'][0]:.3f}, {pair['cohen_kappa_ci'][1]:.3f}]"
    overall = {row[0]: row for row in view.overall.texts()}
    assert overall["Fleiss' κ"][1] == f"{expected['fleiss_kappa']:.3f}"
    assert overall["Krippendorff's α (nominal)"][1] == f"{expected['krippendorff_alpha']:.3f}"
    assert overall["Fleiss' κ"][3] == str(expected["n_multi_read"])
    assert overall["Fleiss' κ"][4] == "moderate"  # 0.417, Landis & Koch
    readers = {row[0]: row for row in view.readers.texts()}
    assert set(readers) == {"dr_a", "dr_b"} and readers["dr_b"][1] == "reviewer" and readers["dr_b"][3] == "1"
    vs = {v["reader"]: v for v in expected["vs_consensus"]}
    assert readers["dr_a"][5] == f"{vs['dr_a']['cohen_kappa']:.3f}"
    # two readers: each only has the other to compare with, so accuracy is not estimated — and says why
    assert readers["dr_a"][8] == "n/a" and readers["dr_a"][9] == "not estimated"
    row = [r[0] for r in view.readers.texts()].index("dr_a")
    assert "one other reader only" in view.readers.item(row, 9).toolTip()
    assert "never with one that holds their own read" in view.caveat.text()
    titles = [a.get_title() for a in view._figure.axes]
    assert titles[0].startswith("dr_a") and titles[1].startswith("dr_b")  # a confusion matrix per reader
    view.shutdown()


def test_agreement_view_with_one_reader_and_bootstrap_zero(qtbot, tmp_path):
    from aldesk.ui.agreement_view import AgreementView

    write_png(tmp_path / "s" / "a.png", seed=1)
    path = tmp_path / "p"
    with Project.create(path, ["normal", "pneumonia"]) as p:
        import_paths(p, [tmp_path / "s"], jobs=1)
        record_label(p, int(p.scans.ids()[0]), "dr_a", "normal")
    view = AgreementView(path, n_boot=0)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.computed, timeout=30_000):
        pass
    assert view.pairs.texts()[0][0] == "Only one reader so far"
    assert "no intervals" in view.summary.text()
    view.shutdown()


# ====================================================================================== main window
def test_review_menu_opens_the_review_and_agreement_windows(qtbot, window):
    from aldesk.ui.agreement_view import AgreementView
    from aldesk.ui.review_panel import ReviewPanel

    win = window
    ids = [int(s) for s in win.project.scans.ids()[:2]]
    record_label(win.project, ids[0], "dr_x", "normal", note="clear")
    record_label(win.project, ids[0], "dr_y", "pneumonia", note="opacity")
    review.set_role(win.project, "dr_test", "lead")
    menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Review")
    actions = {a.text(): a for a in menu.actions()}
    actions["&Disputed scans (adjudication)…"].trigger()
    panel = next(w for w in win.findChildren(ReviewPanel))
    assert panel.isWindow() and panel.isVisible() and panel.reviewer == "dr_test"
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1, timeout=10_000)
    assert sorted(panel.reads_view.labels()) == [("dr_x", "normal", "clear"), ("dr_y", "pneumonia", "opacity")]
    assert win.show_review("review") is panel  # a second call raises the same window
    assert panel.decide("pneumonia", "lead's call") is not None
    assert [d.value for d in review.review_item(win.project, ids[0]).decisions] == ["pneumonia"]
    actions["&Agreement between readers…"].trigger()
    view = next(w for w in win.findChildren(AgreementView))
    with qtbot.waitSignal(view.computed, timeout=30_000):
        pass
    assert view.isWindow() and list(view.pair_kappas()) == [("dr_x", "dr_y")]
    panel.close()
    view.close()


def test_a_recomputed_queue_keeps_the_scan_and_the_reason_being_typed(qtbot, panel):
    scan = select(panel, "cxr_1.png")
    panel.choose("normal")
    panel.reason.setText("half typed")
    with qtbot.waitSignal(panel.queue_loaded, timeout=10_000):
        panel.refresh()
    assert panel.current.scan_id == scan
    assert panel.reason.text() == "half typed" and panel.chosen == "normal"
    assert panel.model.headerData(1, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole).startswith("How much")
