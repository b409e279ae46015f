"""``aldesk progress``: when can I stop labelling? (aldesk.app.progress)"""

from __future__ import annotations

from aldesk.cli.common import EXIT_OK, Bar, Interrupt, open_project, print_json


def cmd_progress(args) -> int:
    from aldesk.app.progress import describe, progress_report

    with open_project(args.project) as project, Interrupt() as stop:
        with Bar("progress", "step", quiet=args.quiet or args.json) as bar:
            report = progress_report(project, extractor=args.extractor, more=args.more, progress=bar,
                                     should_stop=stop)
    if args.json:
        print_json(report)
        return EXIT_OK
    print(report["recommendation"])
    print()
    for name, text in describe(report):
        print(f"{name:22} {text}")
    return EXIT_OK


def register(add) -> None:
    p = add("progress", cmd_progress, "when can I stop labelling? audit accuracy, stability, projection")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--more", type=int, default=200, metavar="N",
                   help="project the accuracy after N more labels (default 200)")
    p.add_argument("--extractor", default=None, help="features to use (default: those of the newest model)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
