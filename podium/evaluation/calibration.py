"""Calibration as a stage: a temperature fitted on out-of-fold predictions, then a clip with a floor.

Temperature scaling divides the log-probabilities by one number T (T > 1 softens an over-confident
model, T < 1 sharpens a timid one) and renormalises; for two classes it is Platt scaling without a
bias. It is fitted on the out-of-fold predictions (every labelled row, each predicted by a model
that never saw it) when the `oof` stage ran, else on the hold-out predictions.

The clip is then chosen on the calibrated predictions, but never below a floor: a validation set
without a confident mistake is no evidence that no test image is one (on real Dogs vs. Cats the
default run's validation chose no clip, and a few confidently wrong test images doubled the test
log loss). The floor is the larger of `calibration.clip_floor` and 3/N (N rows the clip was chosen
on): 3/N is the 95% upper bound of an error rate when none was seen ("rule of three"), and the clip
that minimises log loss for a confident error rate e is about e.

`calibration.json` keeps what was fitted, so `podium predict` applies the same transform.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from podium.core.metrics import log_loss
from podium.core.stage import RunState, Stage, register_stage
from podium.errors import PodiumError
from podium.evaluation.clipping import DEFAULT_GRID, apply_clip
from podium.files import read_json, write_json
from podium.log import logger

__all__ = ["Calibrate", "apply_temperature", "choose_clip_with_floor", "clip_floor", "fit_temperature",
           "postprocess", "read_calibration"]

EPS = 1e-12


def apply_temperature(probs, temperature: float) -> np.ndarray:
    """softmax(log(p) / T), row by row."""
    probs = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)
    logits = np.log(probs) / float(temperature)
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def fit_temperature(y_index, probs, *, bounds=(0.05, 20.0)) -> float:
    """The temperature with the lowest log loss of `probs` on labels `y_index` (1.0 when nothing to gain)."""
    from scipy.optimize import minimize_scalar

    y_index = np.asarray(y_index)
    probs = np.asarray(probs, dtype=np.float64)
    if len(probs) == 0:
        raise PodiumError("fitting a temperature needs at least one prediction")
    result = minimize_scalar(lambda log_t: log_loss(y_index, apply_temperature(probs, np.exp(log_t))),
                             bounds=tuple(np.log(bounds)), method="bounded", options={"xatol": 1e-4})
    best = float(np.exp(result.x))
    return best if log_loss(y_index, apply_temperature(probs, best)) < log_loss(y_index, probs) else 1.0


def clip_floor(setting: float, rows: int, n_classes: int) -> float:
    """The least clip: `setting`, or 3 / rows when larger (never at or above uniform)."""
    floor = max(float(setting), 3.0 / max(int(rows), 1))
    return min(floor, 0.5 / n_classes)


def choose_clip_with_floor(y_index, probs, *, floor: float, grid=DEFAULT_GRID) -> dict:
    """The clip lo (hi = 1 - lo) of lowest log loss among `grid` values >= `floor`, and `floor` itself."""
    probs = np.asarray(probs, dtype=np.float64)
    before = log_loss(y_index, probs)
    candidates = sorted({float(floor), *(float(v) for v in grid if float(v) >= floor)})
    candidates = [lo for lo in candidates if 0.0 <= lo < 1.0 / probs.shape[1]]
    scored = [(log_loss(y_index, apply_clip(probs, lo, 1.0 - lo)) if lo > 0 else before, lo) for lo in candidates]
    after, lo = min(scored)
    return {"lo": lo, "hi": 1.0 - lo, "log_loss_before": before, "log_loss_after": after, "floor": float(floor)}


def postprocess(state: RunState, split: str, preds: np.ndarray, *, clip: bool = True) -> np.ndarray:
    """The run's fitted prediction transforms, in order: neighbour smoothing, temperature, clip."""
    from podium.vision.stages.neighbours import smooth_split

    settings = getattr(state, "neighbours", None)
    if settings and settings.get("k", 0) > 0:
        preds = smooth_split(state.data, split, preds, k=int(settings["k"]))
    calibration = getattr(state, "calibration", None)
    if calibration:
        preds = apply_temperature(preds, calibration["temperature"])
        if clip:
            preds = apply_clip(preds, calibration["lo"], calibration["hi"])
    return preds


