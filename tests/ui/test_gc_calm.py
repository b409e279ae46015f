"""The GUI keeps the garbage collector from freezing it during a retrain (see aldesk.ui.app)."""

import gc


def test_create_app_freezes_start_up_objects_and_collects_rarely(qapp):
    from aldesk.ui.app import GC_THRESHOLDS, create_app

    before = gc.get_threshold()
    try:
        create_app()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 10_000  # modules, classes, Qt wrappers: out of every collection's walk
    finally:
        gc.set_threshold(*before)
