"""Shared pieces of the command line: progress bar, Ctrl-C handling, JSON output.

Progress bars go to stderr, results to stdout (``--json`` prints one JSON object), so scripts can
pipe the output. Ctrl-C stops long work cleanly (a second Ctrl-C aborts at once).
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def open_project(path: str, *, allow_damaged: bool = False) -> Iterator:
    """``with open_project(path) as project:``; as the command ends, the scheduled backup starts in the
    background if the command wrote and one is due (so it holds this command's writes)."""
    from aldesk.app.backups import back_up_after_writes
    from aldesk.store import Project

    project = Project.open(path, allow_damaged=allow_damaged)
    if project.status.damaged:
        print(f"aldesk: warning: {project.status.describe()}", file=sys.stderr)
    if project.status.interrupted_imports:
        print(f"aldesk: note: {project.status.interrupted_imports} earlier import(s) were interrupted (the process "
              "was killed or crashed); what they committed is kept: run the same import again to finish",
              file=sys.stderr)
    at_open = project.commits()
    try:
        yield project
    finally:
        try:
            back_up_after_writes(project, at_open)
        finally:
            project.close()


class StrategyNames:
    """The query strategies' names as argparse ``choices``: `--help` lists them and an unknown name fails
    at parsing, before any feature is extracted. The registry is imported only when asked (it costs
    seconds of scikit-learn imports that commands other than rank and queue never need)."""

    def _names(self) -> tuple[str, ...]:
        from aldesk.learning.strategies import STRATEGY_NAMES

        return STRATEGY_NAMES

    def __contains__(self, name) -> bool:
        return name in self._names()

    def __iter__(self):
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


STRATEGY_HELP = "query strategy, one of: %(choices)s (default: %(default)s)"

# Options many commands share: one wording, filled in where a command gave none (build_parser).
STANDARD_HELP = {
    "project": "the project folder",
    "json": "print the result as one JSON object (for scripts)",
    "quiet": "no progress bar",
    "extractor": "feature extractor: default (= imagenet) | handcrafted | learned | onnx | imagenet (default: %(default)s)",
    "folds": "cross-validation folds (default: %(default)s)",
    "batch": "how many scans to return (default: %(default)s)",
    "seed": "random seed, for repeatable results (default: %(default)s)",
    "jobs": "worker processes (default: all cores)",
}


def fill_standard_help(parser) -> list[str]:
    """Give every option of ``parser`` and its subcommands a help text from STANDARD_HELP where it has
    none; returns 'command --option' for options still without one (tests/cli/test_cli_help.py)."""
    import argparse

    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += [f"{name} {m}" for m in fill_standard_help(sub)]
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)) and not action.help:
            action.help = STANDARD_HELP.get(action.dest)
            if not action.help:
                missing.append("/".join(action.option_strings) or action.dest)
    return missing
