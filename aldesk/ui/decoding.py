"""Decode scans off the GUI thread and keep the last few in memory, so the next scan shows at once.

``FrameCache.request`` decodes one scan (``aldesk.imaging.read_frames``) on a small thread pool and
emits ``decoded`` on the GUI thread; ``prefetch`` does the same for the scans the reader will see
next. Decoded frames are kept in an LRU bounded by bytes. A failure is emitted as ``decode_failed``
with the exception (the viewer shows it), never dropped.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from aldesk.imaging.display import DisplayParams
from aldesk.ui.workers import Worker

DEFAULT_BUDGET_BYTES = 768 * 1024 * 1024


def _decode_body(path: str):
    def body(progress, should_stop):
        from aldesk.imaging import read_frames

        return read_frames(path)

    return body


class FrameCache(QObject):
    decoded = Signal(int, object, object)        # scan id, frames, DisplayParams
    decode_failed = Signal(int, object)          # scan id, exception

    def __init__(self, parent: QObject | None = None, budget_bytes: int = DEFAULT_BUDGET_BYTES, threads: int = 2):
        super().__init__(parent)
        self.budget_bytes = budget_bytes
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self.pool.setExpiryTimeout(-1)  # keep the threads: starting one costs ~1.5 ms on the key-press path
        self._cache: OrderedDict[int, tuple[np.ndarray, DisplayParams]] = OrderedDict()
        self._bytes = 0
        self._pending: dict[int, Worker] = {}
        self.errors: dict[int, BaseException] = {}

    def get(self, scan_id: int) -> tuple[np.ndarray, DisplayParams] | None:
        hit = self._cache.get(scan_id)
        if hit is not None:
            self._cache.move_to_end(scan_id)
        return hit

    def __contains__(self, scan_id: int) -> bool:
        return scan_id in self._cache

    def is_pending(self, scan_id: int) -> bool:
        return scan_id in self._pending

    def request(self, scan_id: int, path: str, *, urgent: bool = True) -> bool:
        """Start decoding unless cached or already under way. True when the result is already cached."""
        if scan_id in self._cache:
            self._cache.move_to_end(scan_id)
            return True
        if scan_id in self._pending:
            return False
        worker = Worker(_decode_body(path), f"decode {scan_id}", tag=scan_id)
        worker.signals.finished.connect(self._on_worker_finished)
        worker.signals.failed.connect(self._on_worker_failed)
        self._pending[scan_id] = worker
        self.pool.start(worker, 1 if urgent else 0)
        return False

    def prefetch(self, items: list[tuple[int, str]]) -> None:
        for scan_id, path in items:
            if scan_id not in self.errors:
                self.request(scan_id, path, urgent=False)

    def clear(self) -> None:
        self._cache.clear()
        self._bytes = 0
        self.errors.clear()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        self.pool.clear()
        return self.pool.waitForDone(timeout_ms)

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    def _put(self, scan_id: int, frames: np.ndarray, params: DisplayParams) -> None:
        self._cache[scan_id] = (frames, params)
        self._bytes += frames.nbytes
        while self._bytes > self.budget_bytes and len(self._cache) > 1:
            _, (old, _) = self._cache.popitem(last=False)
            self._bytes -= old.nbytes

    def _on_worker_finished(self, scan_id: int, result) -> None:
        self._pending.pop(scan_id, None)
        frames, params = result
        self._put(scan_id, frames, params)
        self.decoded.emit(scan_id, frames, params)

    def _on_worker_failed(self, scan_id: int, exc: BaseException) -> None:
        self._pending.pop(scan_id, None)
        self.errors[scan_id] = exc
        self.decode_failed.emit(scan_id, exc)
