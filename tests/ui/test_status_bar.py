"""The status bar says what is saved and what the model was trained on, apart (issue 13 point 8).

"No model yet · 0 labels" after seven saved labels read as "nothing saved".
"""

from __future__ import annotations

import numpy as np

from aldesk.app.worklist import Worklist
from aldesk.store import Project
from aldesk.ui.status_bar import WorkStatusBar


def test_saved_labels_are_counted_apart_from_the_models_training_size(qtbot, window, real_project):
    win = window
    assert win.status.saved_status.text() == "0 labels saved"
    for _ in range(7):
        win.label_current("normal")
    assert win.status.saved_status.text() == "7 labels saved"
    assert win.status.model_status.text() == "No model yet"          # no "0 labels" beside it
    win.undo_last()
    assert win.status.saved_status.text() == "6 labels saved"


def test_other_readers_labels_are_counted_and_mine_said_apart(qtbot, window, real_project):
    from aldesk.app.labelling import record_label

    ids = window.project.scans.ids().tolist()
    record_label(window.project, ids[-1], "dr_other", "pneumonia")
    window.label_current("normal")
    assert window.status.saved_status.text() == "2 labels saved (1 yours)"


def test_model_status_names_the_training_size(qtbot):
    bar = WorkStatusBar()
    qtbot.addWidget(bar)
    bar.show_model(Worklist(to_label=np.zeros(0, np.int64), metrics={"labels": 40, "accuracy": 0.81, "ece": 0.04},
                            model_id=3, n_labels=45))
    assert bar.model_status.text().startswith("Model v3 trained on 40 labels · accuracy 0.81")
    bar.show_saved(45, 45)
    assert bar.saved_status.text() == "45 labels saved"
