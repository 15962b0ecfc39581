"""The last stage of an image run: validation metrics with and without TTA, the fitted post-processing
(neighbour smoothing, temperature, clip; see `calibration.py`), the prediction files and the submission.
It also runs when `podium predict` predicts a run again.

The hold-out metrics (`val_*`) are always the main model's on rows it never saw. The test prediction is
the bag of the out-of-fold heads when the `oof` stage bagged them (every labelled row trains the
submission), else the main model's."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from podium.core.stage import RunState, Stage, register_stage
from podium.core.writer import write_submission
from podium.evaluation.clipping import apply_clip, clip_for_run, no_zero
from podium.files import atomic_write_bytes, atomic_write_text, unused_path
from podium.log import logger


@register_stage
class WriteSubmission(Stage):
    name = "submission"
    order = 90
    reads = ("tta", "submission")
    on_predict = True

    def run(self, state: RunState) -> None:
        views = int(state.config["tta"]["views"])
        main = finish_predictions(state, state.learner, views=views, suffix=state.files_suffix, main=True)
        state.metrics.update(main)
        metric = f"val_{state.plugin.metric}"
        for suffix, learner in state.alternatives.items():
            scores = finish_predictions(state, learner, views=views, suffix=suffix + state.files_suffix)
            logger.info(f"{suffix.strip('_')}: {metric} {scores[metric]:.4f} vs the main model's {main[metric]:.4f}")
            prefix = suffix.strip("_")
            state.metrics.update({f"{prefix}_{key}": value for key, value in scores.items()})
            state.metrics[f"{prefix}_better_than_single_stage"] = bool(scores[metric] < main[metric])
        if state.out is not None and state.metrics.get("submission"):
            atomic_write_bytes(Path(state.out), Path(state.metrics["submission"]).read_bytes(), overwrite=False)
            state.metrics["submission"] = str(state.out)


def finish_predictions(state: RunState, learner, *, views: int, suffix: str, main: bool = False) -> dict:
    """Metrics with and without TTA, the post-processing (the main model's: fitted by the run's stages; an
    alternative's: a clip tuned on validation), prediction files and the submission."""
    from podium.evaluation.calibration import apply_temperature, postprocess

    plugin, data, run_dir = state.plugin, learner.data, state.run_dir
    bag = getattr(state, "bag", None) if main else None
    valid_views = learner.tta("valid", views)
    files = getattr(state, "record", "full") != "metrics"  # a tuning trial records metrics only
    test_views = (bag or learner).tta("test", views) if len(data.test) and files else []
    valid_labels = data.valid_labels
    y_valid = plugin.label_indices(valid_labels)
    plain = plugin.evaluate(valid_labels, valid_views[0])
    metrics = dict(plain)
    valid_pred = np.mean(valid_views, axis=0)
    if len(valid_views) > 1:
        with_tta = plugin.evaluate(valid_labels, valid_pred)
        metrics.update({"tta_views": len(valid_views) - 1, "val_log_loss_no_tta": plain["val_log_loss"],
                        "val_accuracy_no_tta": plain["val_accuracy"], **with_tta})
    calibration = getattr(state, "calibration", None) if main else None
    neighbours = getattr(state, "neighbours", None) if main else None
    if main and (calibration or (neighbours and neighbours.get("k"))):
        from podium.core.metrics import log_loss
        from podium.vision.stages.neighbours import smooth_split

        smoothed = valid_pred
        if neighbours and neighbours.get("k"):
            smoothed = smooth_split(data, "valid", valid_pred, k=int(neighbours["k"]))
            metrics["val_log_loss_smoothed"] = log_loss(y_valid, smoothed)
            metrics["val_accuracy_smoothed"] = float((smoothed.argmax(axis=1) == y_valid).mean())
        if calibration:
            calibrated = apply_temperature(smoothed, calibration["temperature"])
            metrics["val_log_loss_calibrated"] = log_loss(y_valid, calibrated)
            clip = {"lo": calibration["lo"], "hi": calibration["hi"],
                    "log_loss_after": log_loss(y_valid, apply_clip(calibrated, calibration["lo"], calibration["hi"]))}
        else:
            clip = clip_for_run(state.config["submission"]["clip"], y_valid, smoothed)
        post = lambda split, pred: apply_clip(postprocess(state, split, pred, clip=False), clip["lo"], clip["hi"])  # noqa: E731
    else:
        clip = clip_for_run(state.config["submission"]["clip"], y_valid, valid_pred)
        post = lambda split, pred: apply_clip(pred, clip["lo"], clip["hi"])  # noqa: E731
    metrics.update({"val_log_loss_clipped": clip["log_loss_after"], "clip": [clip["lo"], clip["hi"]]})
    if bag is not None:
        metrics["test_prediction"] = getattr(bag, "description", f"mean of {len(bag.learners)} out-of-fold heads")
    if not files:
        return metrics
    write_predictions(plugin, run_dir, f"valid_predictions{suffix}.csv", data.valid_ids, valid_pred, valid_labels)
    if test_views:
        test_pred = np.mean(test_views, axis=0)
        write_predictions(plugin, run_dir, f"test_predictions{suffix}.csv", data.test["id"], test_pred)
        frame = plugin.submission_frame(data.test["id"].tolist(), no_zero(post("test", test_pred)))
        path = write_submission(plugin, frame, unused_path(Path(run_dir) / f"submission{suffix}.csv"),
                                data_dir=state.data_dir)
        metrics["submission"] = str(path)
    return metrics


def write_predictions(plugin, run_dir: Path, name: str, ids, predictions, labels=None) -> Path:
    frame = pd.DataFrame(np.asarray(predictions), columns=plugin.prediction_columns())
    if labels is not None:
        frame.insert(0, "label", list(labels))
    frame.insert(0, "id", list(ids))
    return atomic_write_text(unused_path(Path(run_dir) / name), frame.to_csv(index=False, float_format="%.6f"),
                             overwrite=False)


@register_stage
class LearningCurve(Stage):
    """`learning_curve.png`: loss and accuracy per epoch of every training stage, in the order they ran."""

    name = "learning_curve"
    order = 95
    reads = ()

    def run(self, state: RunState) -> None:
        from podium.vision.training import plot_learning_curve

        histories = sorted(Path(state.run_dir).glob("history_*.csv"), key=lambda p: p.stat().st_mtime)
        plot_learning_curve(histories, state.run_dir / "learning_curve.png")


# The evaluation layer's other stages register on import (the runner imports this module).
from podium.evaluation import calibration, heads_ensemble, oof  # noqa: E402,F401
