from pathlib import Path

HELP = "Generate a small sample data set for each competition and run the whole pipeline on it, offline."


def add_arguments(parser) -> None:
    parser.add_argument("competitions", nargs="*", metavar="COMPETITION",
                        help="competitions to demo (default: every registered one)")
    parser.add_argument("--out", type=Path, default=Path("podium-demo"),
                        help="folder for the sample data, feature cache and runs (default: podium-demo)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data and of the runs")


def run(args) -> int:
    from podium.competitions import get, names
    from podium.evaluation.demo import run_demo
    from podium.files import read_json
    from podium.report.page import report_after_run

    from podium.cli.options import check_folder

    check_folder(args.out, "--out")
    chosen = args.competitions or names()
    plugins = [get(name) for name in chosen]
    results = [run_demo(plugin, args.out, seed=args.seed) for plugin in plugins]
    print("\ndemo results")
    for plugin, (run_dir, metrics) in zip(plugins, results):
        main = f"val_{plugin.metric}"
        extras = "".join(f", {key} {metrics[key]:.3f}" for key in ("val_accuracy", "val_log_loss_clipped")
                         if key in metrics)
        print(f"  {plugin.name}: {main} {metrics[main]:.4f}{extras}")
        print(f"    run: {run_dir}")
        report = report_after_run(run_dir, read_json(run_dir / "config.json"))
        if report:
            print(f"    report: {report}")
        if metrics.get("submission"):
            print(f"    submission: {metrics['submission']}")
    return 0
