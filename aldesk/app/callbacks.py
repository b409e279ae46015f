"""The progress/cancel protocol every long use case shares."""

from __future__ import annotations

from collections.abc import Callable

from aldesk.errors import CancelledError

Progress = Callable[[int, int, str], None]
ShouldStop = Callable[[], bool]


def no_progress(done: int, total: int, message: str) -> None:
    """Default progress callback: report nothing."""


def never_stop() -> bool:
    return False


def check_stop(should_stop: ShouldStop, what: str) -> None:
    if should_stop():
        raise CancelledError(f"{what} cancelled; everything finished before the stop is kept")
