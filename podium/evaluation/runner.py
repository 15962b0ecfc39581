"""Start a run: resolve the config, create the run directory, record it, call the plugin's pipeline.

Pipelines are looked up by the plugin's `pipeline` name, so a new kind of competition
brings one new pipeline function:
`fn(plugin, data_dir, config, run_dir, *, sample, callbacks=()) -> metrics`.
"""
from __future__ import annotations

import importlib
import time
from pathlib import Path

from podium import __version__
from podium.errors import PodiumError
from podium.files import write_json
from podium.config import deep_update, resolve
from podium.core.rundir import new_run_dir, update_metrics

# pipeline name -> "module:function" that trains a run
PIPELINES = {
    "image_classification": "podium.vision.pipeline:run_image_classification",
    "collaborative_filtering": "podium.collab.run:run_collab",
}
# pipeline name -> "module:function" that predicts again from a finished run:
# fn(run_dir, *, tta=None, pairs=None, out=None) -> dict of what it wrote and measured
PREDICTORS = {
    "image_classification": "podium.vision.pipeline:predict_again",
    "collaborative_filtering": "podium.collab.run:predict_collab",
}


def pipeline_function(name: str, table: dict = PIPELINES):
    if name not in table:
        raise PodiumError(f"unknown pipeline {name!r}; known: {', '.join(table)}")
    module_name, function_name = table[name].split(":")
    return getattr(importlib.import_module(module_name), function_name)


def resolve_config(plugin, *, files=(), sets=(), overrides=None) -> dict:
    return resolve(plugin.default_config(), files=files, sets=sets, overrides=overrides)


def start_run(plugin, data_dir: Path, config: dict, *, runs_root: Path = Path("runs"),
              sample: bool = False, tag: str = "", callbacks=()) -> tuple[Path, dict]:
    """Train and predict one run of `plugin` on `data_dir`; return (run_dir, metrics).

    `callbacks` (Keras callbacks, e.g. a pruning callback) are added to the main training stage.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise PodiumError(f"data folder {data_dir} not found")
    run_dir = new_run_dir(runs_root, plugin.name, tag or f"s{config['seed']}{'-sample' if sample else ''}")
    write_json(run_dir / "config.json", config)
    write_json(run_dir / "run.json", {
        "competition": plugin.name,
        "data_dir": str(data_dir.resolve()),
        "sample": bool(sample),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "pipeline": plugin.pipeline,
        "podium_version": __version__,
    })
    print(f"run directory: {run_dir}")
    hooks = {"callbacks": list(callbacks)} if callbacks else {}
    metrics = pipeline_function(plugin.pipeline)(plugin, data_dir, config, run_dir, sample=sample, **hooks)
    return run_dir, update_metrics(run_dir, **metrics)


def demo_config(plugin, base: dict | None = None) -> dict:
    """The plugin's defaults with its demo overrides (small, offline, fast)."""
    return deep_update(base or plugin.default_config(), plugin.demo_overrides())
