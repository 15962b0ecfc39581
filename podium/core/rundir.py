"""Run directories: `runs/<competition>/<run-id>/`, created fresh, never reused, complete or visibly not.

A run directory is created with an `INCOMPLETE` marker file and loses it only when its command
finished (`complete_run`): a failed or interrupted run never looks like a run. Every reader goes
through `check_run` (via `load_run`), which says in one line what a run lacks. A command that stops
on a user's error removes the run directories it started (`discard_unfinished_runs`, called by the
CLI); an interrupted or crashed one keeps them, marked, and the marker says how to remove it.
"""
from __future__ import annotations

import os
import shutil
import time
import zipfile
from pathlib import Path

from podium import __version__
from podium.errors import PodiumError
from podium.files import atomic_write_text, ensure_folder, read_json, write_json

INCOMPLETE = "INCOMPLETE"  # marker file of a run that has not finished
RUN_KEYS = ("competition", "pipeline", "data_dir", "sample")  # what every run.json says
_STARTED: list[Path] = []  # run directories this process created and has not completed


def new_run_dir(root: Path, competition: str, tag: str = "") -> Path:
    """Create and return a new, empty run directory, marked incomplete; an existing one is never reused."""
    parent = ensure_folder(Path(root) / competition, "runs folder")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{tag}" if tag else stamp
    for n in range(1, 1000):
        candidate = parent / (base if n == 1 else f"{base}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise PodiumError(f"cannot create run directory {candidate}: {exc.strerror or exc}") from None
        _mark_incomplete(candidate)
        return candidate
    raise PodiumError(f"cannot create a new run directory under {parent}")


def create_run_folder(path: Path) -> Path:
    """A run directory at a chosen path (e.g. a fold of a cross-validation), marked incomplete."""
    path = Path(path)
    path.mkdir()
    _mark_incomplete(path)
    return path


def _mark_incomplete(run_dir: Path) -> None:
    atomic_write_text(run_dir / INCOMPLETE,
                      f"This run has not finished (started {time.strftime('%Y-%m-%d %H:%M:%S')}, process "
                      f"{os.getpid()}). If that process is gone it failed or was interrupted: remove this folder "
                      f"(rm -r {run_dir}) and run the command again; cached features are kept, so it resumes "
                      "from them.\n")
    _STARTED.append(run_dir)


def complete_run(run_dir: Path) -> Path:
    """Mark `run_dir` finished: from now on it is a run every command reads."""
    run_dir = Path(run_dir)
    (run_dir / INCOMPLETE).unlink(missing_ok=True)
    if run_dir in _STARTED:
        _STARTED.remove(run_dir)
    return run_dir


def unfinished_runs() -> list[Path]:
    """Run directories this process started and has not completed, oldest first."""
    return [path for path in _STARTED if (path / INCOMPLETE).is_file()]


def discard_unfinished_runs() -> list[Path]:
    """Remove the run directories this process started and did not complete (after a user's error:
    nothing half-written is left). Returns what was removed."""
    removed = []
    for path in reversed(unfinished_runs()):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    _STARTED.clear()
    return removed


def check_run(run_dir: Path, *, model: bool = False, keys=("competition",), metrics: bool = False) -> dict:
    """The run record (run.json) of a complete run; else one line naming what is missing or damaged.

    `keys`: what run.json must say. `metrics`: metrics.json must be there (every run podium finishes
    writes it; a run from before the INCOMPLETE marker existed is only known complete by it).
    `model`: the run must also hold a loadable model file (`head.keras` or `model.keras`, a zip archive).
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise PodiumError(f"run directory {run_dir} not found")
    if not run_dir.is_dir():
        raise PodiumError(f"{run_dir} is a file, not a run directory")
    if not (run_dir / "config.json").is_file():
        raise PodiumError(f"{run_dir} is not a podium run directory (no config.json)")
    if (run_dir / INCOMPLETE).is_file():
        raise PodiumError(f"run {run_dir} did not finish (failed or interrupted; see its {INCOMPLETE} file): "
                          f"remove it (rm -r {run_dir}) and run again")
    for name in ("run.json", "metrics.json") if metrics else ("run.json",):
        if not (run_dir / name).is_file():
            raise PodiumError(f"run {run_dir} is incomplete: no {name} (remove it and run again)")
    record = read_json(run_dir / "run.json")
    if not isinstance(record, dict):
        raise PodiumError(f"{run_dir / 'run.json'}: expected a JSON object, got {type(record).__name__}")
    missing = [key for key in keys if key not in record]
    if missing:
        raise PodiumError(f"{run_dir / 'run.json'} lacks {', '.join(missing)}: not a run record podium wrote")
    for name in ("config.json", "metrics.json"):
        if (run_dir / name).is_file() and not isinstance(read_json(run_dir / name), dict):
            raise PodiumError(f"{run_dir / name}: expected a JSON object")
    if model:
        found = [run_dir / name for name in ("model.keras", "head.keras") if (run_dir / name).exists()]
        if not found:
            raise PodiumError(f"run {run_dir} has no model file (head.keras or model.keras) to predict with")
        for path in found:
            if not zipfile.is_zipfile(path):
                raise PodiumError(f"{path} is damaged (truncated or not a Keras file); train the run again")
    return record


def load_run(run_dir: Path) -> tuple[dict, dict]:
    """The resolved config and metrics of a finished run (checked by `check_run`)."""
    run_dir = Path(run_dir)
    check_run(run_dir)
    metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else {}
    return read_json(run_dir / "config.json"), metrics


def update_metrics(run_dir: Path, **values) -> dict:
    path = Path(run_dir) / "metrics.json"
    metrics = read_json(path) if path.is_file() else {}
    metrics.update(values)
    write_json(path, metrics)
    return metrics


def write_run_record(run_dir: Path, plugin, data_dir: Path, config: dict, *, sample: bool, **extra) -> None:
    """`config.json` (the resolved config, seed included) and `run.json` (what ran, on what, with which backend).

    The backend, its devices, the precision and data parallelism are read from Keras as they are set now
    (by `podium.core.backend.configure`), so `run.json` says what the run really used.
    """
    from podium.core.backend import backend_report

    write_json(Path(run_dir) / "config.json", config)
    write_json(Path(run_dir) / "run.json", {
        "competition": plugin.name, "data_dir": str(Path(data_dir).resolve()), "sample": bool(sample),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "pipeline": plugin.pipeline, "podium_version": __version__,
        **backend_report(), **extra,
    })
