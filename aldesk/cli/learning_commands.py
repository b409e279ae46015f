"""Commands of the learning engine: features, label, train, rank, simulate."""

from __future__ import annotations

import sys
from pathlib import Path

from aldesk.cli.common import EXIT_OK, STRATEGY_HELP, Bar, Interrupt, StrategyNames, open_project, print_json


def cmd_features(args) -> int:
    from aldesk.app.features import extract_features

    options = {"path": args.onnx} if args.onnx else {}
    with open_project(args.project) as project, Interrupt() as stop:
        with Bar("features", "scan", quiet=args.quiet) as bar:
            result = extract_features(project, args.extractor, options=options, jobs=args.jobs,
                                      progress=bar, should_stop=stop)
    print(f"{result.extractor} (version {result.version}): {result.computed} computed, "
          f"{result.cached} already cached, {result.dim} values per scan")
    return EXIT_OK


def cmd_label(args) -> int:
    from aldesk.app.labelling import label_from_csv

    with open_project(args.project) as project:
        counts = label_from_csv(project, args.csv, args.annotator, strict=args.strict)
    if args.json:
        print_json({k: v for k, v in counts.items() if k != "warnings"})
        return EXIT_OK
    for warning in counts["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{args.annotator}: {counts['added']} labels added, {counts['changed']} changed, "
          f"{counts['unchanged']} unchanged"
          + (f"; {len(counts['conflicts'])} conflicting lines resolved by the latest" if counts["conflicts"] else ""))
    return EXIT_OK


def cmd_train(args) -> int:
    from aldesk.app.modelling import train

    with open_project(args.project) as project, Interrupt() as stop:
        with Bar("train", "step", quiet=args.quiet) as bar:
            report = train(project, model=args.model, extractor=args.extractor, folds=args.folds,
                           progress=bar, should_stop=stop)
    if args.json:
        print_json(report)
        return EXIT_OK
    print(f"model {report['model']} on {report['extractor']} features, {report['labels']} labels "
          f"({', '.join(f'{k} {v}' for k, v in report['per_class'].items())})")
    print(f"{int(report['folds'])}-fold cross-validation (objective: {report['objective']}):")
    keys = dict.fromkeys([report["objective"], "accuracy", "balanced_accuracy", "quadratic_kappa", "grade_mae",
                          "sensitivity_at_specificity", "auc", "ece"])
    for key in keys:
        if key in report and report[key] is not None:
            print(f"  {key:26} {report[key]:.3f}")
    if report.get("audit_accuracy") is not None:
        lo, hi = report["audit_ci"]
        print(f"audit sample ({report['audit_n']} random scans, each predicted without its own label):")
        print(f"  {'accuracy':26} {report['audit_accuracy']:.3f} (95 % CI {lo:.3f}–{hi:.3f})")
    return EXIT_OK


def cmd_objective(args) -> int:
    from aldesk.app.objective import objective_settings, set_objective

    with open_project(args.project) as project:
        if args.name or args.specificity is not None:
            name = args.name or objective_settings(project)["objective"]
            settings = set_objective(project, name, specificity=args.specificity)
        else:
            settings = objective_settings(project)
    if args.json:
        print_json(settings)
        return EXIT_OK
    extra = f" at specificity {settings['specificity']:.2f}" if settings["objective"] == "sensitivity_at_specificity" else ""
    print(f"objective: {settings['objective']}{extra}{'' if settings['explicit'] else ' (the default)'}; "
          f"classes {'ordered (graded)' if settings['ordered'] else 'unordered'}")
    return EXIT_OK


def cmd_rank(args) -> int:
    from aldesk.app.modelling import rank

    with open_project(args.project) as project, Interrupt() as stop:
        with Bar("features", "scan", quiet=args.quiet or args.json) as bar:
            ranking = rank(project, strategy=args.strategy, batch=args.batch, extractor=args.extractor,
                           random_state=args.seed, favour_rare=args.favour_rare, progress=bar, should_stop=stop)
    if args.json:
        print_json(ranking.to_json())
        return EXIT_OK
    print(f"strategy {ranking.strategy}: next {len(ranking.batch)} of {ranking.n_candidates} unread scans "
          f"({ranking.n_labelled} labelled)")
    if ranking.details.get("fallback") and ranking.strategy != args.strategy:
        print(f"  (not {args.strategy}: {ranking.details.get('fallback_reason') or 'no model can be trained yet'}; "
              f"{ranking.strategy} picks typical and diverse scans until then)")
    for i, r in enumerate(ranking.batch, 1):
        print(f"{i:3}. {r.score:8.4f}  {r.path}\n       {r.reason}")
    return EXIT_OK


