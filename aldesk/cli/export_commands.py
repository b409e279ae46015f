"""Commands that move labels out of a project: export, package export/import/handout."""

from __future__ import annotations

import sys
from pathlib import Path

from aldesk.cli.common import EXIT_ERROR, EXIT_OK, Bar, Interrupt, open_project, print_json


def cmd_export(args) -> int:
    from aldesk.app.export import ExportOptions, export_labelled_set, parse_private, parse_splits

    options = ExportOptions(format=args.format, splits=parse_splits(args.splits), seed=args.seed,
                            include_identifiers=args.include_identifiers, dicom_as=args.dicom_as,
                            shift_dates=args.shift_dates, clean_descriptors=args.clean_descriptors,
                            include_burned_in=args.include_burned_in,
                            keep_private=tuple(parse_private(t) for t in args.keep_private or ()))
    with open_project(args.project) as project, Interrupt() as stop:
        with Bar("export", "scan", quiet=args.quiet or args.json) as bar:
            result = export_labelled_set(project, args.out, options, progress=bar, should_stop=stop)
    if args.json:
        print_json(result.to_json())
        return EXIT_OK
    counts = result.manifest["counts"]
    print(f"exported {result.scans} labelled scans to {result.out} ({result.manifest['index']}, manifest.json)")
    print("  per class: " + ", ".join(f"{k} {v}" for k, v in counts["per_class"].items()))
    for split, per in counts["per_split"].items():
        print(f"  {split:5}: {sum(per.values())} scans, {counts['patients_per_split'][split]} patients")
    if result.burned_in_left_out:
        print(f"  left out: {len(result.burned_in_left_out)} images that may show burned-in text "
              f"(scans {', '.join(str(x['scan_id']) for x in result.burned_in_left_out[:10])}"
              f"{', ...' if len(result.burned_in_left_out) > 10 else ''})")
    print("  identifiers: " + ("INCLUDED (as asked)" if options.include_identifiers else
                               "none (pseudonymous patient key only; DICOM de-identified)"))
    for w in result.warnings:
        print(f"  warning: {w}")
    return EXIT_OK


def cmd_package_export(args) -> int:
    from aldesk.app.packages import export_package

    with open_project(args.project) as project:
        summary = export_package(project, args.out, annotator=args.annotator, since=args.since)
    if args.json:
        print_json(summary.to_json())
        return EXIT_OK
    print(f"wrote {summary.path}: {summary.labels} labels ({summary.current} current) on {summary.scans} scans "
          f"by {', '.join(summary.annotators) or 'nobody'}" + (f", {summary.reviews} reviews" if summary.reviews else ""))
    return EXIT_OK


def cmd_package_import(args) -> int:
    from aldesk.app.packages import import_package

    if args.allow_other_project:
        print("error: --allow-other-project is no longer enough: a package is merged only under a key this project "
              "holds. To merge another project, its lead runs `aldesk package trust THEIR_PROJECT --export-key "
              f"KEY.json` and you run `aldesk package trust {args.project} --add-key KEY.json`, once", file=sys.stderr)
        return EXIT_ERROR
    with open_project(args.project) as project, Interrupt() as stop:
        with Bar("merge", "label", quiet=args.quiet or args.json) as bar:
            result = import_package(project, args.package, progress=bar, should_stop=stop)
    if args.json:
        print_json(result.to_json())
        return EXIT_OK
    c = result.counts
    print(f"merged {result.path} from {result.sender.name}: {c.added} labels added, {c.unchanged} already here; "
          f"current reads: {c.current_added} new, {c.current_changed} changed, {c.current_retracted} retracted; "
          f"{c.history_updated} history links updated, {c.resolved} conflicting current labels resolved "
          "(newest wins, history kept)")
    if c.reviews_added:
        print(f"  {c.adjudications_added} adjudications and {c.read_requests_added} read requests added")
    if c.annotators_added:
        print("  new readers: " + ", ".join(f"{n} ({r})" for n, r in sorted(c.annotators_added.items())))
    if result.rejected:
        print(f"  REJECTED {len(result.rejected)} rows (not merged; the rest was):")
        for r in result.rejected:
            print(f"    {r['member']} line {r['line']}: {r['id']} by {r['reader']}: {r['reason']}")
    return EXIT_OK


