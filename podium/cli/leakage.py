from pathlib import Path

from podium.cli.options import add_competition_arguments, add_config_arguments

HELP = "Check whether a competition's metadata alone predicts the label (a leak), next to chance and an image model."


def add_arguments(parser) -> None:
    from podium.vision.interpret.leakage import DEFAULT_THRESHOLD

    add_competition_arguments(parser)
    add_config_arguments(parser)
    parser.add_argument("--sample", action="store_true", help="probe on the seeded sample set only")
    parser.add_argument("--run", type=Path, default=None, metavar="RUN_DIR",
                        help="image model to compare with (default: the newest finished run on --data under --runs)")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="runs root to look in (default: runs)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, metavar="SHARE",
                        help=f"warn when metadata removes at least this share of chance's log loss "
                             f"(default {DEFAULT_THRESHOLD})")


def run(args) -> int:
    from podium.competitions import get
    from podium.vision.interpret.leakage import image_model_scores, latest_run, probe, report
    from podium.evaluation.runner import resolve_config

    plugin = get(args.competition)
    config = resolve_config(plugin, files=args.config, sets=args.sets)
    result = probe(plugin, args.data, config, sample=args.sample, threshold=args.threshold)
    run_dir = args.run or latest_run(args.runs, plugin.name, args.data)
    print(report(result, image_model_scores(run_dir) if run_dir is not None else None))
    return 0
