"""Sections every report has: the run at a glance, its metrics (with the public score of its submissions),
its learning curves, and its resolved config with the differences from the plugin's defaults."""
from __future__ import annotations

import json
import time

import pandas as pd

from podium.report import plots
from podium.report.run import LeftOut, RunFiles, Section, cell, fmt

# Rows of the metrics table: (what, hold-out key, out-of-fold key); a row none of whose keys a run has is not shown.
METRIC_ROWS = (
    ("log loss", "val_log_loss", "oof_log_loss"),
    ("log loss, before calibration", "val_log_loss_uncalibrated", "oof_log_loss_uncalibrated"),
    ("log loss, neighbour-smoothed", "val_log_loss_smoothed", "oof_log_loss_after_neighbours"),
    ("log loss, calibrated", "val_log_loss_calibrated", "oof_log_loss_calibrated"),
    ("log loss, calibrated and clipped", "val_log_loss_calibrated_clipped", "oof_log_loss_calibrated_clipped"),
    ("log loss, clipped", "val_log_loss_clipped", "oof_log_loss_clipped"),
    ("log loss, without TTA", "val_log_loss_no_tta", "oof_log_loss_no_tta"),
    ("log loss, before pseudo-labels", "val_log_loss_before_pseudo", ""),
    ("accuracy", "val_accuracy", "oof_accuracy"),
    ("accuracy, without TTA", "val_accuracy_no_tta", ""),
    ("box IoU (mean)", "val_box_iou", ""),
    ("RMSE", "val_rmse", ""),
    ("MAE", "val_mae", ""),
    ("RMSE, biases only", "val_rmse_biases_only", ""),
    ("RMSE, global mean", "val_rmse_global_mean", ""),
)


def summary(run: RunFiles, section: Section) -> None:
    record, metrics = run.record, run.metrics
    rows = [("competition", record.get("competition", "")), ("run", run.id), ("started", record.get("created", "")),
            ("data", record.get("data_dir", "")), ("sample set only", record.get("sample", "")),
            ("backend", f"{record.get('backend', '')} on {', '.join(record.get('devices') or []) or '?'}"),
            ("podium", record.get("podium_version", "")), ("duration", duration_text(run))]
    for key in ("train_rows", "valid_rows", "oof_rows", "test_prediction", "submission"):
        if key in metrics:
            rows.append((key.replace("_", " "), metrics[key]))
    section.table(["", ""], [[name, fmt(value)] for name, value in rows if value not in ("", None)], id="run-table")


def duration_seconds(run: RunFiles) -> float | None:
    """The run's wall time: `run_seconds` where the run recorded it, else from its start to its metrics file."""
    if isinstance(run.metrics.get("run_seconds"), (int, float)):
        return float(run.metrics["run_seconds"])
    try:  # run.json's time is local, as time.strftime wrote it
        started = time.mktime(time.strptime(run.record["created"], "%Y-%m-%dT%H:%M:%S"))
        return max(0.0, (run.dir / "metrics.json").stat().st_mtime - started)
    except (KeyError, ValueError, OSError, TypeError):
        return None


def duration_text(run: RunFiles) -> str:
    return seconds_text(duration_seconds(run))


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def public_score(records: list) -> tuple[str, str]:
    """(the latest public score of the recorded submissions, a note on it)."""
    scored = [r for r in records if r.get("public_score") not in (None, "")]
    if scored:
        latest = scored[-1]
        return str(latest["public_score"]), f"submitted {latest.get('time', '')}: {latest.get('message', '')}"
    if records:
        return "", (f"submitted {records[-1].get('time', '')}; no public score recorded yet "
                    "(`podium submissions COMPETITION` fetches it)")
    return "", "not submitted"


def metrics_table(run: RunFiles, section: Section) -> None:
    metrics = run.metrics
    with_oof = any(oof_key in metrics for _, _, oof_key in METRIC_ROWS if oof_key)
    columns = (1, 2) if with_oof else (1,)
    rows = []
    for row in METRIC_ROWS:
        if any(row[i] in metrics for i in columns if row[i]):
            rows.append([row[0], *(cell(fmt(metrics.get(row[i])), key=row[i] if row[i] in metrics else "", number=True)
                                   for i in columns), ""])
    score, note = public_score(run.submissions())
    rows.append(["public score (Kaggle)", cell(score, key="public_score" if score else "", number=True),
                 *([""] if with_oof else []), note])
    section.table(["", "hold-out", *(["out-of-fold"] if with_oof else []), ""], rows, id="metrics-table")
    shown = {key for _, valid_key, oof_key in METRIC_ROWS for key in (valid_key, oof_key)}
    others = [[key, cell(fmt(value), key=key, number=True)] for key, value in sorted(metrics.items())
              if key not in shown and isinstance(value, (int, float, str)) and key != "submission"]
    if others:
        section.table(["other numbers in metrics.json", ""], others, id="other-metrics")


def learning_curves(run: RunFiles, section: Section) -> None:
    histories = {}
    for path in sorted(run.dir.glob("history*.csv")):
        frame = pd.read_csv(path)
        if len(frame):
            histories[path.stem.removeprefix("history").strip("_") or "model"] = frame.reset_index(drop=True)
    if not histories:
        raise LeftOut("the run has no history*.csv (no training epochs recorded)")
    section.image(plots.learning_curves(histories), alt="learning curves",
                  caption="per epoch; dashed: training rows, solid: validation rows")


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and not value.get("__free__"):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config(run: RunFiles, section: Section) -> None:
    ours, defaults = flatten(run.config), flatten(run.plugin.default_config())
    changed = [[key, json.dumps(defaults[key]) if key in defaults else "(not a default key)", json.dumps(value)]
               for key, value in sorted(ours.items()) if key not in defaults or defaults[key] != value]
    dropped = [[key, json.dumps(defaults[key]), "(absent: an older podium)"] for key in sorted(defaults) if key not in ours]
    if changed or dropped:
        section.table(["key", f"{run.plugin.name} default", "this run"], changed + dropped, id="config-changes")
    else:
        section.text(f"the plugin's defaults, unchanged (seed {run.config.get('seed')})")
    section.pre(json.dumps(run.config, indent=2, sort_keys=True))
