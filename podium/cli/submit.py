from pathlib import Path

HELP = "Validate a submission CSV, then submit it to Kaggle and record it next to its run."


def add_arguments(parser) -> None:
    parser.add_argument("competition", help="competition name (see `podium competitions`) or Kaggle slug")
    parser.add_argument("file", type=Path, help="the submission CSV")
    parser.add_argument("-m", "--message", required=True, help="description Kaggle shows next to the score")
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help="the competition's files, to check the ids against the test set "
                             "(default: the data folder of the run the file is in, when there is one)")
    parser.add_argument("--runs", type=Path, default=Path("runs"), metavar="DIR",
                        help="runs root; a file outside any run is recorded in DIR/<competition>/submissions.jsonl")


def run(args) -> int:
    from podium.competitions import get
    from podium.kaggle.submit import submit

    plugin = get(args.competition)
    record, records = submit(plugin, args.file, args.message, data_dir=args.data, runs_root=args.runs)
    print(f"kaggle: {record['kaggle']}")
    print(f"recorded in {records}")
    print(f"scores: podium submissions {plugin.name}")
    return 0
