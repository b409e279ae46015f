"""Commands about a project and its scans: init, import, info, problems, missing, relink."""

from __future__ import annotations

from aldesk.cli.common import EXIT_CANCELLED, EXIT_ERROR, EXIT_OK, Bar, Interrupt, open_project, print_json


def cmd_init(args) -> int:
    from aldesk.app.projects import create_project

    if args.label_set:
        from aldesk.app.label_sets import get_label_set

        label_set = get_label_set(args.label_set)
        classes = label_set.classes
    else:
        label_set, classes = None, [c for c in args.classes.split(",")]
    with create_project(args.project, classes, name=args.name, unit=args.unit) as project:
        if label_set is not None:
            project.set_meta("label_set", label_set.name)
            project.set_meta("classes_ordered", "yes" if label_set.ordered else "no")
        print(f"created project {project.name!r} at {project.path} with classes {', '.join(project.classes)}; "
              f"labelling unit: {project.units.kind()}")
    return EXIT_OK


def cmd_import(args) -> int:
    from aldesk.app.importer import import_paths

    with open_project(args.project) as project, Interrupt() as stop:
        with Bar("import", "file", quiet=args.quiet) as bar:
            summary = import_paths(project, args.paths, jobs=args.jobs, max_pixels=args.max_pixels,
                                   progress=bar, should_stop=stop)
    if args.json:
        print_json(summary.to_json())
    else:
        _print_import_summary(summary, args.verbose)
    return EXIT_CANCELLED if summary.status == "cancelled" else EXIT_OK


def _print_import_summary(summary, verbose: bool) -> None:
    s = summary
    rate = f" ({s.files / s.elapsed_s:.0f} files/s)" if s.elapsed_s > 0 else ""
    print(f"import {s.status}: {s.files} files in {s.elapsed_s:.1f} s{rate}")
    print(f"  imported   {s.imported}")
    print(f"  unchanged  {s.unchanged}  (already in the project)")
    print(f"  duplicates {s.duplicates}")
    print(f"  skipped    {s.skipped}")
    print(f"  failed     {s.failed}")
    if s.units or s.series_problems:
        print(f"  new units  {s.units}  (series or studies)")
    for item in s.series_problems:
        print(f"  series {item['series']} (scan {item['scan_id']}): {'; '.join(item['problems'])}")
    if not s.problems:
        return
    by_code: dict[tuple[str, str], list[dict]] = {}
    for p in s.problems:
        by_code.setdefault((p["kind"], p["code"]), []).append(p)
    print("reasons:")
    for (kind, code), items in sorted(by_code.items(), key=lambda kv: -len(kv[1])):
        print(f"  {kind:9} {code:22} {len(items):6}  e.g. {items[0]['path']}: {items[0]['reason']}")
    if verbose:
        for p in s.problems:
            print(f"  {p['kind']:9} {p['path']}: {p['reason']}")
    else:
        print("  (--verbose lists every file; `aldesk problems PROJECT` shows them later)")
    if s.status == "cancelled":
        print("stopped early: run the same command again to finish the import")


def cmd_info(args) -> int:
    from aldesk.app.projects import project_info

    with open_project(args.project) as project:
        info = project_info(project)
    if args.json:
        print_json(info)
        return EXIT_OK
    for key, value in info.items():
        if isinstance(value, (list, dict)):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else ", ".join(map(str, value))
        print(f"{key:14} {value}")
    return EXIT_OK


def cmd_problems(args) -> int:
    with open_project(args.project) as project:
        problems = project.scans.problems()
    if args.json:
        print_json(problems)
    else:
        for p in problems:
            print(f"{p['kind']:9} {p['code']:20} {p['path']}: {p['reason']}")
        print(f"{len(problems)} files not imported")
    return EXIT_OK


def cmd_missing(args) -> int:
    from aldesk.app.projects import missing_scans

    with open_project(args.project) as project:
        missing = missing_scans(project)
    if args.json:
        print_json([{"scan_id": sid, "path": path} for sid, path in missing])
    else:
        for sid, path in missing:
            print(f"missing  {sid:8}  {path}")
        print(f"{len(missing)} scans missing" + ("; if the data moved, run `aldesk relink PROJECT NEW_ROOT`" if missing else ""))
    return EXIT_OK


def cmd_relink(args) -> int:
    from aldesk.app.previews import rebuild_missing_previews
    from aldesk.app.projects import missing_scans, relink

    with open_project(args.project) as project:
        results = relink(project, args.new_root)
        still = len(missing_scans(project))
        made, no_preview = rebuild_missing_previews(project)  # previews a restore could not find, from the files found
    for r in results:
        if r.new:
            print(f"relinked {r.old} -> {r.new} ({r.found}/{r.checked} sampled files found)")
        elif r.found:
            print(f"unchanged {r.old} (files are in place)")
        else:
            print(f"not found {r.old}: none of {r.checked} sampled files under {args.new_root}")
    print(f"{still} scans still missing")
    if made or no_preview:
        print(f"{made} missing previews made from the files" + (f"; {no_preview} scans still have none" if no_preview else ""))
    return EXIT_OK if still == 0 else EXIT_ERROR


