"""`podium runs`: a competition's runs side by side, best first: the config keys that differ between them,
hold-out / out-of-fold / calibrated scores, the public score of their recorded submissions, duration;
unfinished runs listed apart. Read from the runs' files only (no model is loaded)."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from podium.core.rundir import INCOMPLETE
from podium.errors import PodiumError
from podium.files import atomic_write_text
from podium.report.common import duration_seconds, flatten, public_score, seconds_text
from podium.report.page import REPORT, environment
from podium.report.run import RunFiles

# Score columns, in the order shown; the first one a listed run has is the default sort key.
SCORE_KEYS = ("oof_log_loss_calibrated_clipped", "oof_log_loss_calibrated", "oof_log_loss", "val_log_loss",
              "val_accuracy", "val_rmse", "val_mae")
HIGHER_IS_BETTER = ("accuracy", "iou", "auc")
OTHER_COLUMNS = ("run", "time", "duration", "public")
VARIED_SHOWN = 8  # at most this many differing config keys as columns (the rest are in each run's report)


@dataclass
class Row:
    run: str
    path: Path
    time: str = ""
    duration: float | None = None
    public: str = ""
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    problem: str = ""  # why an unfinished run is not listed with the others

    def value(self, key: str):
        if key in ("run", "time", "duration"):
            return getattr(self, key)
        if key == "public":
            return float(self.public) if _is_number(self.public) else None
        if key in self.metrics:
            return self.metrics[key]
        return self.config.get(key)


def _is_number(text) -> bool:
    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError):
        return False


def higher_is_better(key: str) -> bool:
    return any(word in key for word in HIGHER_IS_BETTER)


def collect(runs_root: Path, competition: str) -> tuple[list[Row], list[Row]]:
    """(finished runs, unfinished or unreadable ones) under `runs_root/competition`."""
    folder = Path(runs_root) / competition
    if not folder.is_dir():
        raise PodiumError(f"no runs of {competition} under {runs_root} (looked in {folder})")
    finished, unfinished = [], []
    for path in sorted(folder.iterdir()):
        if not path.is_dir() or not ((path / "config.json").is_file() or (path / INCOMPLETE).is_file()):
            continue  # tuning studies, ensembles, cv folders: not runs
        try:
            run = RunFiles(path)
        except (PodiumError, OSError, ValueError) as exc:
            unfinished.append(Row(run=path.name, path=path, problem=str(exc)))
            continue
        try:
            score, _ = public_score(run.submissions())
        except ValueError:
            score = "(submissions.jsonl damaged)"
        finished.append(Row(run=run.id, path=path, time=str(run.record.get("created", "")),
                            duration=duration_seconds(run), public=score,
                            metrics={k: v for k, v in run.metrics.items() if isinstance(v, (int, float))},
                            config=flatten(run.config) if isinstance(run.config, dict) else {}))
    return finished, unfinished


def varied_keys(rows: list[Row]) -> list[str]:
    """Config keys whose value is not the same in every listed run (the seed included)."""
    keys = sorted({key for row in rows for key in row.config})
    return [key for key in keys
            if len({json.dumps(row.config.get(key), sort_keys=True) for row in rows}) > 1]


def sort_rows(rows: list[Row], key: str) -> list[Row]:
    """Best first: by `key` (ascending, or descending for accuracy-like keys and time); runs without it last."""
    descending = higher_is_better(key) or key == "time"
    present = [row for row in rows if row.value(key) is not None]
    absent = [row for row in rows if row.value(key) is None]
    try:
        present.sort(key=lambda row: row.value(key), reverse=descending)
    except TypeError:
        present.sort(key=lambda row: str(row.value(key)), reverse=descending)
    return present + absent


def default_sort(rows: list[Row]) -> str:
    return next((key for key in SCORE_KEYS if any(key in row.metrics for row in rows)), "time")


def leaderboard(runs_root: Path, competition: str, *, sort: str | None = None) -> dict:
    """Everything `podium runs` shows: rows (best first), unfinished ones, the score and config columns."""
    finished, unfinished = collect(runs_root, competition)
    scores = [key for key in SCORE_KEYS if any(key in row.metrics for row in finished)]
    varied = varied_keys(finished)
    key = sort or default_sort(finished)
    known = set(OTHER_COLUMNS) | {k for row in finished for k in row.metrics} | {k for row in finished for k in row.config}
    if finished and key not in known:
        raise PodiumError(f"--sort {key}: not a column or a metrics/config key of these runs; "
                          f"e.g. {', '.join([*scores, 'time', 'duration', 'public'][:6])}")
    return {"competition": competition, "rows": sort_rows(finished, key), "unfinished": unfinished,
            "scores": scores, "varied": varied[:VARIED_SHOWN], "varied_left": varied[VARIED_SHOWN:], "sort": key}


def cell_text(row: Row, key: str) -> str:
    value = row.value(key)
    if value is None:
        return ""
    if key == "public":
        return row.public  # as Kaggle reported it
    if key == "time":
        return value.replace("T", " ")[:16]
    if key == "duration":
        return seconds_text(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return value if isinstance(value, str) else json.dumps(value)


def text_table(board: dict) -> str:
    columns = ["run", "time", *board["varied"], *board["scores"], "public", "duration"]
    lines = [[column for column in columns]]
    lines += [[cell_text(row, column) for column in columns] for row in board["rows"]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    out = ["  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in lines]
    if not board["rows"]:
        out.append("(no finished run)")
    out.insert(1, f"# best first by {board['sort']} ({'higher' if higher_is_better(board['sort']) else 'lower'} is better)"
               if board["sort"] != "time" else "# newest first")
    if board["varied_left"]:
        out.append(f"# also differing: {', '.join(board['varied_left'])}")
    if board["unfinished"]:
        out.append("unfinished (not compared):")
        out += [f"  {row.run}  {row.problem}" for row in board["unfinished"]]
    return "\n".join(out)


def write_html(board: dict, out: Path) -> Path:
    """The same table as a sortable page (click a header); each run links to its report."""
    out = Path(out)
    columns = ["run", "time", *board["varied"], *board["scores"], "public", "duration"]
    rows = []
    for row in board["rows"]:
        report = row.path / REPORT
        link = os.path.relpath(report, out.resolve().parent) if report.is_file() else ""
        rows.append({"link": link, "cells": [{"text": cell_text(row, column), "sort": _sort_value(row, column)}
                                             for column in columns]})
    html = environment().get_template("runs.html").render(
        competition=board["competition"], columns=columns, rows=rows, unfinished=board["unfinished"],
        sort=board["sort"], sort_index=columns.index(board["sort"]) if board["sort"] in columns else -1,
        descending=higher_is_better(board["sort"]) or board["sort"] == "time", varied_left=board["varied_left"],
        built=time.strftime("%Y-%m-%d %H:%M:%S"))
    atomic_write_text(out, html)
    return out


def _sort_value(row: Row, column: str) -> str:
    value = row.value(column)
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    return repr(float(value)) if isinstance(value, (int, float)) else str(value)
