"""ScanQueueModel without any view: paging, roles, lazy metadata and thumbnails, label updates."""

import numpy as np
import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QPixmap

from aldesk.store import Project
from aldesk.ui import queue_model as qm
from aldesk.ui.queue_model import (
    COL_LABEL, COL_NAME, COL_REASON, COL_SCORE, COL_THUMB, LabelRole, PathRole, ReasonRole, ScanIdRole,
    ScanQueueModel, ScoreRole,
)


@pytest.fixture
def model(qtbot, real_project):
    project = Project.open(real_project)
    m = ScanQueueModel(project)
    yield m
    project.close()


def test_rows_follow_the_given_order_with_scores_and_reasons(model):
    ids = model.project.scans.ids()[::-1]
    model.set_entries(ids, scores={int(ids[0]): 0.91}, reasons={int(ids[0]): "entropy 0.69, most uncertain"})
    assert model.rowCount() == len(ids) == 12
    assert model.columnCount() == 5
    top = model.index(0, COL_NAME)
    assert top.data(ScanIdRole) == int(ids[0])
    assert top.data(ScoreRole) == pytest.approx(0.91)
    assert top.data(ReasonRole) == "entropy 0.69, most uncertain"
    assert model.index(0, COL_SCORE).data() == "0.910"
    assert model.index(0, COL_REASON).data() == "entropy 0.69, most uncertain"
    assert "entropy 0.69" in model.index(0, COL_NAME).data()       # second line of the name
    assert model.index(1, COL_SCORE).data() == ""                  # not ranked: no score
    assert model.index(0, COL_NAME).data(PathRole).endswith(".dcm") or model.index(0, COL_NAME).data(PathRole).endswith(".png")


def test_thumbnail_is_the_stored_preview_loaded_once_then_cached(model):
    model.set_entries(model.project.scans.ids())
    pix = model.index(0, COL_THUMB).data(Qt.ItemDataRole.DecorationRole)
    assert isinstance(pix, QPixmap) and not pix.isNull()
    assert max(pix.width(), pix.height()) == model.thumb_size
    model.index(0, COL_THUMB).data(Qt.ItemDataRole.DecorationRole)
    assert model.thumb_loads == 1
    assert model.index(0, COL_NAME).data(Qt.ItemDataRole.DecorationRole) is None


def test_pages_are_fetched_on_demand_and_metadata_is_read_a_page_at_a_time(model, monkeypatch):
    monkeypatch.setattr(qm, "PAGE", 5)
    ids = model.project.scans.ids()
    model.set_entries(ids)
    assert model.rowCount() == 5 and model.canFetchMore(QModelIndex())
    model.fetchMore(QModelIndex())
    assert model.rowCount() == 10
    model.fetchMore(QModelIndex())
    assert model.rowCount() == 12 and not model.canFetchMore(QModelIndex())
    queries = model.meta_queries
    for row in range(5):
        model.index(row, COL_NAME).data()
    assert model.meta_queries == queries + 1  # one query for the whole page


def test_row_of_loads_pages_up_to_a_far_row(model, monkeypatch):
    monkeypatch.setattr(qm, "PAGE", 4)
    ids = model.project.scans.ids()
    model.set_entries(ids)
    assert model.row_of(int(ids[10])) == 10
    assert model.rowCount() >= 11
    assert model.row_of(999_999) == -1


def test_set_label_updates_the_row_and_next_unread_skips_it(qtbot, model):
    ids = model.project.scans.ids()
    model.set_entries(ids)
    with qtbot.waitSignal(model.dataChanged) as sig:
        model.set_label(int(ids[0]), "pneumonia")
    assert sig.args[0].row() == 0
    assert model.index(0, COL_LABEL).data() == "pneumonia"
    assert model.index(0, COL_NAME).data(LabelRole) == "pneumonia"
    assert model.index(0, COL_NAME).data(Qt.ItemDataRole.ForegroundRole) is not None  # greyed
    assert model.next_unread(None, 2) == [int(ids[1]), int(ids[2])]
    assert model.next_unread(int(ids[1]), 1) == [int(ids[2])]
    model.set_label(int(ids[0]), None)
    assert model.next_unread(None, 1) == [int(ids[0])]


def test_reset_keeps_caches_and_100k_ids_cost_nothing_until_shown(qtbot, model):
    model.set_entries(model.project.scans.ids())
    model.index(0, COL_THUMB).data(Qt.ItemDataRole.DecorationRole)
    big = np.arange(1, 100_001, dtype=np.int64)
    with qtbot.waitSignal(model.modelReset):
        model.set_entries(big)
    assert model.total == 100_000
    assert model.rowCount() == qm.PAGE          # only the first page is exposed
    assert model.cached_thumbnails == 1         # nothing was loaded for 100,000 rows
    assert model.row_of(99_999) == 99_998


def test_headers(model):
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(5)] == list(qm.HEADERS)


# ------------------------------------------------------------------ search and sort (issue 13 point 9)
def test_search_and_sort_change_what_is_listed(qtbot, window):
    from aldesk.ui.queue_model import COL_NAME, COL_SCORE, COL_THUMB

    win = window
    model = win.queue_model
    ids = win.project.scans.ids().tolist()
    names = {s: model.meta(s).relpath.split("/")[-1] for s in ids}
    dicoms = sorted(s for s in ids if names[s].endswith(".dcm"))
    model.set_search("DCM")                                      # any case, file names only
    assert sorted(model.ids.tolist()) == dicoms and model.total == 2
    model.set_search("")
    assert model.total == len(ids)
    model.sort(COL_NAME, Qt.SortOrder.AscendingOrder)
    listed = [names[s] for s in model.ids.tolist()]
    assert listed == sorted(listed, key=str.lower)
    model.sort(COL_NAME, Qt.SortOrder.DescendingOrder)
    assert [names[s] for s in model.ids.tolist()] == sorted(listed, key=str.lower, reverse=True)
    scores = {ids[3]: 0.9, ids[5]: 0.1}
    model.set_entries(np.array(ids, np.int64), scores=scores)    # the sort survives a new ranking
    model.sort(COL_SCORE, Qt.SortOrder.DescendingOrder)
    assert model.ids.tolist()[:2] == [ids[3], ids[5]]            # ranked first, unranked after
    model.sort(COL_THUMB)                                        # the first column: ranking order again
    assert model.ids.tolist() == ids


def test_the_search_box_filters_the_queue_and_never_labels(qtbot, window, real_project):
    from PySide6.QtWidgets import QApplication

    from tests.ui.conftest import label_values

    win = window
    panel = win.queue_panel
    win.activateWindow()
    panel.search.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is panel.search)
    qtbot.keyClicks(panel.search, "small_10")                   # "1" would label class 1 on the scan
    qtbot.waitUntil(lambda: win.queue_model.total == 1, timeout=3000)
    assert label_values(real_project) == {} and "matching “small_10”" in panel.count_label.text()
    qtbot.keyClick(panel.search, Qt.Key.Key_Return)
    assert QApplication.focusWidget() is win.viewer
