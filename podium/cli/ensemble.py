from pathlib import Path

HELP = "Average the predictions of finished runs of one competition into one submission."


def add_arguments(parser) -> None:
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR",
                        help="run directories written by `podium run` (at least 2, same split)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="submission CSV to write (never overwritten; default: "
                             "<runs' parent>/ensembles/ensemble-<timestamp>.csv)")


def run(args) -> int:
    from podium.evaluation.ensemble import ensemble_runs

    ensemble_runs(args.run_dirs, out=args.out)
    return 0
