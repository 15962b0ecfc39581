from pathlib import Path

from podium.cli.options import add_competition_arguments, add_config_arguments, check_config_paths, check_folder

HELP = "Train on a competition's files and predict its test set into a new run directory."


def add_arguments(parser) -> None:
    add_competition_arguments(parser)
    add_config_arguments(parser)
    parser.add_argument("--sample", action="store_true", help="train and validate on the seeded sample set only")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="runs root (default: runs)")
    parser.add_argument("--best-of", default=None, metavar="STUDY",
                        help="apply the best parameters of a `podium tune` study (after config files, before --set)")
    parser.add_argument("--storage", default=None, metavar="URL",
                        help="the study's database when `podium tune` was given --storage")


def run(args) -> int:
    from podium.competitions import get
    from podium.tuning.best import run_config
    from podium.evaluation.runner import start_run
    from podium.report.page import report_after_run

    plugin = get(args.competition)
    check_folder(args.out, "--out")
    config = run_config(plugin, files=args.config, sets=args.sets, best_of=args.best_of, storage=args.storage,
                        runs_root=args.out, sample=args.sample)
    check_config_paths(config)
    run_dir, metrics = start_run(plugin, args.data, config, runs_root=args.out, sample=args.sample)
    print_metrics(metrics)
    report = report_after_run(run_dir, config)
    if report:
        print(f"report: {report}")
    print(f"run: {run_dir}")
    if metrics.get("submission"):
        print(f"submission: {metrics['submission']}")
    return 0


def print_metrics(metrics: dict) -> None:
    for key in sorted(metrics):
        value = metrics[key]
        if key.startswith(("val_", "test_")) and isinstance(value, (int, float)):
            print(f"  {key:32s} {value:.4f}")
