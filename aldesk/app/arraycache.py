"""Arrays derived from the project (the standardised feature pool, the training labels) kept in the
project's cache folder between processes, each under a key that changes whenever its inputs change.

A cache is never the only copy of anything: a missing, stale or unreadable file is recomputed, and a
file that cannot be written (read-only project, full disk) only costs the next call the same work.
Plain ``.npy`` arrays in a row (no pickles), replaced atomically.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import numpy as np

from aldesk.store import Project
from aldesk.store.project import CACHE_DIR_NAME

log = logging.getLogger(__name__)


def cached_arrays(project: Project, name: str, key: str, compute: Callable[[], tuple[np.ndarray, ...]],
                  ) -> tuple[np.ndarray, ...]:
    """``compute()``'s arrays, read from ``cache/<name>.npy`` when it was written under ``key``."""
    path = project.path / CACHE_DIR_NAME / f"{_safe_name(name)}.npy"
    try:
        with open(path, "rb") as fh:
            head = np.load(fh, allow_pickle=False)
            if str(head[0]) == key:
                return tuple(np.load(fh, allow_pickle=False) for _ in range(int(head[1])))
    except (OSError, ValueError, IndexError, EOFError):
        pass  # no cache yet, or an unreadable one: recomputed below
    arrays = tuple(compute())
    tmp = path.with_name(path.name + ".writing")
    try:
        path.parent.mkdir(exist_ok=True)
        with open(tmp, "wb") as fh:
            np.save(fh, np.array([key, str(len(arrays))]), allow_pickle=False)
            for a in arrays:
                np.save(fh, a, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        log.info("cache %s not written (%s); it is recomputed next time", path.name, exc.strerror)
    return arrays


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:80]
