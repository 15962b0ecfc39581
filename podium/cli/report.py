from pathlib import Path

HELP = "Write a run's report: one HTML file with its metrics, plots and worst predictions, that opens from disk."


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run directory written by `podium run`")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="where to write the report (default: report.html in the run directory, replaced)")


def run(args) -> int:
    import time

    from podium.files import check_output_file
    from podium.report.page import write_report

    if args.out is not None:
        check_output_file(args.out, "--out", overwrite=True)
    start = time.perf_counter()
    path, sections = write_report(args.run_dir, args.out)
    for section in sections:
        if section.left_out:
            print(f"  left out {section.title}: {section.left_out}")
    print(f"report: {path} ({path.stat().st_size / 1e6:.2f} MB, {time.perf_counter() - start:.1f} s)")
    return 0
