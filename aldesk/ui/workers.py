"""Run plain functions off the GUI thread and hear back through signals (Orange3/superqt style).

A worker body is any callable ``body(progress, should_stop) -> result`` that knows nothing of Qt;
``Worker`` runs it on a QThreadPool and emits ``progress``, ``finished`` or ``failed`` on the GUI
thread. ``LatestOnly`` runs one kind of job at a time where a newer request supersedes the running
one: the running job is asked to stop (its ``should_stop`` turns true) and is marked stale, and only
the newest job's result is ever delivered. Never swallows an error: ``failed`` carries the exception.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from aldesk.errors import CancelledError

Body = Callable[[Callable[[int, int, str], None], Callable[[], bool]], Any]

PROGRESS_INTERVAL_S = 0.05  # at most 20 progress signals a second: never flood the event loop


class WorkerSignals(QObject):
    """Emitted from the pool thread; receivers are QObjects on the GUI thread, so delivery is queued.

    Every signal carries the worker's ``tag`` first, so one receiver can tell jobs apart without
    lambdas (a lambda has no thread of its own to queue to).
    """

    progress = Signal(int, int, int, str)
    finished = Signal(int, object)
    failed = Signal(int, object)      # the exception, with .traceback_text attached
    cancelled = Signal(int)


class Worker(QRunnable):
    """One run of ``body`` on a thread pool. Keep a reference to ``signals`` while it runs."""

    def __init__(self, body: Body, name: str = "work", tag: int = 0):
        super().__init__()
        self.setAutoDelete(False)
        self.body = body
        self.name = name
        self.tag = tag
        self.signals = WorkerSignals()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._last_progress = 0.0

    def cancel(self) -> None:
        self._stop.set()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _progress(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_INTERVAL_S or (total and done >= total):
            self._last_progress = now
            self.signals.progress.emit(self.tag, int(done), int(total), str(message))

    def run(self) -> None:  # runs on the pool thread
        try:
            result = self.body(self._progress, self._stop.is_set)
        except CancelledError:
            self.signals.cancelled.emit(self.tag)
        except BaseException as exc:  # noqa: BLE001 - every failure is handed to the GUI, never dropped
            exc.traceback_text = traceback.format_exc()
            if self._stop.is_set() and not isinstance(exc, Exception):
                self.signals.cancelled.emit(self.tag)
            else:
                self.signals.failed.emit(self.tag, exc)
        else:  # a body that returns after a stop request hands back what it finished (e.g. a partial import)
            self.signals.finished.emit(self.tag, result)
        finally:
            self._done.set()


class LatestOnly(QObject):
    """Run jobs of one kind one after another; a new request supersedes (cancels) the running one.

    Signals carry the generation number so listeners can tell jobs apart. ``finished`` fires only
    for the newest request; a superseded job's result is dropped (it was marked stale).
    """

    started = Signal(int)
    progress = Signal(int, int, str)
    finished = Signal(object)
    failed = Signal(object)
    idle = Signal()

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # serial: a stale job stops before the next touches the project
        self.generation = 0
        self._running: dict[int, Worker] = {}
        self.stale_dropped = 0

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def request(self, body: Body) -> int:
        """Start ``body``; any job still running or queued is asked to stop and marked stale."""
        for worker in self._running.values():
            worker.cancel()
        self.generation += 1
        gen = self.generation
        worker = Worker(body, f"{self.name} #{gen}", tag=gen)
        worker.signals.progress.connect(self._on_worker_progress)
        worker.signals.finished.connect(self._on_worker_finished)
        worker.signals.failed.connect(self._on_worker_failed)
        worker.signals.cancelled.connect(self._on_worker_cancelled)
        self._running[gen] = worker
        self.pool.start(worker)
        self.started.emit(gen)
        return gen

    def cancel(self) -> None:
        for worker in self._running.values():
            worker.cancel()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Ask every job to stop and wait for them (closing the window). True when all ended."""
        self.cancel()
        self.pool.clear()  # queued jobs that never started will never report: forget them below
        ended = self.pool.waitForDone(timeout_ms)
        if ended and self._running:
            self._running.clear()
            self.idle.emit()
        return ended

    def _is_current(self, gen: int) -> bool:
        return gen == self.generation

    def _forget(self, gen: int) -> None:
        self._running.pop(gen, None)
        if not self._running:
            self.idle.emit()

    def _on_worker_progress(self, gen: int, done: int, total: int, message: str) -> None:
        if self._is_current(gen):
            self.progress.emit(done, total, message)

    def _on_worker_finished(self, gen: int, result: Any) -> None:
        current = self._is_current(gen)
        if not current:
            self.stale_dropped += 1
        self._forget(gen)
        if current:
            self.finished.emit(result)

    def _on_worker_failed(self, gen: int, exc: BaseException) -> None:
        current = self._is_current(gen)
        self._forget(gen)
        if current:
            self.failed.emit(exc)

    def _on_worker_cancelled(self, gen: int) -> None:
        if not self._is_current(gen):
            self.stale_dropped += 1
        self._forget(gen)


_LIVE: set[Worker] = set()  # fire-and-forget jobs stay referenced until they report back


class _Relay(QObject):
    """Lives on the GUI thread and forwards a worker's signals to plain callables there."""

    def __init__(self, worker: Worker, on_finished, on_failed, on_progress, on_cancelled):
        super().__init__()
        self._worker = worker
        self._cbs = (on_finished, on_failed, on_progress, on_cancelled)

    def finished(self, _tag: int, result: Any) -> None:
        _LIVE.discard(self._worker)
        self._cbs[0](result)

    def failed(self, _tag: int, exc: BaseException) -> None:
        _LIVE.discard(self._worker)
        self._cbs[1](exc)

    def progress(self, _tag: int, done: int, total: int, message: str) -> None:
        if self._cbs[2] is not None:
            self._cbs[2](done, total, message)

    def cancelled(self, _tag: int) -> None:
        _LIVE.discard(self._worker)
        if self._cbs[3] is not None:
            self._cbs[3]()


def run_in_pool(body: Body, *, on_finished: Callable[[Any], None], on_failed: Callable[[BaseException], None],
                on_progress: Callable[[int, int, str], None] | None = None,
                on_cancelled: Callable[[], None] | None = None,
                pool: QThreadPool | None = None) -> Worker:
    """Fire one job on ``pool`` (default: the global pool); callbacks run on the GUI thread.

    The returned Worker can be cancelled; it is kept alive until it reports back."""
    worker = Worker(body)
    relay = _Relay(worker, on_finished, on_failed, on_progress, on_cancelled)
    worker.relay = relay
    _LIVE.add(worker)
    worker.signals.finished.connect(relay.finished)
    worker.signals.failed.connect(relay.failed)
    worker.signals.progress.connect(relay.progress)
    worker.signals.cancelled.connect(relay.cancelled)
    (pool or QThreadPool.globalInstance()).start(worker)
    return worker
