"""Average the predictions of finished runs of one competition into one submission.

Members must share the validation and test ids (the same split), so the ensemble's
validation score is measured on exactly the rows each member was measured on.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.files import check_output_file, read_json, unused_path, write_json
from podium.core.rundir import load_run


@dataclass
class Member:
    run_dir: Path
    record: dict  # run.json
    valid: pd.DataFrame  # id, label, prediction columns
    test: pd.DataFrame  # id, prediction columns


def ensemble_runs(run_dirs, *, out: Path | None = None, runs_root: Path | None = None) -> dict:
    """Average the runs' validation and test predictions, score them, write the submission.

    Writes the submission CSV to `out` (default `<runs_root or the runs' common parent>/
    ensembles/ensemble-<timestamp>.csv`) and a report `<out stem>.json` beside it; returns the report.
    """
    from podium.competitions import get
    from podium.evaluation.clipping import apply_clip, choose_clip
    from podium.core.writer import write_submission

    run_dirs = [Path(run_dir) for run_dir in run_dirs]
    if len(run_dirs) < 2:
        raise PodiumError(f"an ensemble needs at least 2 run directories, got {len(run_dirs)}")
    repeated = {str(d) for d in run_dirs if sum(d.resolve() == other.resolve() for other in run_dirs) > 1}
    if repeated:
        raise PodiumError(f"run directory given more than once: {sorted(repeated)[0]}")
    out, report_path = _output_paths(run_dirs, out, runs_root)

    records = [_run_record(run_dir) for run_dir in run_dirs]
    competition = records[0]["competition"]
    for run_dir, record in zip(run_dirs, records):
        if record["competition"] != competition:
            raise PodiumError(f"{run_dir} is a run of {record['competition']!r}, but {run_dirs[0]} is a run of "
                              f"{competition!r}: ensemble runs of one competition")
    plugin = get(competition)
    columns = plugin.prediction_columns()
    members = [_load_member(plugin, run_dir, record, columns) for run_dir, record in zip(run_dirs, records)]
    reference = members[0]
    for member in members[1:]:
        _align(member, reference)

    labels = reference.valid["label"].to_numpy()
    valid_preds = [member.valid[columns].to_numpy(dtype=np.float64) for member in members]
    test_preds = [member.test[columns].to_numpy(dtype=np.float64) for member in members]
    valid_mean, test_mean = np.mean(valid_preds, axis=0), np.mean(test_preds, axis=0)
    classification = plugin.task == "classification"

    def shaped(preds):
        # A single-column non-classification prediction (a rating) is a vector for the plugin.
        return preds if classification or preds.shape[1] > 1 else preds[:, 0]

    member_metrics = [plugin.evaluate(labels, shaped(preds)) for preds in valid_preds]
    ensemble_metrics = dict(plugin.evaluate(labels, shaped(valid_mean)))
    if classification:
        clip = choose_clip(plugin.label_indices(labels), valid_mean)
        ensemble_metrics["val_log_loss_clipped"] = clip["log_loss_after"]
        ensemble_metrics["clip"] = [clip["lo"], clip["hi"]]
        test_mean = apply_clip(test_mean, clip["lo"], clip["hi"])

    data_dir = next((Path(m.record["data_dir"]) for m in members
                     if m.record.get("data_dir") and Path(m.record["data_dir"]).is_dir()), None)
    frame = plugin.submission_frame(reference.test["id"].tolist(), shaped(test_mean))
    write_submission(plugin, frame, out, data_dir=data_dir)
    report = {
        "competition": competition,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "members": [{"run": str(m.run_dir), "metrics": metrics} for m, metrics in zip(members, member_metrics)],
        "ensemble": ensemble_metrics,
        "valid_rows": len(labels),
        "test_rows": len(frame),
        "submission": str(out),
        # None: no member's data folder exists any more, so the ids were not checked against it.
        "ids_checked_against": None if data_dir is None else str(data_dir),
    }
    write_json(report_path, report, overwrite=False)
    print(format_table(report, f"val_{plugin.metric}"))
    print(f"submission: {out}\nreport: {report_path}")
    return report


def format_table(report: dict, metric: str) -> str:
    """Each member's main metric, then the ensemble's (and its clipped log loss)."""
    rows = [(member["run"], member["metrics"].get(metric)) for member in report["members"]]
    ensemble = report["ensemble"]
    rows.append((f"ensemble of {len(report['members'])}", ensemble.get(metric)))
    if "val_log_loss_clipped" in ensemble:
        lo, hi = ensemble["clip"]
        rows.append((f"ensemble, clipped to [{lo:g}, {hi:g}]", ensemble["val_log_loss_clipped"]))
    width = max(len(name) for name, _ in rows)
    lines = [f"{'run':{width}s}  {metric}"]
    lines += [f"{name:{width}s}  {value:.5f}" if value is not None else f"{name:{width}s}  -" for name, value in rows]
    return "\n".join(lines)


def _output_paths(run_dirs: list[Path], out, runs_root) -> tuple[Path, Path]:
    """(submission path, report path), both free; checked before any work is done."""
    if out is None:
        root = Path(runs_root) if runs_root is not None else Path(os.path.commonpath(
            [str(run_dir.resolve().parent) for run_dir in run_dirs]))
        out = unused_path(root / "ensembles" / f"ensemble-{time.strftime('%Y%m%d-%H%M%S')}.csv")
    out = Path(out)
    report_path = out.with_name(f"{out.stem}.json")
    if report_path == out:
        raise PodiumError(f"--out {out}: the submission must not be a .json file (the report is written there)")
    for path in (out, report_path):
        check_output_file(path, "--out" if path == out else "ensemble report")
    return out, report_path


def _run_record(run_dir: Path) -> dict:
    load_run(run_dir)  # a clear error when this is not a run directory
    record = read_json(run_dir / "run.json")
    if not isinstance(record, dict) or not record.get("competition"):
        raise PodiumError(f"{run_dir / 'run.json'} does not name the run's competition")
    return record


def _load_member(plugin, run_dir: Path, record: dict, columns: list[str]) -> Member:
    return Member(run_dir, record,
                  _read_predictions(run_dir / "valid_predictions.csv", ["id", "label", *columns], columns),
                  _read_predictions(run_dir / "test_predictions.csv", ["id", *columns], columns))


def _read_predictions(path: Path, required: list[str], columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise PodiumError(f"{path} not found: is the run finished?")
    try:
        frame = pd.read_csv(path, dtype={"id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PodiumError(f"{path} cannot be read as CSV: {exc}") from None
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise PodiumError(f"{path} lacks columns {missing} (has {list(frame.columns)})")
    duplicated = frame["id"].duplicated()
    if duplicated.any():
        raise PodiumError(f"{path}: duplicate id {frame.loc[duplicated, 'id'].iloc[0]!r}")
    values = frame[columns].apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan)).all(axis=1)
    if bad.any():
        raise PodiumError(f"{path}: {int(bad.sum())} rows with missing or non-numeric predictions, "
                          f"first id {frame['id'].iloc[int(np.flatnonzero(bad)[0])]!r}")
    frame[columns] = values
    return frame


def _align(member: Member, reference: Member) -> None:
    """Reorder `member`'s rows to `reference`'s ids; refuse when the id sets or labels differ."""
    for part in ("valid", "test"):
        ours, theirs = getattr(member, part), getattr(reference, part)
        extra = sorted(set(ours["id"]) - set(theirs["id"]))
        lacking = sorted(set(theirs["id"]) - set(ours["id"]))
        if extra or lacking:
            example = f"e.g. {extra[0]!r} only in {member.run_dir}" if extra else \
                f"e.g. {lacking[0]!r} only in {reference.run_dir}"
            hint = " (was it trained with another split, seed or sample setting?)" if part == "valid" else ""
            raise PodiumError(f"{member.run_dir}: its {part} ids differ from those of {reference.run_dir} "
                              f"({len(extra)} extra, {len(lacking)} lacking; {example}){hint}")
        setattr(member, part, ours.set_index("id").loc[theirs["id"]].reset_index())
    differ = member.valid["label"].astype(str).to_numpy() != reference.valid["label"].astype(str).to_numpy()
    if differ.any():
        first = int(np.flatnonzero(differ)[0])
        raise PodiumError(f"{member.run_dir}: validation label of id {reference.valid['id'].iloc[first]!r} is "
                          f"{member.valid['label'].iloc[first]!r}, but {reference.valid['label'].iloc[first]!r} "
                          f"in {reference.run_dir}")
