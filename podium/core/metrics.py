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
