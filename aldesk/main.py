"""The ``aldesk`` command: the GUI when asked for (or with no arguments), the CLI otherwise.

The only module allowed above both aldesk.ui and aldesk.cli:
    aldesk                 the GUI on the demo project
    aldesk gui [PROJECT]   the GUI on PROJECT (default: the most recent project, else the demo)
    aldesk demo            the GUI on the demo project (built from resources/demo on first use)
    aldesk <command> ...   the command line (aldesk --help)
"""

from __future__ import annotations

import argparse
import sys

GUI_COMMANDS = ("gui", "demo")
GUI_HELP = """
desktop app:
  aldesk                 open the labelling workstation on the demo project
  aldesk gui [PROJECT]   open the labelling workstation on PROJECT (default: the most recent)
  aldesk demo            open the demo project (real sample scans, built on first use)"""


def _gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aldesk", description="Open the aldesk labelling workstation.")
    sub = parser.add_subparsers(dest="command", required=True)
    gui = sub.add_parser("gui", help="open the labelling workstation", description="Open the labelling workstation.")
    gui.add_argument("project", nargs="?", help="project folder (default: the most recent project, else the demo)")
    sub.add_parser("demo", help="open the demo project (real sample scans)",
                   description="Open the demo project, built from the sample scans shipped with aldesk.")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in GUI_COMMANDS:
        args = _gui_parser().parse_args(argv or ["demo"])
        from aldesk.ui.app import run

        if args.command == "demo":
            return run(demo=True)
        return run(args.project, demo=False)
    from aldesk.cli import main as cli_main

    if argv[0] == "selftest":  # the CLI never imports Qt: hand it the GUI step from here
        from aldesk.cli import selftest_command
        from aldesk.ui.selftest import open_main_window

        selftest_command.gui_check = open_main_window

    if argv[0] in ("-h", "--help"):
        try:
            return cli_main(argv)
        finally:  # the CLI's help exits via SystemExit; add the GUI commands it does not know
            print(GUI_HELP)
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
