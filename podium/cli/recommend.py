from pathlib import Path

from podium.cli.options import count, record_id

HELP = "Top-N movie recommendations for a user from a finished rating run (movies they rated are left out)."


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run directory of a rating competition (e.g. movielens)")
    parser.add_argument("--user", required=True, type=record_id, metavar="ID", help="the user's id in the ratings file")
    parser.add_argument("--top", type=count(1), default=10, metavar="N", help="how many movies (default 10)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="also write the list as CSV (never overwritten)")


def run(args) -> int:
    from podium.collab.recommend import recommend_from_run
    from podium.files import atomic_write_text
    from podium.core.rundir import load_run

    from podium.core.manifest import check_manifest

    load_run(args.run_dir)
    check_manifest(args.run_dir)  # the model and its ids whole and unchanged, before loading them
    if args.out is not None:
        from podium.files import check_output_file

        check_output_file(args.out, "--out")
    table, known = recommend_from_run(args.run_dir, args.user, n=args.top)
    if not known:
        print(f"user {args.user} has no training ratings: ranked by the fallback, global mean plus movie bias")
    print(f"top {len(table)} movies for user {args.user}:")
    for row in table.itertuples(index=False):
        title = row.title if isinstance(row.title, str) and row.title else f"movie {row.movieId}"
        print(f"  {row.rank:3d}. {row.predicted_rating:.2f}  {title} (movieId {row.movieId})")
    if args.out is not None:
        atomic_write_text(args.out, table.to_csv(index=False, float_format="%.4f"), overwrite=False)
        print(f"written to {args.out}")
    return 0
