"""The image-classification pipeline: the table, then the registered stages in order over one run state.

The stages (`podium.vision.stages`): load the rows and cached features, box targets, train the head,
box report, pseudo-labels, fine-tuning, crop-then-classify; the evaluation layer adds its own
(calibration, clipping, the prediction files and the submission) through the runner.
"""
from __future__ import annotations

from pathlib import Path

from podium.core import backend
from podium.core.rundir import load_run
from podium.core.stage import RunState, check_stages, run_stages
from podium.errors import PodiumError
from podium.vision import stages as _stages  # noqa: F401  (registers the image stages)
from podium.vision.data import load_image_data
from podium.vision.learner import Learner

PIPELINE = "image_classification"


def check(plugin, config: dict, data_dir=None) -> list:
    """Every refusal of the stages' settings and combinations, before any run directory or feature exists."""
    backend.check(config)
    return check_stages(plugin, config, PIPELINE, data_dir=data_dir)


def run(plugin, data_dir: Path, config: dict, run_dir: Path, *, sample: bool, callbacks=(), stages=None) -> dict:
    """Run every enabled stage (`stages`: the runner's ordered list, the evaluation stages included)."""
    stages = stages if stages is not None else check_stages(plugin, config, PIPELINE, data_dir=data_dir)
    state = RunState(plugin=plugin, config=config, data_dir=Path(data_dir), run_dir=Path(run_dir), sample=sample,
                     callbacks=list(callbacks))
    run_stages(stages, state)
    return state.metrics


def predict_again(run_dir: Path, *, tta: int | None = None, pairs=None, out=None, stages=(),
                  manifest: dict | None = None) -> dict:
    """Predict a finished run again (e.g. with more TTA views) into new files beside the old ones."""
    from podium.competitions import get
    from podium.files import read_json, unused_path, write_json

    if pairs is not None:
        raise PodiumError("--pairs is for rating competitions; image runs predict their test folder")
    run_dir = Path(run_dir)
    config, _ = load_run(run_dir)
    record = read_json(run_dir / "run.json")
    plugin = get(record["competition"])
    if tta is not None:
        config["tta"]["views"] = int(tta)
    views = int(config["tta"]["views"])
    data = load_image_data(plugin, Path(record["data_dir"]), config, sample=bool(record["sample"]))
    saved = run_dir / "model.keras" if (run_dir / "model.keras").is_file() else run_dir / "head.keras"
    state = RunState(plugin=plugin, config=config, data_dir=Path(record["data_dir"]), run_dir=run_dir,
                     sample=bool(record["sample"]), data=data, learner=Learner.load(data, saved),
                     files_suffix=f"_tta{views}", out=out, manifest=manifest)
    run_stages(stages, state, predicting=True)
    write_json(unused_path(run_dir / f"predict_tta{views}.json"), state.metrics)
    return state.metrics
