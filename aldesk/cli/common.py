"""Shared pieces of the command line: progress bar, Ctrl-C handling, JSON output.

Progress bars go to stderr, results to stdout (``--json`` prints one JSON object), so scripts can
pipe the output. Ctrl-C stops long work cleanly (a second Ctrl-C aborts at once).
"""

from __future__ import annotations

import json
import signal
import sys

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 130


class Interrupt:
    """First Ctrl-C asks the work to stop at the next safe point; the second one aborts."""

    def __init__(self):
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def __enter__(self):
        self._old = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self.requested:
                signal.signal(signal.SIGINT, self._old)
                raise KeyboardInterrupt
            self.requested = True
            print("\nstopping after the current batch (Ctrl-C again to abort)...", file=sys.stderr)

        signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._old)


class Bar:
    """A tqdm bar on stderr fed by the use cases' progress(done, total, message) callback."""

    def __init__(self, desc: str, unit: str, quiet: bool = False):
        from tqdm import tqdm

        self._bar = tqdm(desc=desc, unit=unit, file=sys.stderr, disable=quiet, dynamic_ncols=True,
                         smoothing=0.1, mininterval=0.25)

    def __call__(self, done: int, total: int, message: str) -> None:
        if total and self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)
        if message:
            self._bar.set_postfix_str(message, refresh=False)

    def close(self):
        self._bar.close()

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def open_project(path: str):
    from aldesk.store import Project

    project = Project.open(path)
    project.backup_if_due()  # the daily safety copy (seconds on a very large project, once a day)
    return project


