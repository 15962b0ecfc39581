from pathlib import Path

HELP = "Check a competition's raw files and write its canonical table, validation split and sample set."


def add_arguments(parser) -> None:
    parser.add_argument("competition", help="a registered competition (see `podium competitions`)")
    parser.add_argument("--data", required=True, type=Path, help="folder with the competition's raw files")
    parser.add_argument("--sample", type=int, default=None, metavar="N",
                        help="size of the training sample set (validation sample: N // 2)")
    parser.add_argument("--config", action="append", default=[], type=Path, metavar="FILE")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write table.csv (default: <paths.cache>/<competition>/table.csv)")


def run(args) -> int:
    from ...competitions import get
    from ...files import atomic_write_text
    from ..prepare import prepare_table
    from ..runner import resolve_config

    plugin = get(args.competition)
    overrides = None
    if args.sample is not None:
        overrides = {"data": {"sample_train": args.sample, "sample_valid": max(1, args.sample // 2)}}
    config = resolve_config(plugin, files=args.config, sets=args.sets, overrides=overrides)
    table = prepare_table(plugin, args.data, config)
    out = args.out or Path(config["paths"]["cache"]) / plugin.name / "table.csv"
    atomic_write_text(out, table.to_csv(index=False))
    counts = table.groupby("split").size().to_dict()
    print(f"{plugin.name}: " + ", ".join(f"{split} {counts.get(split, 0)}" for split in ("train", "valid", "test")))
    print(f"sample set: {int(table['sample'].sum())} rows "
          f"({int((table['sample'] & (table['split'] == 'train')).sum())} train, "
          f"{int((table['sample'] & (table['split'] == 'valid')).sum())} valid)")
    if plugin.task == "classification":
        labelled = table[table["split"].isin(["train", "valid"])]
        print("classes: " + ", ".join(f"{k} {v}" for k, v in labelled["label"].value_counts().sort_index().items()))
    print(f"table: {out}")
    return 0
