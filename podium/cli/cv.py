from pathlib import Path

from podium.cli.options import add_competition_arguments, add_config_arguments, check_config_paths, check_folder, count

HELP = ("Cross-validate: train one run per fold (by data.split, e.g. by driver), then score the out-of-fold "
        "predictions and submit the folds' mean test prediction.")


def add_arguments(parser) -> None:
    add_competition_arguments(parser)
    parser.add_argument("--folds", type=count(2), default=None,
                        help="number of folds (default: data.folds from the config, else 5)")
    add_config_arguments(parser)
    parser.add_argument("--sample", action="store_true", help="train and validate on the seeded sample set only")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="runs root (default: runs)")


def run(args) -> int:
    from podium.competitions import get
    from podium.evaluation.folds import run_folds
    from podium.evaluation.runner import resolve_config
    from podium.cli.run import print_metrics

    plugin = get(args.competition)
    check_folder(args.out, "--out")
    # --folds goes through the config's checks (e.g. data.fold below it) like any other value.
    overrides = {"data": {"folds": args.folds}} if args.folds is not None else None
    config = resolve_config(plugin, files=args.config, sets=args.sets, overrides=overrides)
    if int(config["data"]["folds"]) < 2:
        config["data"]["folds"] = 5
    check_config_paths(config)
    cv_dir, metrics = run_folds(plugin, args.data, config, runs_root=args.out, sample=args.sample)
    print(f"\nout-of-fold scores over {metrics['oof_rows']} rows, {metrics['folds']} folds:")
    print_metrics(metrics)
    print(f"cross-validation: {cv_dir}")
    if metrics.get("submission"):
        print(f"submission: {metrics['submission']}")
    return 0
