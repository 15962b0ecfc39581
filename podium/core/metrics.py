"""Scores of predicted class probabilities, as Kaggle computes them."""
from __future__ import annotations

import numpy as np


def log_loss(y_index, probs) -> float:
    """Mean negative log probability of the true class (scikit-learn's definition and eps)."""
    y_index = np.asarray(y_index, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    eps = np.finfo(np.float64).eps
    picked = np.clip(probs[np.arange(len(y_index)), y_index], eps, 1 - eps)
    return float(-np.mean(np.log(picked)))


def log_losses(y_index, probs) -> np.ndarray:
    """Each row's negative log probability of its true class (`log_loss` is their mean)."""
    y_index = np.asarray(y_index, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    eps = np.finfo(np.float64).eps
    return -np.log(np.clip(probs[np.arange(len(y_index)), y_index], eps, 1 - eps))


# A step is kept when it lowers the mean per-row loss by more than this many standard errors of the mean
# per-row difference (a paired comparison on the same rows).
NOISE_STANDARD_ERRORS = 1.0


def gain_beyond_noise(before_rows, after_rows) -> dict:
    """Whether going from `before_rows` to `after_rows` (per-row losses of the same rows) lowers the mean loss
    by more than its noise: {"gain", "noise", "kept"}."""
    difference = np.asarray(before_rows, dtype=np.float64) - np.asarray(after_rows, dtype=np.float64)
    gain = float(difference.mean()) if len(difference) else 0.0
    noise = float(NOISE_STANDARD_ERRORS * difference.std(ddof=1) / np.sqrt(len(difference))) \
        if len(difference) > 1 else float("inf")
    return {"gain": gain, "noise": noise, "kept": bool(gain > noise)}
