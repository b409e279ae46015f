"""Use cases shared by the CLI and the GUI: plain functions over an open project.

Long-running ones take ``progress(done, total, message)`` and ``should_stop()`` callbacks, so the
CLI can draw a progress bar and the GUI can run them in a worker and cancel them. Never imports Qt.
"""
