"""The PySide6 6.12.0 / Python 3.11 reference-count guard: many Qt calls must not abort the process."""

import subprocess
import sys
import textwrap


def test_a_long_session_of_qt_calls_does_not_abort_the_interpreter():
    code = textwrap.dedent("""
        import aldesk.ui
        from PySide6.QtCore import QObject, Signal
        class S(QObject):
            ping = Signal(int)
        s = S(); s.ping.connect(lambda v: None)
        for i in range(50_000):
            s.setObjectName("x")     # a void method
            s.ping.emit(i)           # a Python-side emit
        print("alive")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "alive"
