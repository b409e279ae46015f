"""Commands for several readers: settings, annotator, queue, agreement, review."""

from __future__ import annotations

import sys

from aldesk.cli.common import EXIT_OK, STRATEGY_HELP, Bar, Interrupt, StrategyNames, open_project, print_json

EXIT_USAGE = 2


def _usage(command: str, message: str) -> int:
    print(f"aldesk {command}: {message}", file=sys.stderr)
    return EXIT_USAGE


def _on_off(text: str | None) -> bool | None:
    if text is None:
        return None
    return text.lower() in ("on", "yes", "true", "1")


def _fraction(text: str) -> float:
    """'0.2' or '20%'; anything else is left to the use case to refuse with its message."""
    text = text.strip()
    try:
        return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return text  # type: ignore[return-value]


def cmd_settings(args) -> int:
    from aldesk.app.progress import audit_fraction, set_audit_fraction
    from aldesk.app.review import update_review_settings

    with open_project(args.project) as project:
        if args.audit_fraction is not None:
            set_audit_fraction(project, _fraction(args.audit_fraction))
        settings = update_review_settings(
            project, reads_per_scan=args.reads_per_scan,
            double_read_fraction=None if args.double_read_fraction is None else _fraction(args.double_read_fraction),
            blind_reading=_on_off(args.blind_reading), ordered_classes=_on_off(args.ordered_classes))
        settings["audit_fraction"] = audit_fraction(project)
    if args.json:
        print_json(settings)
        return EXIT_OK
    print(f"reads per scan        {settings['reads_per_scan']}")
    print(f"double-read fraction  {settings['double_read_fraction']:.2f} "
          f"({settings['double_read_fraction']:.0%} of scans get at least two reads)")
    print(f"blind reading         {'on' if settings['blind_reading'] else 'off'}")
    print(f"ordered classes       {'yes' if settings['ordered_classes'] else 'no'}")
    print(f"audit fraction        {settings['audit_fraction']:.2f} "
          f"({settings['audit_fraction']:.0%} of the queue is uniformly random, to estimate accuracy)")
    return EXIT_OK


def cmd_annotator(args) -> int:
    from aldesk.app.review import readers, set_role

    with open_project(args.project) as project:
        if args.name is None:
            if args.role:
                return _usage("annotator", "--role needs a NAME: aldesk annotator PROJECT NAME --role reviewer")
            rows = readers(project)
        else:
            rows = [set_role(project, args.name, args.role or project.labels.role(args.name) or "annotator")]
    if args.json:
        print_json(rows if args.name is None else rows[0])
        return EXIT_OK
    for r in rows:
        print(f"{r['name']:24} {r['role']:10} {r['reads']} reads")
    return EXIT_OK


def cmd_queue(args) -> int:
    from aldesk.app.review import annotator_queue

    with open_project(args.project) as project, Interrupt() as stop:
        ranking = project.scans.ids()
        if args.ranked:
            from aldesk.app.modelling import rank

            with Bar("features", "scan", quiet=args.quiet or args.json) as bar:
                result = rank(project, strategy=args.strategy, batch=max(args.limit or 50, 1),
                              extractor=args.extractor, progress=bar, should_stop=stop)
            ranking = [r.scan_id for r in result.batch] + [int(s) for s in ranking]
        queue = annotator_queue(project, args.annotator, ranking, limit=args.limit)
        paths = {r.id: str(r.path) for r in project.scans.rows(queue)}
    if args.json:
        print_json({"annotator": args.annotator, "queue": [{"scan_id": s, "path": paths[s]} for s in queue]})
        return EXIT_OK
    print(f"{args.annotator}: {len(queue)} scans to read")
    for i, s in enumerate(queue, 1):
        print(f"{i:4}. {s:6}  {paths[s]}")
    return EXIT_OK


