from pathlib import Path

HELP = "Predict again from a finished run (e.g. with test-time augmentation) into new files."


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run directory written by `podium run`")
    parser.add_argument("--tta", type=int, default=None, metavar="N",
                        help="average N augmented views plus the original (image competitions)")
    parser.add_argument("--pairs", type=Path, default=None, metavar="FILE",
                        help="CSV of pairs to predict (rating competitions, e.g. userId,movieId)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="output file (never overwritten)")


def run(args) -> int:
    from podium.files import read_json
    from podium.core.rundir import load_run
    from podium.evaluation.runner import pipeline_module

    load_run(args.run_dir)
    record = read_json(args.run_dir / "run.json")
    result = pipeline_module(record["pipeline"]).predict_again(args.run_dir, tta=args.tta, pairs=args.pairs, out=args.out)
    for key, value in result.items():
        print(f"  {key:32s} {value:.4f}" if isinstance(value, float) else f"  {key:32s} {value}")
    return 0
