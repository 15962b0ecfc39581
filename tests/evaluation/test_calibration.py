"""Calibration: a temperature fitted on held-out predictions lowers the log loss of an over-confident model;
the clip never goes below its floor, even when the validation has no mistake."""
import numpy as np
import pytest

from podium.core.metrics import log_loss
from podium.evaluation.calibration import (apply_temperature, choose_clip_with_floor, clip_floor,
                                           fit_temperature)


def overconfident(n=2000, classes=3, seed=0, sharpen=4.0):
    """Labels drawn from calibrated probabilities, predictions made over-confident by a power."""
    rng = np.random.default_rng(seed)
    calibrated = rng.dirichlet(np.ones(classes), size=n)
    y = np.array([rng.choice(classes, p=row) for row in calibrated])
    sharp = calibrated ** sharpen
    return y, sharp / sharp.sum(axis=1, keepdims=True), calibrated


def test_temperature_lowers_log_loss_of_an_overconfident_model():
    y, preds, calibrated = overconfident()
    temperature = fit_temperature(y, preds)
    assert temperature == pytest.approx(4.0, rel=0.15)  # undoes the power
    after = log_loss(y, apply_temperature(preds, temperature))
    assert after < 0.8 * log_loss(y, preds)
    assert after == pytest.approx(log_loss(y, calibrated), rel=0.02)


def test_temperature_fitted_on_one_half_helps_the_other():
    y, preds, _ = overconfident(n=4000, seed=1)
    temperature = fit_temperature(y[:2000], preds[:2000])
    assert log_loss(y[2000:], apply_temperature(preds[2000:], temperature)) < log_loss(y[2000:], preds[2000:])


def test_temperature_keeps_a_calibrated_model_and_rows_sum_to_one():
    y, _, calibrated = overconfident(seed=2)
    temperature = fit_temperature(y, calibrated)
    assert temperature == pytest.approx(1.0, abs=0.1)
    assert np.allclose(apply_temperature(calibrated, 2.5).sum(axis=1), 1.0)


def test_clip_floor_holds_with_a_perfect_validation():
    y = np.array([0, 1] * 200)
    perfect = np.column_stack([1 - y, y]).astype(float) * (1 - 1e-9) + 1e-9 / 2
    floor = clip_floor(0.0, len(y), 2)
    assert floor == pytest.approx(3 / 400)
    result = choose_clip_with_floor(y, perfect, floor=floor)
    assert result["lo"] >= floor  # no mistake on validation is no evidence of none on test
    assert clip_floor(0.005, len(y), 2) == pytest.approx(0.0075)
    assert clip_floor(0.005, 100000, 2) == pytest.approx(0.005)


def test_clip_above_the_floor_still_rescues_mistakes():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=1000)
    said = np.where(rng.random(1000) < 0.1, 1 - y, y)
    p = np.where(said == 1, 0.9999, 0.0001)
    result = choose_clip_with_floor(y, np.column_stack([1 - p, p]), floor=0.003)
    assert result["lo"] > 0.003 and result["log_loss_after"] < 0.5 * result["log_loss_before"]
