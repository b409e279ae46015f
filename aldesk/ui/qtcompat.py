"""Guard against a reference-counting bug in PySide6 6.12.0 on Python 3.11 (and older).

That build returns ``None`` from every void method and ``True`` from ``Signal.emit`` without taking
a reference, so each call drops one reference to ``None``/``True``. Python < 3.12 does not make
them immortal, and after a few thousand calls the interpreter aborts ("none_dealloc: deallocating
None"). An hour of labelling makes millions of such calls. PySide6 6.11.x is not affected; the
real fix is to install it (``pip install "PySide6-Essentials!=6.12.0"``) or run on Python >= 3.12.

``guard_refcount_bug`` probes for the bug (ten cheap calls) and, only if it is present, gives the
three singletons a reference count so large (2**60) that the lost references can never reach zero:
what Python 3.12 does for them anyway. They are never freed, so nothing else changes.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)
_BOOST = 2 ** 60
_applied = False


def refcount_bug_present() -> bool:
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(10):
        probe.setObjectName("probe")
        probe.ping.emit()
    return sys.getrefcount(None) < none_before - 5 or sys.getrefcount(True) < true_before - 5


def guard_refcount_bug() -> bool:
    """Apply the guard if this PySide6 has the bug; True when it was applied (once per process)."""
    global _applied
    if _applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return _applied
    if not refcount_bug_present():
        return False
    import PySide6

    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _BOOST  # ob_refcnt is PyObject's first field
    _applied = True
    log.warning("PySide6 %s drops references to None/True on every call (Python %s); guard applied. "
                "Install PySide6-Essentials 6.11.x or run on Python >= 3.12 for a clean fix.",
                PySide6.__version__, sys.version.split()[0])
    return True
