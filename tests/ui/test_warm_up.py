"""The first retrain of a session does not wait for scikit-learn's import (~2 s cold): the window starts it in
a worker as it opens (issue 14: a GUI retrain at 20k labels < 5 s)."""


def test_window_imports_the_model_libraries_in_the_background(qtbot, real_project, monkeypatch):
    import threading

    import aldesk.ui.main_window as mw
    from aldesk.ui.settings import Settings

    ran = []
    real = mw.warm_up_body

    def recording():
        inner = real()

        def body(progress, should_stop):
            ran.append(threading.current_thread() is threading.main_thread())
            return inner(progress, should_stop)

        return body

    monkeypatch.setattr(mw, "warm_up_body", recording)
    monkeypatch.setattr(mw, "warm_up_due", lambda: True)  # as in a fresh process
    win = mw.MainWindow(Settings(), "dr_test", real_project, retrain_on_open=False)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: bool(ran), timeout=10_000)
    assert ran == [False]  # in a worker, never on the UI thread


def test_no_warm_up_when_already_imported(qtbot, real_project, monkeypatch):
    import aldesk.ui.main_window as mw
    from aldesk.ui.settings import Settings

    import sklearn.linear_model  # noqa: F401

    assert not mw.warm_up_due()
    monkeypatch.setattr(mw, "warm_up_body", lambda: (_ for _ in ()).throw(AssertionError("warm-up started")))
    win = mw.MainWindow(Settings(), "dr_test", real_project, retrain_on_open=False)
    qtbot.addWidget(win)
