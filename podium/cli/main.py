"""`podium`: one CLI over the pipeline. Each command is a module in `podium.cli`
with `HELP`, `add_arguments(parser)` and `run(args) -> int`."""
from __future__ import annotations

import argparse
import importlib
import sys

from podium.core.rundir import discard_unfinished_runs, unfinished_runs
from podium.errors import PodiumError
from podium.files import os_fault

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
        # Each path argument's option, so a fault on that path (or under it) names the option that set it.
        command.set_defaults(handler=module.run, path_options={
            action.dest: action.option_strings[-1] if action.option_strings else (action.metavar or action.dest.upper())
            for action in command._actions})
    return parser


def name_path_options(args) -> None:
    from pathlib import Path

    from podium.files import name_option

    for dest, option in getattr(args, "path_options", {}).items():
        value = getattr(args, dest, None)
        for path in value if isinstance(value, list) else [value]:
            if isinstance(path, Path):
                name_option(path, option)


def main(argv=None) -> int:
    from podium.log import configure

    parser = build_parser()
    args = parser.parse_args(argv)
    configure()
    name_path_options(args)
    try:
        return int(args.handler(args) or 0)
    except PodiumError as exc:
        return user_error(args.command, exc)
    except OSError as exc:
        # A name too long, a read-only or full disk, no permission: the environment's fault, said in one line.
        fault = os_fault(exc)
        if fault is None:
            raise
        return user_error(args.command, fault)
    except KeyboardInterrupt:
        from podium.log import end_progress_line

        end_progress_line()
        left = unfinished_runs()
        where = (f"; run directory {left[0]} did not finish: remove it (rm -r {left[0]})" if left else "")
        print(f"podium {args.command}: interrupted{where}; cached features are kept and a rerun resumes them",
              file=sys.stderr)
        return 130


def user_error(command: str, exc: Exception) -> int:
    """One line on stderr, exit 2; the run directories this command started hold nothing worth keeping."""
    from podium.log import end_progress_line

    end_progress_line()
    removed = discard_unfinished_runs()
    note = f" (removed the unfinished run directory {removed[-1]})" if removed else ""
    print(f"podium {command}: error: {exc}{note}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