def cmd_backup(args) -> int:
    from datetime import datetime

    from pathlib import Path

    from aldesk.store.backups import BACKUP_DIR_NAME, list_backups
    from aldesk.store.preview_store import PREVIEW_STORE_NAME

    if args.if_due:
        from aldesk.app.backups import main as scheduled_main

        return scheduled_main([args.project])
    if args.list:
        backups = list_backups(args.project)
        if args.json:
            print_json([{"path": str(b), "bytes": b.stat().st_size,
                         "taken_at": datetime.fromtimestamp(b.stat().st_mtime).isoformat(timespec="seconds")}
                        for b in backups])
            return EXIT_OK
        for b in backups:
            print(f"{b.stat().st_size / 1e6:8.1f} MB  {datetime.fromtimestamp(b.stat().st_mtime):%Y-%m-%d %H:%M:%S}  {b}")
        if not backups:
            print("no backups yet")
        side = Path(args.project) / BACKUP_DIR_NAME / PREVIEW_STORE_NAME
        if backups and side.is_file():
            print(f"{side.stat().st_size / 1e6:8.1f} MB  previews and feature vectors of these backups, kept once: {side}")
        return EXIT_OK
    if args.restore:
        from aldesk.app.backups import restore

        result = restore(args.project, None if args.restore == "latest" else args.restore)
        if args.json:
            print_json(result.to_json())
            return EXIT_OK
        print(f"restored {result.source} (complete and verified)")
        print(f"the replaced database is kept at {result.aside}"
              + ("" if result.checkpointed else " with its -wal file beside it (it was too damaged to fold in)"))
        print(result.gap.describe())
        if result.describe_previews():
            print(result.describe_previews())
        return EXIT_OK
    with open_project(args.project) as project:
        made = project.backup("manual")
    if args.json:
        print_json({"backup": str(made), "bytes": made.stat().st_size})
    else:
        print(f"backup written to {made} (complete and verified)")
    return EXIT_OK


def cmd_doctor(args) -> int:
    from aldesk.app.doctor import accept_loss, diagnose

    if args.accept_loss:
        lost = accept_loss(args.project)
        print(f"accepted: {lost} lost commits will no longer be reported; everything in the database is kept")
    report = diagnose(args.project)
    if args.json:
        print_json(report)
    else:
        print(f"{report['project']}: {'healthy' if report['ok'] else 'PROBLEMS FOUND'}")
        print(f"  integrity     {report['integrity'] if report['integrity'] in ('ok', None) else 'damaged'}")
        print(f"  labels        {report['labels']}")
        print(f"  commits       {report['commits']['database']} in the database, {report['commits']['recorded']} recorded")
        print(f"  backups       {report['backups']['count']} (newest {report['backups']['latest_at'] or '-'})")
        for p in report["problems"]:
            print(f"problem: {p}")
        for a in report["advice"]:
            print(f"to do:   {a}")
    return EXIT_OK if report["ok"] else EXIT_ERROR


def register(add) -> None:
    p = add("backup", cmd_backup, "back up the project database, list backups, or restore one")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--list", action="store_true", help="list backups, newest first")
    p.add_argument("--restore", metavar="latest|FILE", help="replace the database with a backup (the current one is "
                   "kept aside with everything it committed; refused while the project is open)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--if-due", action="store_true", help="the scheduled backup: only if the project changed since "
                   "its newest backup and that one is over an hour old (what runs in the background after writes)")

    p = add("doctor", cmd_doctor, "check a project in full (every page, lost commits, backups) and say how to repair it")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--accept-loss", action="store_true",
                   help="carry on without committed changes that were lost (a deleted -wal file) when no backup has them")

    p = add("init", cmd_init, "create a project folder")
    p.add_argument("project", metavar="PROJECT")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--classes", help="comma-separated class names, e.g. normal,pneumonia")
    which.add_argument("--label-set", metavar="NAME", help="a shipped label set: normal-abnormal, normal-pneumonia, "
                       "birads, diabetic-retinopathy (ordered grades)")
    p.add_argument("--name", help="display name (default: the folder name)")
    p.add_argument("--unit", choices=("image", "series", "study"), default="image",
                   help="what a reader labels: each image file (default; X-rays, photos), a DICOM series, "
                        "or a whole study (CT/MR read as a PACS does)")

    p = add("import", cmd_import, "import DICOM/PNG/JPEG/TIFF files and folders (recursive, incremental)")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("paths", metavar="PATH", nargs="+", help="files or folders of scans (folders searched recursively)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--max-pixels", type=int, default=400_000_000, help="skip files with more pixels than this")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--verbose", action="store_true", help="list every file that was not imported")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = add("info", cmd_info, "describe a project")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--json", action="store_true")

    p = add("problems", cmd_problems, "list the files that were not imported, with reasons")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--json", action="store_true")

    p = add("missing", cmd_missing, "list scans whose source files are no longer where they were")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--json", action="store_true")

    p = add("relink", cmd_relink, "point the project at the new place of moved scan folders")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("new_root", metavar="NEW_ROOT", help="the folder the imported data now lives under")