def cmd_package_handout(args) -> int:
    from aldesk.app.handout import handout

    if args.deidentified == args.identified:
        print("error: choose what the hand-out carries: --deidentified (scans copied de-identified under "
              "pseudonymous names) or --identified (the original scans, with patient identifiers)", file=sys.stderr)
        return 2
    with open_project(args.project) as project, Interrupt() as stop:
        with Bar("hand-out", "file", quiet=args.quiet or args.json) as bar:
            result = handout(project, args.out, annotator=args.annotator, scans=args.scans,
                             with_scans=args.with_scans, deidentified=args.deidentified, role=args.role,
                             progress=bar, should_stop=stop)
    if args.json:
        print_json(result.to_json())
        return EXIT_OK
    if not result.deidentified:
        print(f"WARNING: {result.warnings[0]}", file=sys.stderr)
    print(f"hand-out for {result.annotator} ({result.role}) at {result.out}: {result.scans} scans, "
          + ("de-identified" if result.deidentified else "IDENTIFIED")
          + (f", {result.files_copied} files copied" if result.files_copied else "")
          + ("; blind (other readers' labels and the model left out)" if result.blind else ""))
    print(f"  chosen by: {result.selection}")
    print(f"  back: aldesk package export {result.out} work.aldpkg, then aldesk package import MASTER work.aldpkg")
    for w in result.warnings[0 if result.deidentified else 1:]:
        print(f"  warning: {w}")
    return EXIT_OK


def cmd_package_trust(args) -> int:
    from aldesk.app.packages import add_trust_key, export_trust_key, trust_list

    with open_project(args.project) as project:
        if args.export_key:
            out = export_trust_key(project, args.export_key)
            text = (f"wrote a key of {out['project_name']!r} to {out['file']}: give it in person to the other "
                    f"project's lead (`aldesk package trust THEIR_PROJECT --add-key {Path(out['file']).name}`), "
                    "then delete it; from now on this project's packages are accepted there")
        elif args.add_key:
            out = add_trust_key(project, args.add_key)
            text = (f"this project now accepts packages of {out['project_name']!r} (id {out['project_id']}, "
                    f"key {out['key_id']})")
        else:
            out = trust_list(project)
            lines = [f"hand-outs issued: {len(out['handouts'])}"]
            lines += [f"  {h['id']}  {h['reader']} ({h['role']}), {h['issued_at']}, "
                      f"{'de-identified' if h['deidentified'] else 'identified'}" for h in out["handouts"]]
            lines += [f"keys given to other projects: {len(out['given'])}"]
            lines += [f"  {k['key_id']}  {k['created']}" for k in out["given"]]
            lines += [f"projects trusted: {len(out['trusted'])}"]
            lines += [f"  {k['project_name']} ({k['project_id']}), key {k['key_id']}" for k in out["trusted"]]
            text = "\n".join(lines)
    if args.json:
        print_json(out)
    else:
        print(text)
    return EXIT_OK


def cmd_package(args) -> int:
    print("usage: aldesk package {export,import,handout,trust} ... (aldesk package --help)", file=sys.stderr)
    return 2


