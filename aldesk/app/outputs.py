"""Write an output file whole or not at all, and say so plainly when the disk refuses.

``atomic_output(dest)`` yields a temporary path beside ``dest`` (``dest.writing``); when the block ends
normally the temporary is renamed over ``dest`` in one step, otherwise it is removed -- a full disk never
leaves a half-written ``x.aldpkg.writing`` behind -- and a disk error (full, read-only, not permitted) is
raised as ``StorageError`` naming ``dest`` and what to free. For package export, hand-outs, exports.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aldesk.errors import storage_error

TEMP_SUFFIX = ".writing"


@contextmanager
def atomic_output(dest: str | os.PathLike) -> Iterator[Path]:
    dest = Path(dest)
    tmp = dest.with_name(dest.name + TEMP_SUFFIX)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        yield tmp
        os.replace(tmp, dest)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # the disk that failed the write may fail this too; the error below says what to do
        disk = storage_error(exc, dest) if isinstance(exc, Exception) else None
        if disk is not None and disk is not exc:
            raise disk from exc
        raise
