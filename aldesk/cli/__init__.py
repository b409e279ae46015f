"""The command line: argparse in front of the use cases in aldesk.app. Never imports Qt.

Progress bars go to stderr, results to stdout (``--json`` prints one JSON object), so scripts can
pipe the output. Ctrl-C stops long work cleanly (a second Ctrl-C aborts at once).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from aldesk import __version__
from aldesk.app.logs import redact, setup_logging
from aldesk.cli import (export_commands, learning_commands, progress_commands, project_commands, review_commands,
                        selftest_command)
from aldesk.cli.common import EXIT_CANCELLED, EXIT_ERROR, EXIT_OK, fill_standard_help
from aldesk.errors import AldeskError, CancelledError, storage_error

log = logging.getLogger("aldesk.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aldesk", description="Label medical scans with active learning.")
    parser.add_argument("--version", action="version", version=f"aldesk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    project_commands.register(add)
    learning_commands.register(add)
    progress_commands.register(add)
    export_commands.register(add)
    review_commands.register(add)
    selftest_command.register(add)
    fill_standard_help(parser)
    return parser


def _path_arguments(args: argparse.Namespace) -> list[str]:
    """The command's arguments that name files or folders (they name patients too): masked in the log
    even where a message quotes them bare; the message on screen keeps them."""
    found = []
    for value in vars(args).values():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and v and (os.sep in v or "/" in v or os.path.exists(v)):
                found.append(v)
    return found


def _fullest_path(args: argparse.Namespace) -> str | None:
    """Of the paths a command was given, the one on the disk with the least free space: what a write that
    failed for space without naming its file (SQLite, a zip member) most likely wrote to."""
    import shutil
    from pathlib import Path

    best, best_free = None, None
    for arg in _path_arguments(args):
        p = Path(arg).absolute()
        while not p.exists() and p != p.parent:
            p = p.parent
        try:
            free = shutil.disk_usage(p).free
        except OSError:
            continue
        if best_free is None or free < best_free:
            best, best_free = arg, free
    return best


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging()
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_OK
    log.info("aldesk %s: %s", __version__, args.command)
    try:
        return args.func(args)
    except BrokenPipeError:
        return _reader_went_away()
    except CancelledError as exc:
        print(f"aldesk: {exc}", file=sys.stderr)
        return EXIT_CANCELLED
    except AldeskError as exc:
        log.error("%s failed: %s", args.command, redact(str(exc), known=_path_arguments(args)))
        print(f"aldesk: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a full or read-only disk (OSError, sqlite3) is a message, not a traceback
        disk = storage_error(exc, _fullest_path(args))
        if disk is None:
            raise
        log.error("%s failed: %s", args.command, redact(str(disk), known=_path_arguments(args)))
        print(f"aldesk: error: {disk}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("aldesk: aborted", file=sys.stderr)
        return EXIT_CANCELLED


def _reader_went_away() -> int:
    """`aldesk ... | head`: the reader closed the pipe, which is not an error. Point stdout at devnull so
    the interpreter's final flush cannot raise again, and end quietly (as `cat | head` does)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no real file (a test's capture): nothing to silence
        pass
    return EXIT_OK
