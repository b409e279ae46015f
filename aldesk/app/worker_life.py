"""Worker processes that die with the process that started them, even when it is killed with SIGKILL.

A tiny module on purpose (standard library only): a pool's initializer is imported before it runs, so
arming the parent-death signal here happens as early in a spawned worker's life as possible, before the
heavy imports of the work itself.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` dies (nothing else would tell a worker blocked on its queue).

    Linux: the kernel's parent-death signal (prctl PR_SET_PDEATHSIG); a parent already gone by then is
    caught by comparing ``getppid``. Elsewhere, or if prctl fails: a daemon thread polling ``getppid``."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent_pid:  # the parent died before the signal was armed
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="aldesk-parent-watch", daemon=True).start()


def init_worker(parent_pid: int, initializer: str, *initargs) -> None:
    """Pool initializer: arm the parent-death signal first, then run ``initializer`` ("module:function")."""
    die_with_parent(parent_pid)
    module, name = initializer.split(":")
    getattr(importlib.import_module(module), name)(*initargs)
