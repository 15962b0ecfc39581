"""Clip predicted probabilities, with the clip chosen on validation to minimise log loss.

Log loss punishes a confident mistake without limit, so a model that is right 99% of
the time can still lose to one that never says more than 0.95 (the 2017 fast.ai course
clipped Dogs vs. Cats to [0.05, 0.95]). Two columns: clip to [lo, 1 - lo]. More
columns: clip each probability into [lo, 1 - lo], then renormalise each row.
"""
from __future__ import annotations

import numpy as np

from podium.core.metrics import log_loss
from podium.errors import PodiumError

# 0 keeps the predictions as they are, so the chosen clip is never worse on validation.
DEFAULT_GRID = (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05,
                0.06, 0.075, 0.1, 0.125, 0.15, 0.2)


# No submitted probability is ever below this: one exact 0 for a true class is an infinite log loss. It costs a
# right answer 1e-6 nats.
MIN_PROBABILITY = 1e-6


def no_zero(probs) -> np.ndarray:
    """Probabilities with every column at least `MIN_PROBABILITY` (rows renormalised), whatever clip was chosen."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.size == 0 or probs.min() >= MIN_PROBABILITY:
        return probs.copy()
    clipped = np.maximum(probs, MIN_PROBABILITY)
    if clipped.ndim == 2:
        return clipped / clipped.sum(axis=1, keepdims=True)
    return np.minimum(clipped, 1 - MIN_PROBABILITY)


def apply_clip(probs, lo: float, hi: float) -> np.ndarray:
    """Probabilities clipped into [lo, hi]; rows of more than two columns renormalised to sum to 1."""
    probs = np.asarray(probs, dtype=np.float64)
    if lo <= 0.0 and hi >= 1.0:
        return probs.copy()
    clipped = np.clip(probs, lo, hi)
    if clipped.ndim == 2 and clipped.shape[1] > 2:
        clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return clipped


def choose_clip(y_index, probs, grid=DEFAULT_GRID) -> dict:
    """The clip lo (hi = 1 - lo) from `grid` with the lowest validation log loss.

    Returns {"lo", "hi", "log_loss_before", "log_loss_after"}; ties go to the smaller clip.
    """
    probs = _check_probs(y_index, probs)
    before = log_loss(y_index, probs)
    best_lo, best = 0.0, before
    n_classes = probs.shape[1]
    # lo >= 1 / n_classes would flatten every row to the uniform prediction.
    for lo in sorted(float(value) for value in grid if 0.0 < float(value) < 1.0 / n_classes):
        loss = log_loss(y_index, apply_clip(probs, lo, 1.0 - lo))
        if loss < best:
            best_lo, best = lo, loss
    return {"lo": best_lo, "hi": 1.0 - best_lo, "log_loss_before": before, "log_loss_after": best}


def parse_clip_setting(value):
    """The config key submission.clip: "auto" -> "auto", "none" -> None, "0.05" -> 0.05."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        if text == "none":
            return None
        try:
            number = float(text)
        except ValueError:
            raise PodiumError(f"submission.clip must be \"auto\", \"none\" or a number like \"0.05\", "
                              f"got {value!r}") from None
    else:
        raise PodiumError(f"submission.clip must be \"auto\", \"none\" or a number like \"0.05\", got {value!r}")
    if not 0.0 <= number < 0.5:
        raise PodiumError(f"submission.clip must be a number in [0, 0.5) (probabilities go to [lo, 1 - lo]), "
                          f"got {value!r}")
    return number


def clip_for_run(setting, y_index, probs) -> dict:
    """Apply the submission.clip setting to validation predictions.

    Returns choose_clip's keys plus "setting" ("auto", "none" or the number), so the
    caller clips test predictions with apply_clip(test, result["lo"], result["hi"]).
    """
    parsed = parse_clip_setting(setting)
    if parsed == "auto":
        return {**choose_clip(y_index, probs), "setting": "auto"}
    probs = _check_probs(y_index, probs)
    lo = 0.0 if parsed is None else parsed
    before = log_loss(y_index, probs)
    after = log_loss(y_index, apply_clip(probs, lo, 1.0 - lo)) if lo > 0 else before
    return {"lo": lo, "hi": 1.0 - lo, "log_loss_before": before, "log_loss_after": after,
            "setting": "none" if parsed is None else parsed}


def _check_probs(y_index, probs) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise PodiumError(f"clipping needs a (rows, classes) probability array, got shape {probs.shape}")
    if len(probs) == 0:
        raise PodiumError("clipping needs at least one validation prediction")
    if len(np.asarray(y_index)) != len(probs):
        raise PodiumError(f"clipping: {len(np.asarray(y_index))} labels but {len(probs)} prediction rows")
    return probs
