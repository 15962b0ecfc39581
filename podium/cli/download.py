from pathlib import Path

HELP = "Download a competition's files from Kaggle and unpack every archive into the layout `prepare` reads."


def add_arguments(parser) -> None:
    parser.add_argument("competition", help="competition name (see `podium competitions`) or Kaggle slug")
    parser.add_argument("--to", type=Path, default=None, metavar="DIR",
                        help="folder for the files (default: data/<competition>)")
    parser.add_argument("--force", action="store_true",
                        help="download again even if a complete download is already there, replacing its files")


def run(args) -> int:
    from podium.competitions import get
    from podium.core.table import check_table
    from podium.errors import PodiumError
    from podium.kaggle.download import download

    plugin = get(args.competition)
    folder = args.to if args.to is not None else Path("data") / plugin.name
    marker, downloaded = download(plugin, folder, force=args.force)
    files = marker["files"]
    if not downloaded:
        print(f"{folder}: already downloaded ({len(files)} files, {marker['source']}); --force downloads again")
        return 0
    print(f"{folder}: {len(files)} files from {marker['source']}")
    for entry, (count, size) in _top_level(files).items():
        print(f"  {entry:32s} {count:8d} files {size / 1e6:10.1f} MB")
    try:
        table = check_table(plugin.read_table(folder), plugin)
    except PodiumError as exc:
        raise PodiumError(f"downloaded into {folder}, but {plugin.name} cannot read it: {exc}") from None
    counts = table["split"].value_counts()
    print(f"layout ok: {counts.get('train', 0)} labelled rows, {counts.get('test', 0)} test rows")
    print(f"next: podium prepare {plugin.name} --data {folder}")
    return 0


def _top_level(files: dict) -> dict:
    """{first path part (a folder gets a trailing /): (files, bytes)} for a short summary."""
    summary = {}
    for relative, size in sorted(files.items()):
        head, _, rest = relative.partition("/")
        entry = f"{head}/" if rest else head
        count, total = summary.get(entry, (0, 0))
        summary[entry] = (count + 1, total + size)
    return summary
