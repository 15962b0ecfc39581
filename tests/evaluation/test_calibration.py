"""Calibration: a temperature fitted on held-out predictions lowers the log loss of an over-confident model;
the bag of fold models gets its own temperature (averaging has softened it already); a clip that raises the
out-of-fold loss is never chosen; no submitted probability is ever 0."""
import numpy as np
import pytest

from podium.core.metrics import log_loss
from podium.evaluation.calibration import (apply_temperature, bag_temperature, choose_clip_with_floor, clip_grid,
                                           fit_temperature, mean_entropy)
from podium.evaluation.clipping import MIN_PROBABILITY, no_zero


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


def test_a_clip_that_raises_the_loss_is_never_chosen():
    # Right and confident on every row (Fisheries' out-of-fold 0.030 went to 0.181 under a forced 3/N clip).
    rng = np.random.default_rng(3)
    classes = 8
    y = rng.integers(0, classes, size=400)
    probs = np.full((400, classes), 0.002 / (classes - 1))
    probs[np.arange(400), y] = 0.998
    result = choose_clip_with_floor(y, probs)
    assert result["lo"] == 0.0 and result["log_loss_after"] == pytest.approx(result["log_loss_before"])


def test_clip_grid_reaches_1e4_scaled_to_the_classes():
    assert min(v for v in clip_grid(2) if v > 0) == pytest.approx(1e-4)
    assert min(v for v in clip_grid(10) if v > 0) == pytest.approx(2e-5)
    assert 0.0 in clip_grid(10) and max(clip_grid(10)) < 1 / 10


def test_the_users_floor_still_holds():
    y = np.array([0, 1] * 200)
    perfect = np.column_stack([1 - y, y]).astype(float) * (1 - 1e-9) + 1e-9 / 2
    assert choose_clip_with_floor(y, perfect, floor=0.005)["lo"] >= 0.005


def test_no_submitted_probability_is_zero():
    probs = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    out = no_zero(probs)
    assert (out > 0).all() and np.allclose(out.sum(axis=1), 1.0) and out.min() >= 0.9 * MIN_PROBABILITY


def _bag_of_overconfident_members(n=3000, classes=3, members=5, seed=4, sharpen=3.0, noise=0.6):
    """True probabilities q; each member sees log q plus its own noise, made over-confident by a power."""
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.ones(classes) * 0.7, size=n)
    y = np.array([rng.choice(classes, p=row) for row in q])
    logits = [sharpen * (np.log(q) + rng.normal(0, noise, size=q.shape)) for _ in range(members)]
    return y, [apply_temperature(np.exp(z - z.max(axis=1, keepdims=True)), 1.0) for z in logits]


def test_a_calibrated_bag_is_not_less_confident_than_its_members_calibration_asks():
    y, members = _bag_of_overconfident_members()
    fit, held = slice(0, 1500), slice(1500, None)
    # The temperature is fitted on single members' out-of-fold rows, as the oof stage sees them.
    temperature = fit_temperature(np.concatenate([y[fit]] * len(members)), np.concatenate([m[fit] for m in members]))
    assert temperature > 1.5  # the members are over-confident
    average = np.mean([m[held] for m in members], axis=0)
    t_bag = bag_temperature(average, [m[held] for m in members], temperature)
    assert 1.0 < t_bag < temperature  # averaging softened the bag: it needs less than its members
    calibrated_bag = apply_temperature(average, t_bag)
    assert log_loss(y[held], calibrated_bag) <= log_loss(y[held], average)
    # Not less confident than the calibrated members, so the members' temperature is not applied twice
    assert mean_entropy(calibrated_bag) <= np.mean([mean_entropy(apply_temperature(m[held], temperature))
                                                    for m in members]) + 1e-3
    assert log_loss(y[held], calibrated_bag) <= log_loss(y[held], apply_temperature(average, temperature))


def test_identical_members_keep_their_temperature():
    y, members = _bag_of_overconfident_members(members=1)
    assert bag_temperature(members[0], [members[0]] * 3, 2.0) == pytest.approx(2.0, rel=1e-3)


def test_clip_above_the_floor_still_rescues_mistakes():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=1000)
    said = np.where(rng.random(1000) < 0.1, 1 - y, y)
    p = np.where(said == 1, 0.9999, 0.0001)
    result = choose_clip_with_floor(y, np.column_stack([1 - p, p]), floor=0.003)
    assert result["lo"] > 0.003 and result["log_loss_after"] < 0.5 * result["log_loss_before"]
