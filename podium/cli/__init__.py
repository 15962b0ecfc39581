"""The `podium` command line: `main` parses the command and calls one module per command.

Each command module has `HELP`, `add_arguments(parser)` and `run(args) -> int`, imports the library
lazily (so `podium --help` is fast) and never prints a traceback for a user's mistake."""

__all__ = ["competitions", "cv", "demo", "download", "ensemble", "heatmap", "leakage", "main", "options",
           "predict", "prepare", "recommend", "run", "submissions", "submit", "tune", "tune_aug", "validate"]
