"""Submit a CSV to Kaggle: validate it first, upload it with the official client, record it next to its run."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from podium.errors import PodiumError
from podium.files import atomic_write_text
from podium.submission.validate import validate_file

RECORDS = "submissions.jsonl"


def run_dir_of(path: Path) -> Path | None:
    """The run directory `path` lies in: its own folder if that holds run.json or config.json,
    else the nearest folder above holding run.json (config.json alone is too common a name)."""
    folder = Path(path).resolve().parent
    if (folder / "run.json").is_file() or (folder / "config.json").is_file():
        return folder
    return next((parent for parent in folder.parents if (parent / "run.json").is_file()), None)


def submit(plugin, path: Path, message: str, *, data_dir: Path | None = None,
           runs_root: Path = Path("runs")) -> tuple[dict, Path]:
    """Validate, upload and record one submission: (the record, the file it was appended to)."""
    path = Path(path)
    if plugin.kaggle_dataset:
        raise PodiumError(f"{plugin.name} uses the Kaggle dataset {plugin.kaggle_dataset}, "
                          "which has no competition to submit to")
    if not message.strip():
        raise PodiumError("the submission message (-m) is empty; Kaggle shows it next to the score")
    run_dir = run_dir_of(path) if path.is_file() else None
    if data_dir is None:
        data_dir = _run_data_dir(run_dir)
    reasons = validate_file(plugin, path, data_dir=data_dir)
    if reasons:
        raise PodiumError(f"{path} is not a valid {plugin.name} submission, so nothing was sent to Kaggle:\n  - "
                          + "\n  - ".join(reasons))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    from podium.kaggle.client import client, kaggle_errors, redact

    api = client()
    with kaggle_errors(f"submit {path.name} to {plugin.slug}", competition=plugin.slug):
        answer = api.competition_submit(str(path), message, plugin.slug, quiet=False)
    if answer.message == api.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE:
        raise PodiumError(f"the upload of {path} to Kaggle failed, so nothing was submitted; try again later")
    record = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "competition": plugin.name,
        "file": str(path.resolve()),
        "sha256": digest,
        "run_id": run_dir.name if run_dir else None,
        "message": message,
        "kaggle": redact(answer.message),
        "kaggle_ref": answer.ref or None,
    }
    records = (run_dir if run_dir else Path(runs_root) / plugin.name) / RECORDS
    _append(records, record)
    return record, records


def local_records(runs_root: Path, competition: str) -> list[dict]:
    """Every submission recorded under `runs_root` for `competition`, in its runs and beside them."""
    folder = Path(runs_root) / competition
    records = []
    for path in sorted([folder / RECORDS, *folder.glob(f"*/{RECORDS}")]):
        if path.is_file():
            records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


def run_records(run_dir: Path) -> list[dict]:
    """The submissions recorded from one run (its `submissions.jsonl`), oldest first."""
    path = Path(run_dir) / RECORDS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def record_scores(runs_root: Path, competition: str, scores: dict) -> int:
    """Write Kaggle's scores (`kaggle_ref` -> {"public_score": ..., "private_score": ...}) into the local
    records of those submissions, so a run's report and `podium runs` show them; returns how many changed."""
    folder = Path(runs_root) / competition
    changed = 0
    for path in sorted([folder / RECORDS, *folder.glob(f"*/{RECORDS}")]):
        if not path.is_file():
            continue
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        updated = []
        for record in records:
            new = {key: value for key, value in scores.get(record.get("kaggle_ref"), {}).items() if value not in (None, "")}
            if any(record.get(key) != value for key, value in new.items()):
                record = {**record, **new}
                changed += 1
            updated.append(record)
        if updated != records:
            atomic_write_text(path, "".join(json.dumps(record, sort_keys=True) + "\n" for record in updated))
    return changed


def _run_data_dir(run_dir: Path | None) -> Path | None:
    """The data folder a run was trained on, to check the ids against, when it is still there."""
    run_json = run_dir / "run.json" if run_dir else None
    if run_json is None or not run_json.is_file():
        return None
    try:
        data_dir = json.loads(run_json.read_text()).get("data_dir")
    except ValueError:
        return None
    return Path(data_dir) if data_dir and Path(data_dir).is_dir() else None


def _append(path: Path, record: dict) -> None:
    # Rewritten whole through a temp file, so a crash never leaves half a line.
    existing = path.read_text() if path.is_file() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    atomic_write_text(path, existing + json.dumps(record, sort_keys=True) + "\n")
