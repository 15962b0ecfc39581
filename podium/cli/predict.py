from pathlib import Path

from podium.cli.options import count

HELP = "Predict again from a finished run (e.g. with test-time augmentation) into new files."


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run directory written by `podium run`")
    parser.add_argument("--tta", type=count(0), default=None, metavar="N",
                        help="average N augmented views plus the original (image competitions)")
    parser.add_argument("--pairs", type=Path, default=None, metavar="FILE",
                        help="CSV of pairs to predict (rating competitions, e.g. userId,movieId)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="output file (never overwritten)")


def run(args) -> int:
    from podium.core.rundir import RUN_KEYS, check_run
    from podium.evaluation.runner import predict_again
    from podium.files import check_output_file

    # Everything a user can get wrong is refused before a single file is written into the run.
    check_run(args.run_dir, model=True, keys=RUN_KEYS, metrics=True)
    if args.out is not None:
        check_output_file(args.out, "--out")
    if args.pairs is not None and not args.pairs.is_file():
        from podium.errors import PodiumError

        raise PodiumError(f"--pairs {args.pairs} not found")
    result = predict_again(args.run_dir, tta=args.tta, pairs=args.pairs, out=args.out)
    for key, value in result.items():
        print(f"  {key:32s} {value:.4f}" if isinstance(value, float) else f"  {key:32s} {value}")
    return 0
