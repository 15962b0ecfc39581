"""Calibration as a stage: a temperature and a clip fitted on out-of-fold predictions, each kept only when it
lowers the out-of-fold loss beyond its noise, and the temperature carried over to the averaged models submitted.

Temperature scaling divides the log-probabilities by one number T (T > 1 softens an over-confident
model, T < 1 sharpens a timid one) and renormalises; for two classes it is Platt scaling without a
bias. It is fitted on the out-of-fold predictions (every labelled row, each predicted by one model
that never saw it) when the `oof` stage ran, else on the hold-out predictions.

Each step is judged on rows it was not fitted on (cross-fitted: fitted on the other folds' rows, applied to
each fold) and kept only when the per-row loss falls by more than one standard error of the paired
difference; `metrics.json` lists every step under `steps` with its gain, noise and why it was dropped.

The submission is not one fold model but the mean of several (the bag, or the weighted ensemble of bags),
and averaging has already softened it: on real Dogs vs. Cats the 1.77 fitted on single fold heads took the
bag's test log loss from 0.031 to 0.036. So the bag gets its own temperature: the one that makes the
averaged test prediction exactly as confident (mean entropy) as its fold models are once calibrated, never
less confident than the members' calibration asks (`bag_temperature`; the hold-out, scored by one model,
keeps `temperature`).

The clip is chosen on the calibrated out-of-fold predictions from a grid reaching 1e-4 (scaled to the
number of classes: 2 / n_classes times the two-class grid), 0 included, so a clip that raises the
out-of-fold loss is never chosen; `calibration.clip_floor` is a floor the user may set. Whatever is chosen,
no submitted probability is ever exactly 0 (`MIN_PROBABILITY`).

`calibration.json` keeps what was fitted, so `podium predict` applies the same transform.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from podium.core.metrics import gain_beyond_noise, log_loss, log_losses
from podium.core.stage import RunState, Stage, register_stage
from podium.errors import PodiumError
from podium.evaluation.clipping import MIN_PROBABILITY, apply_clip
from podium.files import read_json, write_json
from podium.log import logger

__all__ = ["Calibrate", "apply_temperature", "bag_temperature", "choose_clip_with_floor", "clip_grid",
           "cross_fitted", "fit_temperature", "mean_entropy", "postprocess",
           "read_calibration"]

# The two-class clip grid (lo; hi = 1 - lo), from 1e-4; scaled by 2 / n_classes for more classes.
CLIP_GRID = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2)

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


def clip_grid(n_classes: int) -> list[float]:
    """Clip candidates for `n_classes` columns: 0 (none) and the two-class grid times 2 / n_classes."""
    scale = 2.0 / int(n_classes)
    return [0.0, *(lo * scale for lo in CLIP_GRID if lo * scale < 1.0 / n_classes)]


def choose_clip_with_floor(y_index, probs, *, floor: float = 0.0, grid=None) -> dict:
    """The clip lo (hi = 1 - lo) of lowest log loss among the `grid` values >= `floor` (and `floor` itself)."""
    probs = np.asarray(probs, dtype=np.float64)
    before = log_loss(y_index, probs)
    grid = clip_grid(probs.shape[1]) if grid is None else grid
    candidates = sorted({float(floor), *(float(v) for v in grid if float(v) >= floor)})
    candidates = [lo for lo in candidates if 0.0 <= lo < 1.0 / probs.shape[1]]
    scored = [(log_loss(y_index, apply_clip(probs, lo, 1.0 - lo)) if lo > 0 else before, lo) for lo in candidates]
    after, lo = min(scored)
    return {"lo": lo, "hi": 1.0 - lo, "log_loss_before": before, "log_loss_after": after, "floor": float(floor)}


def cross_fitted(y_index, probs, parts, *, fit, apply) -> np.ndarray:
    """`probs` transformed part by part, each part by `apply(probs, fit(y, probs))` fitted on the other parts'
    rows only: an honest estimate of what a fitted transform does to rows it has not seen."""
    y_index, probs = np.asarray(y_index), np.asarray(probs, dtype=np.float64)
    out = probs.copy()
    for part in parts:
        rest = np.setdiff1d(np.arange(len(probs)), part)
        if len(rest) == 0:
            continue
        out[part] = apply(probs[part], fit(y_index[rest], probs[rest]))
    return out


def mean_entropy(probs) -> float:
    probs = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)
    return float(-(probs * np.log(probs)).sum(axis=1).mean())


def bag_temperature(average, members, temperature: float, *, bounds=(0.05, 20.0)) -> float:
    """The temperature that makes `average` (the mean of the `members`' predictions of the same rows) as confident
    (mean entropy) as the members are at `temperature`: averaging softens, so the bag needs less than its members.
    Identical members get `temperature` back."""
    from scipy.optimize import brentq

    target = float(np.mean([mean_entropy(apply_temperature(member, temperature)) for member in members]))
    gap = lambda log_t: mean_entropy(apply_temperature(average, np.exp(log_t))) - target  # noqa: E731
    low, high = np.log(bounds[0]), np.log(bounds[1])
    if gap(low) >= 0:  # even the sharpest allowed is not as confident
        return float(bounds[0])
    if gap(high) <= 0:
        return float(bounds[1])
    return float(np.exp(brentq(gap, low, high, xtol=1e-4)))


def postprocess(state: RunState, split: str, preds: np.ndarray, *, clip: bool = True) -> np.ndarray:
    """The run's fitted prediction transforms, in order: neighbour smoothing, temperature, clip. The test split,
    predicted by the averaged models, takes the bag's temperature."""
    from podium.vision.stages.neighbours import smooth_split

    settings = getattr(state, "neighbours", None)
    if settings and settings.get("k", 0) > 0:
        preds = smooth_split(state.data, split, preds, k=int(settings["k"]))
    calibration = getattr(state, "calibration", None)
    if calibration:
        temperature = calibration["temperature"]
        if split == "test":
            temperature = calibration.get("bag_temperature", temperature)
        preds = apply_temperature(preds, temperature)
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


def _parts(source_rows: int, oof, seed: int) -> list[np.ndarray]:
    """The rows a step is cross-fitted over: the out-of-fold folds, else five random parts of the hold-out."""
    if oof is not None:
        return [held for _, held in oof["folds"]]
    return np.array_split(np.random.default_rng(seed).permutation(source_rows), 5)


def _judge(name: str, y, before, after, *, fitted) -> dict:
    """A step's record: kept when its cross-fitted per-row gain is beyond its noise."""
    verdict = gain_beyond_noise(log_losses(y, before), log_losses(y, after))
    verdict.update({"fitted": fitted, "log_loss_before": log_loss(y, before), "log_loss_after": log_loss(y, after)})
    if not verdict["kept"]:
        if verdict["gain"] > 0:
            verdict["why"] = (f"{name} lowered the cross-fitted loss by {verdict['gain']:.5f}, within its noise "
                              f"({verdict['noise']:.5f})")
        elif verdict["gain"] == 0:
            verdict["why"] = f"{name} changed nothing on rows it was not fitted on (none chosen there)"
        else:
            verdict["why"] = f"{name} raised the cross-fitted loss by {-verdict['gain']:.5f}"
    return verdict


def _fold_predictions(state: RunState, views: int):
    """The submitted test prediction and the predictions of the fold models it averages (None without a bag)."""
    bag = getattr(state, "bag", None)
    if bag is None or not len(state.data.test) or getattr(state, "record", "full") == "metrics":
        return None, None  # a tuning trial predicts no test row
    members = bag.fold_predictions("test", views)
    if len(members) < 2:
        return None, None
    settings = getattr(state, "neighbours", None)
    if settings and settings.get("k", 0) > 0:  # smoothing is linear: the bag of smoothed members is the smoothed bag
        from podium.vision.stages.neighbours import smooth_split

        members = [smooth_split(state.data, "test", member, k=int(settings["k"])) for member in members]
    weights = np.asarray(getattr(bag, "fold_weights", [1.0 / len(members)] * len(members)))
    return np.tensordot(weights, np.asarray(members), axes=1), members


@register_stage
class Calibrate(Stage):
    """Temperature and clip fitted on out-of-fold (else hold-out) predictions, each kept only beyond its noise."""

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
        views = int(config["tta"]["views"])
        oof = getattr(state, "oof", None)
        if oof is not None and getattr(state, "bag", None) is not None:
            source, y, preds = "oof", plugin.label_indices(oof["labels"]), oof["pred"]
            smoothed = getattr(state, "oof_smoothed", None)
            if smoothed is not None:
                preds = smoothed
        else:
            data = state.data
            source, y = "valid", plugin.label_indices(data.valid_labels)
            preds = np.mean(state.learner.tta("valid", views), axis=0)
            preds = postprocess(state, "valid", preds)
            oof = None
        calibration = config["calibration"]
        parts = _parts(len(y), oof, int(config["seed"]))
        steps = {}
        before = log_loss(y, preds)
        temperature = 1.0
        if calibration["temperature"]:
            fitted = fit_temperature(y, preds)
            honest = cross_fitted(y, preds, parts, fit=fit_temperature, apply=apply_temperature)
            steps["temperature"] = _judge("the temperature", y, preds, honest, fitted=fitted)
            temperature = fitted if steps["temperature"]["kept"] else 1.0
        calibrated = apply_temperature(preds, temperature)
        setting = str(config["submission"]["clip"]).strip().lower()
        floor = float(calibration["clip_floor"])
        if setting == "auto":
            choose = lambda y_rows, p_rows: choose_clip_with_floor(y_rows, p_rows, floor=floor)["lo"]  # noqa: E731
            clip_to = lambda p_rows, lo: apply_clip(p_rows, lo, 1.0 - lo)  # noqa: E731
            lo = choose(y, calibrated)
            steps["clip"] = _judge("the clip", y, calibrated, cross_fitted(y, calibrated, parts, fit=choose,
                                                                           apply=clip_to), fitted=lo)
            if not steps["clip"]["kept"]:
                lo = floor
        else:
            lo = 0.0 if setting == "none" else float(setting)
        after = log_loss(y, apply_clip(calibrated, lo, 1.0 - lo))
        average, members = _fold_predictions(state, views)
        bag_t = bag_temperature(average, members, temperature) if members is not None and temperature != 1.0 \
            else temperature
        state.calibration = {"source": source, "temperature": temperature, "bag_temperature": bag_t, "lo": lo,
                             "hi": 1.0 - lo, "floor": floor}
        prefix = "oof" if source == "oof" else "val"
        recorded = state.metrics.setdefault("steps", {})
        recorded.update(steps)
        state.metrics.update({
            "calibrated_on": source, "temperature": temperature, "bag_temperature": bag_t, "clip_floor": floor,
            f"{prefix}_log_loss_uncalibrated": before, f"{prefix}_log_loss_calibrated": log_loss(y, calibrated),
            f"{prefix}_log_loss_calibrated_clipped": after,
            "dropped_steps": {name: step["why"] for name, step in recorded.items() if not step["kept"]},
        })
        if getattr(state, "record", "full") != "metrics":  # a tuning trial records metrics only
            write_json(path, {"calibration": state.calibration})
        for name, step in steps.items():
            logger.info("calibration step %s: %s (cross-fitted gain %.5f, noise %.5f)", name,
                        "kept" if step["kept"] else "dropped", step["gain"], step["noise"])
        logger.info("calibration on %s (%d rows): temperature %.3f (the averaged test prediction: %.3f), clip "
                    "[%g, %g]; log loss %.4f -> %.4f calibrated -> %.4f clipped", source, len(y), temperature,
                    bag_t, lo, 1.0 - lo, before, log_loss(y, calibrated), after)