def _fmt(x, ci=None) -> str:
    if x is None:
        return "  n/a"
    text = f"{x:6.3f}"
    if ci:
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def cmd_agreement(args) -> int:
    from aldesk.app.review import agreement

    with open_project(args.project) as project:
        report = agreement(project, n_boot=args.bootstrap, random_state=args.seed)
    if args.json:
        print_json(report)
        return EXIT_OK
    c = report["consensus"]
    print(f"{report['n_items']} scans read, {report['n_multi_read']} by two or more readers; "
          f"consensus: {c['method']} ({c['n_final']} training labels, {c['n_adjudicated']} adjudicated)")
    ci = f"{report['confidence']:.0%} bootstrap CI over scans"
    print(f"percent agreement     {_fmt(report['percent_agreement'], report['percent_agreement_ci'])}  ({ci})")
    print(f"Fleiss' kappa         {_fmt(report['fleiss_kappa'], report['fleiss_kappa_ci'])}")
    print(f"Krippendorff's alpha  {_fmt(report['krippendorff_alpha'], report['krippendorff_alpha_ci'])}  nominal")
    if "krippendorff_alpha_ordinal" in report:
        print(f"Krippendorff's alpha  {_fmt(report['krippendorff_alpha_ordinal'], report['krippendorff_alpha_ordinal_ci'])}"
              "  ordinal")
    if report["pairs"]:
        print("pairs (Cohen's kappa on shared scans):")
        for p in report["pairs"]:
            print(f"  {p['a']:>16} / {p['b']:<16} n {p['n']:5}  kappa {_fmt(p['cohen_kappa'], p['cohen_kappa_ci'])}"
                  f"  agreement {_fmt(p['percent_agreement'])}")
    if report["readers"]:
        classes = report["classes"]
        print("readers, each against the other readers' consensus (never one holding their own read);")
        print("confusion: rows = the others' (or the adjudicated) class, columns = class given:")
        vs = {v["reader"]: v for v in report["vs_consensus"]}
        for r in report["readers"]:
            kappa = vs.get(r["name"], {}).get("cohen_kappa")
            accuracy = ("estimated accuracy n/a" if r["accuracy"] is None
                        else f"estimated accuracy {r['accuracy']:.3f}")
            print(f"  {r['name']} ({r['role']}): {r.get('reads', 0)} reads, {r.get('unsure', 0)} unsure, "
                  f"{accuracy}, kappa vs the others {_fmt(kappa).strip()}"
                  + (f" [{r['confusion_source']}]" if r["confusion_source"] else ""))
            if r.get("why"):
                print(f"      not estimated: {r['why']}")
                continue
            for cls, row in zip(classes, r["confusion"]):
                cells = "  ".join("  n/a" if v is None else f"{v:5.3f}" for v in row)
                print(f"      {cls:>14}: {cells}")
    return EXIT_OK


def _print_item(item, detailed: bool) -> None:
    print(f"{item.scan_id:6}  {item.impact:5.2f}  {item.status:13}  {', '.join(item.reasons):40}  {item.path}")
    if detailed:
        for r in item.reads:
            took = f", {r.duration_ms / 1000:.0f} s" if r.duration_ms else ""
            note = f"  \"{r.note}\"" if r.note else ""
            print(f"          {r.annotator:>16} ({r.role}): {r.value}{note}  [{r.created_at}{took}, {r.workstation}]")
        if item.consensus is not None:
            print(f"          consensus: {item.consensus.label} ({item.consensus.source}, weight {item.consensus.weight:.2f})")
        if item.suspect is not None:
            print(f"          model suggests {item.suspect.suggested} (p(given) {item.suspect.self_confidence:.2f}, "
                  f"margin {item.suspect.margin:.2f})")
        for d in item.decisions:
            print(f"          decided {d.value} by {d.reviewer} at {d.created_at}: {d.reason}")
        for q in item.requests:
            print(f"          read requested by {q.reviewer} at {q.created_at} ({q.status}){': ' + q.reason if q.reason else ''}")


