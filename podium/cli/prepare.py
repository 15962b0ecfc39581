from pathlib import Path

from podium.cli.options import add_competition_arguments, add_config_arguments, check_config_paths, count

HELP = "Check a competition's raw files and write its canonical table, validation split and sample set."


def add_arguments(parser) -> None:
    add_competition_arguments(parser)
    parser.add_argument("--sample", type=count(1), default=None, metavar="N",
                        help="size of the training sample set (validation sample: N // 2)")
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write table.csv (default: <paths.cache>/<competition>/table.csv)")


def run(args) -> int:
    from podium.competitions import get
    from podium.files import atomic_write_text, check_output_file
    from podium.core.table import prepare_table
    from podium.evaluation.runner import resolve_config

    plugin = get(args.competition)
    overrides = None
    if args.sample is not None:
        overrides = {"data": {"sample_train": args.sample, "sample_valid": max(1, args.sample // 2)}}
    config = resolve_config(plugin, files=args.config, sets=args.sets, overrides=overrides)
    out = args.out or Path(config["paths"]["cache"]) / plugin.name / "table.csv"
    if args.out is None:
        check_config_paths(config)
    check_output_file(out, "--out" if args.out is not None else "table", overwrite=True)  # before reading the data
    table = prepare_table(plugin, args.data, config)
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
