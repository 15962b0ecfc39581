from pathlib import Path

HELP = "List a competition's runs, best first: what differed, their scores, public scores and durations."


def add_arguments(parser) -> None:
    parser.add_argument("competition", help="a registered competition (see `podium competitions`)")
    parser.add_argument("--out", type=Path, default=Path("runs"), metavar="DIR", help="runs root (default: runs)")
    parser.add_argument("--sort", default=None, metavar="KEY",
                        help="a metrics or config key, or run, time, duration, public (default: the best score "
                             "the runs have, out-of-fold first)")
    parser.add_argument("--html", type=Path, default=None, metavar="FILE",
                        help="also write the table as a sortable HTML page linking each run's report")


def run(args) -> int:
    from podium.competitions import get
    from podium.files import check_output_file
    from podium.report.leaderboard import leaderboard, text_table, write_html

    plugin = get(args.competition)
    if args.html is not None:
        check_output_file(args.html, "--html", overwrite=True)
    board = leaderboard(args.out, plugin.name, sort=args.sort)
    print(text_table(board))
    if args.html is not None:
        print(f"page: {write_html(board, args.html)}")
    return 0
