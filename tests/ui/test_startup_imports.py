"""The first window appears before the DICOM reader is imported (pydicom takes ~0.8 s to import)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_first_window_does_not_import_pydicom(tmp_path):
    script = textwrap.dedent("""
        import sys
        from aldesk.ui.app import create_app
        from aldesk.ui.main_window import MainWindow
        from aldesk.ui.settings import Settings
        app = create_app()
        win = MainWindow(Settings(), "dr_start", None)
        win.show()
        app.processEvents()
        print(sorted(m for m in ("pydicom", "sklearn", "skimage") if m in sys.modules))
    """)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "ALDESK_CONFIG_DIR": str(tmp_path / "config"),
           "ALDESK_LOG_DIR": str(tmp_path / "logs"), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.strip().splitlines()[-1]
    assert "pydicom" not in loaded, f"imported before the first window: {loaded}"