def cmd_review(args) -> int:
    from aldesk.app import review

    modes = [m for m in ("list", "final", "request_read", "find_errors") if getattr(args, m)]
    if len(modes) > 1:
        return _usage("review", "give one of --list, --final, --request-read, --find-errors")
    if (args.final or args.request_read) and not (args.scan and args.reviewer):
        return _usage("review", "--final and --request-read need --scan ID and --reviewer NAME")
    if args.final and not args.reason:
        return _usage("review", "--final needs --reason TEXT (why this is the final label)")
    if not modes and not args.scan:
        return _usage("review", "give --list, --find-errors, or --scan ID (with --final LABEL or --request-read)")
    with open_project(args.project) as project, Interrupt() as stop:
        if args.find_errors:
            with Bar("label errors", "step", quiet=args.quiet or args.json) as bar:
                report = review.find_suspect_labels(project, extractor=args.extractor, folds=args.folds,
                                                    progress=bar, should_stop=stop)
            if args.json:
                print_json(report.to_json())
            else:
                print(f"{len(report.flagged)} of {report.examined} training labels look wrong to the model; "
                      "they are in the review queue as 'second opinion suggested'")
                for s in report.flagged[:20]:
                    print(f"  scan {s.scan_id:6}: labelled {s.given}, model says {s.suggested} (margin {s.margin:.2f})")
            return EXIT_OK
        if args.list:
            items = review.review_queue(project)
            if args.json:
                print_json({"items": [i.to_json() for i in items],
                            "counts": {s: sum(i.status == s for i in items) for s in ("to decide", "awaiting read")}})
                return EXIT_OK
            waiting = sum(i.status == "awaiting read" for i in items)
            print(f"{len(items)} scans to review ({len(items) - waiting} to decide, {waiting} awaiting another read); "
                  "most in doubt first")
            print("  scan  impact  status         reasons")
            for item in items:
                _print_item(item, detailed=True)
            return EXIT_OK
        scan_id = review.find_scan(project, args.scan)
        if args.final:
            review.adjudicate(project, scan_id, args.final, args.reason or "", args.reviewer)
            print(f"scan {scan_id}: final label {args.final} set by {args.reviewer}")
        elif args.request_read:
            review.request_read(project, scan_id, args.reviewer, args.reason or "")
            print(f"scan {scan_id}: another read requested; it is first in the queues of readers who have not read it")
        item = review.review_item(project, scan_id)
    if args.json:
        print_json(item.to_json())
    elif not (args.final or args.request_read):
        _print_item(item, detailed=True)
    return EXIT_OK


def register(add) -> None:
    p = add("settings", cmd_settings, "show or change how scans are shared among readers")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--reads-per-scan", type=int, metavar="N", help="independent reads every scan gets (1..5)")
    p.add_argument("--double-read-fraction", metavar="F",
                   help="share of scans that get at least two reads, 0..1 or a percentage (e.g. 0.2 or 20%%)")
    p.add_argument("--blind-reading", choices=("on", "off"),
                   help="hide other readers' labels and the model's guess until a reader's own read is saved")
    p.add_argument("--ordered-classes", choices=("on", "off"),
                   help="classes are ordered grades (adds ordinal alpha and weighted kappa)")
    p.add_argument("--audit-fraction", metavar="F",
                   help="share of the queue given to uniformly random audit scans, 0..0.5 (default 0.1; 0 = off)")
    p.add_argument("--json", action="store_true")

    p = add("annotator", cmd_annotator, "list readers, or add one / change their role")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("name", metavar="NAME", nargs="?", help="the reader to add or change (none: list every reader)")
    p.add_argument("--role", choices=("annotator", "reviewer", "lead"),
                   help="annotator reads; reviewer and lead also set final labels and ask for reads")
    p.add_argument("--json", action="store_true")

    p = add("queue", cmd_queue, "the scans a reader should read next (requested reads, second reads, ranking)")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--annotator", required=True, metavar="NAME", help="the reader whose queue to show")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="at most N scans (default: all)")
    p.add_argument("--ranked", action="store_true", help="follow the active-learning ranking (extracts features)")
    p.add_argument("--strategy", default="hybrid", choices=StrategyNames(), metavar="NAME", help=STRATEGY_HELP)
    p.add_argument("--extractor", default="default")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")

    p = add("agreement", cmd_agreement, "agreement between readers (kappas, alpha) and each reader's confusion matrix")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="resamples for the CIs (0 = none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")

    p = add("review", cmd_review, "disputed scans: list them, set a final label, or ask for another read")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--list", action="store_true", help="the reviewer's queue, most in doubt first")
    p.add_argument("--scan", metavar="ID|PATH", help="a scan (alone: show every read side by side)")
    p.add_argument("--final", metavar="LABEL", help="with --scan: the final label (a class)")
    p.add_argument("--reason", metavar="TEXT", help="why: stored with the final label or the read request")
    p.add_argument("--reviewer", metavar="NAME", help="who decides (role reviewer or lead)")
    p.add_argument("--request-read", action="store_true", help="with --scan: ask for another independent read")
    p.add_argument("--find-errors", action="store_true",
                   help="flag labels a model trained without them disagrees with (second opinion suggested)")
    p.add_argument("--extractor", default="default")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