def register(add) -> None:
    p = add("export", cmd_export, "export the labelled set (CSV, JSON or class folders) with splits and a manifest")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("out", metavar="OUT", help="a new (or empty) folder")
    p.add_argument("--format", required=True, choices=("csv", "json", "folders"),
                   help="csv or json: one row per scan; folders: images copied into one folder per class")
    p.add_argument("--splits", metavar="70,15,15", help="train,val,test (or train,test) percentages; "
                   "stratified by class, grouped by patient")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    p.add_argument("--include-identifiers", action="store_true",
                   help="write patient identifiers and original DICOM files (off by default; recorded in the manifest)")
    p.add_argument("--dicom-as", choices=("dicom", "png"), default="dicom",
                   help="with --format folders: de-identified DICOM (default) or PNG through the display pipeline")
    p.add_argument("--shift-dates", action="store_true",
                   help="de-identified DICOM: shift dates by a per-patient number of days instead of removing them "
                        "(intervals between a patient's studies kept)")
    p.add_argument("--clean-descriptors", action="store_true",
                   help="de-identified DICOM: keep study/series/protocol descriptions with names, IDs, dates and "
                        "long numbers removed")
    p.add_argument("--keep-private", action="append", metavar="CREATOR:GROUP:OFFSET",
                   help="de-identified DICOM: keep this private attribute (a safe-private list, repeat for more; "
                        "e.g. 'SIEMENS CSA HEADER:0029:08'); every other private attribute is removed")
    p.add_argument("--include-burned-in", action="store_true",
                   help="with --format folders: also write images whose pixels may show text (Burned In Annotation "
                        "YES, or US/SC/XA/ES/XC without an explicit NO); left out by default, listed in the manifest")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")

    p = add("package", cmd_package, "annotation packages: carry labels between offline copies of a project")
    sub = p.add_subparsers(dest="package_command", metavar="ACTION")

    q = sub.add_parser("export", help="write labels, notes and reviews (no pixels) to a .aldpkg file",
                       description="write labels, notes and reviews (no pixels) to a .aldpkg file")
    q.set_defaults(func=cmd_package_export)
    q.add_argument("project", metavar="PROJECT")
    q.add_argument("out", metavar="OUT.aldpkg", help="the package file to write")
    q.add_argument("--annotator", metavar="NAME", help="only this reader's labels")
    q.add_argument("--since", metavar="DATE", help="only labels given at or after DATE (2026-01-31[T14:00])")
    q.add_argument("--json", action="store_true")

    q = sub.add_parser("import", help="merge a .aldpkg file into the project (all or nothing; safe to repeat)",
                       description="merge a .aldpkg file into the project (all or nothing; safe to repeat)")
    q.set_defaults(func=cmd_package_import)
    q.add_argument("project", metavar="PROJECT")
    q.add_argument("package", metavar="IN.aldpkg", help="the package file to merge in")
    q.add_argument("--allow-other-project", action="store_true",
                   help="no longer enough (kept to say so): trust the other project with `aldesk package trust`")
    q.add_argument("--json", action="store_true", help="the summary, every rejected row included, as JSON")
    q.add_argument("--quiet", action="store_true")

    q = sub.add_parser("handout", help="prepare a reader's offline copy of the project",
                       description="prepare a reader's offline copy of the project")
    q.set_defaults(func=cmd_package_handout)
    q.add_argument("project", metavar="PROJECT")
    q.add_argument("out", metavar="OUT", help="a new (or empty) folder for the copy")
    q.add_argument("--annotator", required=True, metavar="NAME", help="the reader the copy is prepared for")
    q.add_argument("--scans", type=int, metavar="N", help="only the next N scans for this reader")
    q.add_argument("--with-scans", action="store_true",
                   help="copy the scan files into the hand-out (always with --deidentified)")
    q.add_argument("--deidentified", action="store_true",
                   help="copy the scans de-identified (PS3.15 basic profile; images pixels only) under pseudonymous names")
    q.add_argument("--identified", action="store_true",
                   help="carry the original scans with their patient identifiers (warned; choose one of the two)")
    q.add_argument("--role", choices=("annotator", "reviewer", "lead"),
                   help="the reader's role if new to the project (a reviewer's or lead's hand-out may adjudicate)")
    q.add_argument("--json", action="store_true")
    q.add_argument("--quiet", action="store_true")

    q = sub.add_parser("trust", help="exchange package keys with another project (once), or list them",
                       description="Packages are merged only under a key this project holds: its own, a hand-out's, "
                       "or another project's that its lead exported and you added here. Without options: list them.")
    q.set_defaults(func=cmd_package_trust)
    q.add_argument("project", metavar="PROJECT")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--export-key", metavar="FILE", help="write a new key of this project for the other project's lead")
    g.add_argument("--add-key", metavar="FILE", help="trust packages signed with the key in FILE (from --export-key)")
    q.add_argument("--json", action="store_true")