def read_calibration(path: Path) -> dict:
    """The fit `calibration.json` keeps; one line naming the file when it lacks what predicting needs."""
    saved = read_json(path)
    fit = saved.get("calibration") if isinstance(saved, dict) else None
    keys = ("temperature", "lo", "hi")
    if not isinstance(fit, dict) or any(not isinstance(fit.get(key), (int, float)) for key in keys):
        raise PodiumError(f"{path} lacks the fitted calibration ({', '.join(keys)}); train the run again")
    return fit


@register_stage
class Calibrate(Stage):
    """Temperature and clip fitted on out-of-fold (else hold-out) predictions; log loss before and after."""

    name = "calibration"
    order = 80
    reads = ("calibration", "submission", "tta")
    on_predict = True
    leaves = ("calibration.json",)

    @classmethod
    def enabled(cls, config: dict) -> bool:
        return bool(config.get("calibration", {}).get("enabled", False))

    @classmethod
    def check(cls, plugin, config: dict, data_dir=None) -> None:
        if plugin.task != "classification":
            raise PodiumError("calibration is for classification (probabilities)")

    def run(self, state: RunState) -> None:
        path = Path(state.run_dir) / "calibration.json"
        if "data" not in state.completed:  # `podium predict`: apply what the run fitted
            if path.is_file():
                state.calibration = read_calibration(path)
            return
        plugin, config = state.plugin, state.config
        oof = getattr(state, "oof", None)
        if oof is not None and getattr(state, "bag", None) is not None:
            source, y, preds = "oof", plugin.label_indices(oof["labels"]), oof["pred"]
            smoothed = getattr(state, "oof_smoothed", None)
            if smoothed is not None:
                preds = smoothed
        else:
            data = state.data
            source, y = "valid", plugin.label_indices(data.valid_labels)
            preds = np.mean(state.learner.tta("valid", int(config["tta"]["views"])), axis=0)
            preds = postprocess(state, "valid", preds)
        calibration = config["calibration"]
        before = log_loss(y, preds)
        temperature = fit_temperature(y, preds) if calibration["temperature"] else 1.0
        calibrated = apply_temperature(preds, temperature)
        setting = str(config["submission"]["clip"]).strip().lower()
        floor = clip_floor(float(calibration["clip_floor"]), len(y), preds.shape[1])
        if setting == "auto":
            clip = choose_clip_with_floor(y, calibrated, floor=floor)
        else:
            lo = 0.0 if setting == "none" else float(setting)
            clip = {"lo": lo, "hi": 1.0 - lo, "floor": 0.0,
                    "log_loss_after": log_loss(y, apply_clip(calibrated, lo, 1.0 - lo))}
        state.calibration = {"source": source, "temperature": temperature, "lo": clip["lo"], "hi": clip["hi"],
                             "floor": clip["floor"]}
        prefix = "oof" if source == "oof" else "val"
        state.metrics.update({
            "calibrated_on": source, "temperature": temperature, "clip_floor": clip["floor"],
            f"{prefix}_log_loss_uncalibrated": before, f"{prefix}_log_loss_calibrated": log_loss(y, calibrated),
            f"{prefix}_log_loss_calibrated_clipped": clip["log_loss_after"],
        })
        if getattr(state, "record", "full") != "metrics":  # a tuning trial records metrics only
            write_json(path, {"calibration": state.calibration})
        logger.info("calibration on %s (%d rows): temperature %.3f, clip [%g, %g] (floor %.4g); log loss %.4f -> "
                    "%.4f calibrated -> %.4f clipped", source, len(y), temperature, clip["lo"], clip["hi"],
                    clip["floor"], before, log_loss(y, calibrated), clip["log_loss_after"])
