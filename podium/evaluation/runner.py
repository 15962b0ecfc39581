"""Start a run: check the config, create the run directory, record it, run the plugin's pipeline.

A pipeline is a module named by the plugin's `pipeline` with
`check(plugin, config, data_dir=None) -> stages` (every refusal, before anything is created; the
enabled stages in order), `run(plugin, data_dir, config, run_dir, *, sample, callbacks=(), stages=...)
-> metrics` and `predict_again(run_dir, *, tta=None, pairs=None, out=None, stages=...) -> dict`, so a
new kind of competition brings one new pipeline module. The stages registered for a pipeline include
the evaluation layer's own (calibration, clipping, the submission), registered by importing them here.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from podium.config import deep_update, resolve
from podium.core import backend
from podium.core.manifest import check_manifest, write_manifest
from podium.core.resources import MemorySampler
from podium.core.rundir import complete_run, load_run, new_run_dir, update_metrics, write_run_record
from podium.core.stage import Stage, registered_stages
from podium.errors import PodiumError
from podium.evaluation import finish  # noqa: F401  (registers the evaluation stages)
from podium.files import name_option, read_json
from podium.log import logger

# pipeline name -> module
PIPELINES = {
    "image_classification": "podium.vision.pipeline",
    "collaborative_filtering": "podium.collab.run",
}


def pipeline_module(name: str):
    if name not in PIPELINES:
        raise PodiumError(f"unknown pipeline {name!r}; known: {', '.join(PIPELINES)}")
    return importlib.import_module(PIPELINES[name])


def resolve_config(plugin, *, files=(), sets=(), overrides=None) -> dict:
    config = resolve(plugin.default_config(), files=files, sets=sets, overrides=overrides,
                     ranges=plugin.config_ranges())
    if isinstance(config.get("paths", {}).get("cache"), str):
        name_option(config["paths"]["cache"], "paths.cache")  # a fault in the cache names the setting
    return config


RECORDS = ("full", "metrics")


class RecordMetricsOnly(Stage):
    """First stage of a run started with `record="metrics"` (a tuning trial): the stages that honour
    `state.record` then write no model, history, prediction or submission file, and the learning curve is
    left out; the run directory keeps its record (run.json, config.json) and metrics.json."""

    name = "record_metrics_only"
    order = -1000

    def run(self, state) -> None:
        state.record = "metrics"


def start_run(plugin, data_dir: Path, config: dict, *, runs_root: Path = Path("runs"),
              sample: bool = False, tag: str = "", callbacks=(), record: str = "full") -> tuple[Path, dict]:
    """Train and predict one run of `plugin` on `data_dir`; return (run_dir, metrics).

    `callbacks` (Keras callbacks, e.g. a pruning callback) are added to the main training stage.
    `record="metrics"` (tuning trials): the metrics only, no model or prediction files, where the
    pipeline has stages (image runs); `"full"`: every file of a normal run.
    """
    if record not in RECORDS:
        raise PodiumError(f"record must be one of {', '.join(RECORDS)}, got {record!r}")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise PodiumError(f"data folder {data_dir} not found")
    pipeline = pipeline_module(plugin.pipeline)
    stages = pipeline.check(plugin, config, data_dir=data_dir)
    if record == "metrics" and stages:
        stages = [RecordMetricsOnly, *(cls for cls in stages if cls.name != "learning_curve")]
    backend.configure(config)  # before any model is built, and before run.json records it
    run_dir = new_run_dir(runs_root, plugin.name, tag or f"s{config['seed']}{'-sample' if sample else ''}")
    write_run_record(run_dir, plugin, data_dir, config, sample=sample)
    logger.info(f"run directory: {run_dir}")
    hooks = {"callbacks": list(callbacks)} if callbacks else {}
    if stages:
        hooks["stages"] = stages
    with MemorySampler() as sampler:
        metrics = pipeline.run(plugin, data_dir, config, run_dir, sample=sample, **hooks)
    metrics["run_seconds"], metrics["peak_rss_mib"] = round(sampler.seconds, 1), round(sampler.peak_mib, 1)
    logger.info("run took %s, peak memory %s MiB (anonymous resident)", _duration(sampler.seconds),
                f"{sampler.peak_mib:,.0f}")
    metrics = update_metrics(run_dir, **metrics)
    if record == "full":
        record_manifest(pipeline, run_dir, stages)
    return complete_run(run_dir), metrics  # only now does the folder look like a run


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes // 60}h {minutes % 60:02d}m {seconds:02d}s" if minutes >= 60 else f"{minutes}m {seconds:02d}s"


def record_manifest(pipeline, run_dir: Path, stages) -> dict:
    """The manifest of a run that finished: the files its stages (or its stageless pipeline) left."""
    return write_manifest(run_dir, stages or (), leaves=tuple(getattr(pipeline, "LEAVES", ())))


def demo_config(plugin, base: dict | None = None) -> dict:
    """The plugin's defaults with its demo overrides (small, offline, fast)."""
    return deep_update(base or plugin.default_config(), plugin.demo_overrides())


def predict_again(run_dir: Path, **options) -> dict:
    """Predict a finished run again through its pipeline (`podium predict`): new files beside the old ones.

    The run is checked against its manifest before anything is loaded, and the stages that shaped its
    submission (those the manifest says ran and replay on predict) run again, in order."""
    config, _ = load_run(run_dir)
    manifest = check_manifest(run_dir)
    name = read_json(Path(run_dir) / "run.json")["pipeline"]
    pipeline = pipeline_module(name)  # imported first: it registers the pipeline's own stages
    known = {cls.name: cls for cls in registered_stages(name)}
    unknown = [stage for stage in manifest.get("replay", []) if stage not in known]
    if unknown:
        raise PodiumError(f"run {run_dir} was shaped by stage(s) {', '.join(unknown)} that this podium does not "
                          "have; predict it with the podium version that made it")
    backend.configure(config)
    stages = [known[stage] for stage in manifest.get("replay", [])]
    if stages:
        options.update(stages=stages, manifest=manifest)
    with MemorySampler():  # each stage's peak memory in the prediction's metrics
        return pipeline.predict_again(Path(run_dir), **options)
