"""``aldesk progress``: when can I stop labelling? (aldesk.app.progress)"""

from __future__ import annotations

from aldesk.cli.common import EXIT_OK, Bar, Interrupt, open_project, print_json


def _interval(pair) -> str:
    return "" if not pair else f" (95 % CI {pair[0]:.3f}–{pair[1]:.3f})"


def cmd_progress(args) -> int:
    from aldesk.app.progress import progress_report

    with open_project(args.project) as project, Interrupt() as stop:
        with Bar("progress", "step", quiet=args.quiet or args.json) as bar:
            report = progress_report(project, extractor=args.extractor, more=args.more, progress=bar,
                                     should_stop=stop)
    if args.json:
        print_json(report)
        return EXIT_OK
    audit = report["audit"]
    print(report["recommendation"])
    print()
    print(f"labels                 {report['labels']}")
    if report["audit_accuracy"] is not None:
        print(f"audit accuracy         {report['audit_accuracy']:.3f}{_interval(report['audit_ci'])}, "
              f"{audit['n']} audit scans")
        print(f"audit balanced acc.    {audit['balanced_accuracy']:.3f}{_interval(audit['balanced_ci'])}")
    else:
        print(f"audit accuracy         - ({audit['n']} audit scans read; {audit['drawn']} drawn, "
              f"audit share of the queue {audit['fraction']:.0%})")
    stab = report["stability"]
    if report["stability_kappa"] is not None:
        print(f"stability              κ {report['stability_kappa']:.4f} over the last {stab['window']} model pairs "
              f"({100 * stab['agreement']:.1f} % same prediction on the stop set)")
    else:
        print(f"stability              - ({len(stab['kappas'])} model pairs so far, {stab['window']} needed)")
    proj = report["projected"]
    if proj:
        print(f"projected              {proj['accuracy']:.3f}{_interval(proj['ci'])} at {proj['labels']} labels "
              f"(gain {proj['gain']:+.3f}{_interval(proj['gain_ci'])})")
    qr = report["queue_vs_random"]
    if qr:
        print(f"queue against random   with {qr['labels']} labels: queue {qr['queue_accuracy']:.3f}, random "
              f"{qr['random_accuracy']:.3f} (difference {qr['difference']:+.3f}{_interval(qr['difference_ci'])}, "
              f"on {qr['n']} audit scans)")
    if report["ceiling"]:
        print(f"readers' ceiling       {report['ceiling']['accuracy']:.3f} (readers against the consensus, "
              f"{report['ceiling']['n_multi_read']} scans read twice)")
    return EXIT_OK


def register(add) -> None:
    p = add("progress", cmd_progress, "when can I stop labelling? audit accuracy, stability, projection")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--more", type=int, default=200, metavar="N",
                   help="project the accuracy after N more labels (default 200)")
    p.add_argument("--extractor", default="default")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
