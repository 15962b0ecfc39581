"""Run directories: `runs/<competition>/<run-id>/`, created fresh, never reused."""
from __future__ import annotations

import time
from pathlib import Path

from podium import __version__
from podium.errors import PodiumError
from podium.files import read_json, write_json


def new_run_dir(root: Path, competition: str, tag: str = "") -> Path:
    """Create and return a new, empty run directory; an existing one is never reused."""
    parent = Path(root) / competition
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{tag}" if tag else stamp
    for n in range(1, 1000):
        candidate = parent / (base if n == 1 else f"{base}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise PodiumError(f"cannot create a new run directory under {parent}")


def load_run(run_dir: Path) -> tuple[dict, dict]:
    """The resolved config and metrics of a finished run."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise PodiumError(f"{run_dir} is not a podium run directory (no config.json)")
    config = read_json(run_dir / "config.json")
    metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else {}
    return config, metrics


def update_metrics(run_dir: Path, **values) -> dict:
    path = Path(run_dir) / "metrics.json"
    metrics = read_json(path) if path.is_file() else {}
    metrics.update(values)
    write_json(path, metrics)
    return metrics


def write_run_record(run_dir: Path, plugin, data_dir: Path, config: dict, *, sample: bool, **extra) -> None:
    """`config.json` (the resolved config, seed included) and `run.json` (what ran, on what, with which backend)."""
    import os

    write_json(Path(run_dir) / "config.json", config)
    write_json(Path(run_dir) / "run.json", {
        "competition": plugin.name, "data_dir": str(Path(data_dir).resolve()), "sample": bool(sample),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "pipeline": plugin.pipeline, "podium_version": __version__,
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"), **extra,
    })
