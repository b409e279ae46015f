"""Why this scan: plain words in the label panel for the scan being read, numbers one click away
(issue 13 point 7)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from aldesk.app.progress import AUDIT_REASON
from aldesk.app.worklist import Worklist
from aldesk.ui.why import details, plain_why

CLASSES = ["normal", "pneumonia"]
JARGON = ("entropy", "x typical", "k-means", "margin", "k-center", "cluster")


@pytest.mark.parametrize(("reason", "prediction", "expected"), [
    ("entropy 0.69, 1st most uncertain; far from labelled scans (1.4x typical)", ("pneumonia", 0.52),
     "The model is torn between normal and pneumonia; it is unlike the scans labelled so far."),
    ("entropy 0.50, 3rd most uncertain; close to labelled scans (0.8x typical)", ("normal", 0.75),
     "The model is unsure about it; it resembles scans already labelled."),
    ("entropy 0.62, 2nd most uncertain; typical of a group of 14 similar uncertain scans", ("normal", 0.6),
     "The model is torn between normal and pneumonia; it stands for 14 similar scans the model is unsure about."),
    ("margin score 0.40, 31st most uncertain; at a typical distance from labelled scans (1.0x typical); typical of a "
     "group of 96 similar uncertain scans; labels are still few (10.0 per class): typical scans come first (the "
     "uncertainty pre-filter keeps 50% of the pool, later 10%)", ("normal", 0.7),
     "The model is unsure about it; it is typical of 96 similar scans: while labels are few, typical scans teach "
     "the model most."),
    (AUDIT_REASON, ("normal", 0.9), "Picked at random from the whole project"),
    ("typical and diverse scan, cluster 3 of 10", None, "No model yet: this scan is typical of one group"),
])
def test_reasons_in_plain_words_without_jargon_or_the_leading_class(reason, prediction, expected):
    text = plain_why(reason, prediction, CLASSES, ranked=True)
    assert text.startswith(expected)
    assert not any(j in text.lower() for j in JARGON)
    if prediction is not None and prediction[1] >= 0.65:
        assert prediction[0] not in text            # the guess stays hidden: no automation bias


def test_the_numbers_are_one_click_away():
    text = details("entropy 0.69, 1st most uncertain", 0.693, ("pneumonia", 0.52), CLASSES, "hybrid")
    assert text.splitlines() == ["Model: pneumonia 52% / normal 48%", "hybrid: entropy 0.69, 1st most uncertain",
                                 "Score 0.693"]


def test_hybrid_words_agree_with_the_number_they_print():
    """'at a typical distance (0.8x)' beside 'close to labelled scans (0.8x)' was a contradiction."""
    from aldesk.learning.strategies import get_strategy

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 8)).astype(np.float32)
    y = np.full(400, -1)
    y[:40] = rng.integers(0, 2, 40)
    result = get_strategy("hybrid").query(X, y, candidates=np.arange(40, 400), batch_size=40, random_state=0,
                                          n_classes=2)
    for reason in result.reasons:
        m = re.search(r"(far from|close to|at a typical distance from) labelled scans \((\d\.\d)x typical\)", reason)
        if m:
            ratio = float(m.group(2))
            word = "far from" if ratio >= 1.2 else "close to" if ratio <= 0.8 else "at a typical distance from"
            assert m.group(1) == word, reason


def test_the_label_panel_says_why_for_the_scan_on_screen(qtbot, window):
    win = window
    ids = sorted(win.project.scans.ids().tolist(), reverse=True)
    wl = Worklist(to_label=np.array(ids, np.int64), strategy="hybrid",
                  scores={ids[0]: 0.69}, reasons={ids[0]: "entropy 0.69, 1st most uncertain; far from labelled "
                                                         "scans (1.5x typical)"},
                  predictions={ids[0]: ("pneumonia", 0.55)})
    win._apply_worklist(wl, first=True)
    panel = win.label_panel
    assert win.current_scan_id == ids[0]
    assert panel.why_label.text() == ("The model is torn between normal and pneumonia; it is unlike the scans "
                                      "labelled so far.")
    assert not panel.why_details.isVisibleTo(panel)
    panel.why_numbers.click()
    assert panel.why_details.isVisibleTo(panel) and "pneumonia 55% / normal 45%" in panel.why_details.text()
    win.label_current("normal")                       # the next scan was not among the picks: said so
    assert panel.why_label.text().startswith("Not among the model's latest picks")


def test_the_queue_says_why_in_the_same_plain_words(qtbot, window):
    win = window
    ids = sorted(win.project.scans.ids().tolist(), reverse=True)
    wl = Worklist(to_label=np.array(ids, np.int64), strategy="hybrid", scores={ids[0]: 0.69},
                  reasons={ids[0]: "entropy 0.69, 1st most uncertain; typical of a group of 5 similar uncertain scans"},
                  predictions={ids[0]: ("normal", 0.5)})
    win._apply_worklist(wl, first=True)
    text = win.queue_model.reasons[ids[0]]
    assert text == ("The model is torn between normal and pneumonia; it stands for 5 similar scans the model "
                    "is unsure about.")
    assert "k-means" not in win.queue_panel.strategy_label.text()
    assert win.queue_panel.strategy_label.text() == "Ranked by hybrid: the scans the model learns most from come first"
