from pathlib import Path

from podium.cli.options import add_competition_arguments, add_config_arguments, count

HELP = ("Tune augmentation on the sample set: each transform's strength alone, then the best of each combined; "
        "writes a config file a run can use.")


def add_arguments(parser) -> None:
    add_competition_arguments(parser)
    add_config_arguments(parser)
    parser.add_argument("--scan", type=Path, default=None, metavar="FILE",
                        help="transforms and strengths to try: JSON {\"scan\": [...]} or TOML [[scan]] tables "
                             "(default: shift, rotation, scale, shear, brightness/contrast, channel shift, flip)")
    parser.add_argument("--passes", type=count(1), default=2,
                        help="augmented passes of the sample per candidate (default 2); also written to the config")
    parser.add_argument("--repeats", type=count(1), default=1,
                        help="heads (seeds) averaged per candidate, against noise (default 1)")
    parser.add_argument("--out", type=Path, default=None,
                        help="config file to write (default: ./tune-aug-<competition>.json, never overwritten); "
                             "the scores go beside it as <name>-scores.csv")


def run(args) -> int:
    from podium.competitions import get
    from podium.files import unused_path
    from podium.tuning.augmentation import format_table, load_scan, tune_augmentation, write_results
    from podium.evaluation.runner import resolve_config

    plugin = get(args.competition)
    config = resolve_config(plugin, files=args.config, sets=args.sets)
    scan = load_scan(args.scan) if args.scan is not None else None
    out = args.out or unused_path(Path(f"tune-aug-{plugin.name}.json"))
    from podium.files import check_output_file

    check_output_file(out, "--out")
    result = tune_augmentation(plugin, args.data, config, scan=scan, passes=args.passes, repeats=args.repeats)
    config_path, scores_path = write_results(result, out)
    print(format_table(result))
    print(f"config: {config_path}  (use it: podium run {plugin.name} --data {args.data} --config {config_path})")
    print(f"scores: {scores_path}")
    return 0