def cmd_simulate(args) -> int:
    from aldesk.app.simulate import npz_to_folder, simulate_project
    from aldesk.store import Project
    from aldesk.store.project import PROJECT_DB_NAME

    if bool(args.answers) == bool(args.npz):
        print("aldesk simulate: give exactly one of --answers CSV or --npz FILE", file=sys.stderr)
        return 2
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    with Interrupt() as stop:
        answers = args.answers
        if args.npz:
            images, answers, n_classes = npz_to_folder(args.npz, Path(args.out) / "data")
            if not (Path(args.project) / PROJECT_DB_NAME).exists():
                classes = args.classes.split(",") if args.classes else [str(i) for i in range(n_classes)]
                Project.create(args.project, classes).close()
            from aldesk.app.importer import import_paths

            with open_project(args.project) as project:
                with Bar("import", "file", quiet=args.quiet) as bar:
                    import_paths(project, [images], jobs=args.jobs, progress=bar, should_stop=stop)
        with open_project(args.project) as project:
            with Bar("simulate", "step", quiet=args.quiet) as bar:
                output = simulate_project(project, answers, strategies=strategies, seeds=args.seeds,
                                          initial=args.initial, batch=args.batch, budget=args.budget, out=args.out,
                                          extractor=args.extractor, model=args.model, strict=args.strict,
                                          objective=args.objective, progress=bar, should_stop=stop)
    if args.json:
        print_json({k: output.results[k] for k in ("objective", "default", "answers", "setup")}
                   | {"strategies": {n: {k: v for k, v in e.items() if k != "runs"}
                                     for n, e in output.results["strategies"].items()},
                      "results": str(output.results_path)})
        return EXIT_OK
    print(output.table)
    print(f"results: {output.results_path}\ncurves:  {output.curves_path}")
    return EXIT_OK


def register(add) -> None:
    p = add("features", cmd_features, "extract and cache one feature vector per scan")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--extractor", default="default",
                   help="default (= imagenet) | handcrafted | learned | onnx | imagenet (default: default)")
    p.add_argument("--onnx", metavar="MODEL.onnx", help="with --extractor onnx: the encoder to run")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--quiet", action="store_true")

    p = add("label", cmd_label, "record one reader's labels from a CSV with columns path,label")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--csv", required=True, metavar="FILE", help="columns path,label (path as imported)")
    p.add_argument("--annotator", required=True, metavar="NAME", help="the reader the labels are recorded under")
    p.add_argument("--strict", action="store_true",
                   help="refuse the whole file if it labels the same image two ways (default: the latest line wins, "
                        "with a warning)")
    p.add_argument("--json", action="store_true")

    p = add("train", cmd_train, "fit the model on the labels and report cross-validated metrics")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--model", default=None, help="logistic | random_forest | hist_gradient_boosting | mlp | "
                   "ordinal_logistic (default: ordinal_logistic for ordered classes, else logistic)")
    p.add_argument("--extractor", default="default")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")

    p = add("objective", cmd_objective, "show or set what 'better' means: the objective training and simulation follow")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("name", nargs="?", default=None,
                   help="accuracy | balanced_accuracy | sensitivity_at_specificity | quadratic_kappa")
    p.add_argument("--specificity", type=float, default=None, help="for sensitivity_at_specificity (default 0.90)")
    p.add_argument("--json", action="store_true")

    p = add("rank", cmd_rank, "the next scans worth reading, with scores and reasons")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--strategy", default="hybrid", choices=StrategyNames(), metavar="NAME", help=STRATEGY_HELP)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--extractor", default="default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--favour-rare", action="store_true", help="prefer scans predicted to be of rare classes")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")

    p = add("simulate", cmd_simulate, "replay labelling with a known answer key and compare strategies")
    p.add_argument("project", metavar="PROJECT", help="the project (created from --npz if it does not exist)")
    p.add_argument("--answers", metavar="ANSWERS.csv", help="columns path,label[,split]; split 'test' is held out")
    p.add_argument("--npz", metavar="FILE", help="a MedMNIST-style .npz, written as PNGs and imported first")
    p.add_argument("--classes", help="with --npz: class names for label 0,1,... (e.g. normal,pneumonia)")
    p.add_argument("--strategies", default="random,entropy,default",
                   help="comma-separated; 'default' is the default strategy, run under its own name")
    p.add_argument("--objective", default=None,
                   help="what AULC is computed on (default: the project's objective setting)")
    p.add_argument("--strict", action="store_true",
                   help="refuse an answer key that labels the same image two ways (default: leave it out, report it)")
    p.add_argument("--json", action="store_true", help="print the summary (no per-seed runs) as JSON")
    p.add_argument("--seeds", type=int, default=10, help="repeats with different random starts (default: %(default)s)")
    p.add_argument("--initial", type=int, default=20, help="random labels before the first model (default: %(default)s)")
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--budget", type=int, default=300, help="labels per simulated campaign (default: %(default)s)")
    p.add_argument("--extractor", default="default")
    p.add_argument("--model", default=None, help="as for train (default: the project's ordered setting decides)")
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for results.json and the learning curves")
    p.add_argument("--quiet", action="store_true")
