from pathlib import Path

from podium.cli.options import add_competition_arguments, add_config_arguments, check_folder, count

HELP = "Search hyper-parameters with Optuna on cached features: pruned, resumable, parallel."


def add_arguments(parser) -> None:
    add_competition_arguments(parser)
    parser.add_argument("--trials", required=True, type=count(1), metavar="N",
                        help="finished (complete or pruned) trials the study should have; a rerun runs the rest")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="stop starting new trials after S seconds (per worker)")
    parser.add_argument("--study", default="default", metavar="NAME",
                        help="study name; its folder is RUNS/COMPETITION/tuning/NAME (default: default)")
    parser.add_argument("--storage", default=None, metavar="URL",
                        help="database URL shared by several machines, e.g. postgresql://user:pass@host/db "
                             "(default: sqlite file study.db in the study's folder)")
    parser.add_argument("--jobs", type=count(1), default=1, metavar="J",
                        help="worker processes on this machine (at most its cores)")
    parser.add_argument("--new-study", action="store_true",
                        help="when the study was searched with other data, backbone, size, split or metric, start "
                             "a new one (NAME-2, ...) instead of refusing")
    parser.add_argument("--sample", action="store_true",
                        help="tune on the seeded sample set (fast; regularisation found there does not transfer)")
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("runs"), help="runs root (default: runs)")


def run(args) -> int:
    from podium.competitions import get
    from podium.tuning import tune

    check_folder(args.out, "--out")
    if args.storage and args.storage.startswith("sqlite:///"):
        check_folder(Path(args.storage[len("sqlite:///"):]).parent, "--storage")
    summary = tune(get(args.competition), args.data, trials=args.trials, files=args.config, sets=args.sets,
                   study=args.study, storage=args.storage, runs_root=args.out, sample=args.sample, jobs=args.jobs,
                   timeout=args.timeout, new_study=args.new_study)
    print(f"train with the best parameters: podium run {args.competition} --data {args.data} "
          f"--best-of {summary['study']}" + (f" --storage {summary['storage']}" if args.storage else "")
          + (" --out " + str(args.out) if args.out != Path("runs") else ""))
    return 0
