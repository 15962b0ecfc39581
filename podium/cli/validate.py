from pathlib import Path

HELP = "Check a submission CSV the way Kaggle would, before uploading it."


def add_arguments(parser) -> None:
    parser.add_argument("competition", help="competition name (see `podium competitions`) or Kaggle slug")
    parser.add_argument("file", type=Path, help="the submission CSV")
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help="the competition's files, to check the ids against the complete test set")


def run(args) -> int:
    from podium.competitions import get
    from podium.submission.validate import inspect_file

    plugin = get(args.competition)
    rows, reasons = inspect_file(plugin, args.file, args.data)
    if reasons:
        print(f"invalid: {args.file} ({len(reasons)} problem(s))")
        for reason in reasons:
            print(f"  - {reason}")
    else:
        print(f"valid: {args.file} ({rows} rows)")
    if args.data is None:
        print("note: --data not given, so the ids were not checked against the competition's test folder")
    return 1 if reasons else 0
