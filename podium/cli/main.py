"""`podium`: one CLI over the pipeline. Each command is a module in `podium.cli`
with `HELP`, `add_arguments(parser)` and `run(args) -> int`."""
from __future__ import annotations

import argparse
import importlib
import sys

from podium.core.rundir import discard_unfinished_runs, unfinished_runs
from podium.errors import PodiumError

# Order is the order of `podium --help`: the workflow from files to a submission.
COMMANDS = {
    "competitions": "competitions",
    "demo": "demo",
    "prepare": "prepare",
    "tune-aug": "tune_aug",
    "tune": "tune",
    "run": "run",
    "cv": "cv",
    "predict": "predict",
    "report": "report",
    "runs": "runs",
    "recommend": "recommend",
    "heatmap": "heatmap",
    "leakage": "leakage",
    "ensemble": "ensemble",
    "validate": "validate",
    "download": "download",
    "submit": "submit",
    "submissions": "submissions",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podium", description="Kaggle competitions, from raw files to a submission.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"podium.cli.{module_name}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv=None) -> int:
    from podium.log import configure

    parser = build_parser()
    args = parser.parse_args(argv)
    configure()
    try:
        return int(args.handler(args) or 0)
    except PodiumError as exc:
        # A user's error: the run directories this command started hold nothing worth keeping.
        removed = discard_unfinished_runs()
        note = f" (removed the unfinished run directory {removed[-1]})" if removed else ""
        print(f"podium {args.command}: error: {exc}{note}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        left = unfinished_runs()
        where = (f"; run directory {left[0]} did not finish: remove it (rm -r {left[0]})" if left else "")
        print(f"podium {args.command}: interrupted{where}; cached features are kept and a rerun resumes them",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
