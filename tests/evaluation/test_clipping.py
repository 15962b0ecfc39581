"""Clipping chosen on validation: never worse there, and it rescues over-confident mistakes."""
import numpy as np
import pytest

from podium.errors import PodiumError
from podium.core.metrics import log_loss
from podium.evaluation.clipping import (apply_clip, choose_clip, clip_for_run,
                                         parse_clip_setting)


def overconfident(n=400, wrong_fraction=0.1, confidence=0.999, seed=0):
    """Binary predictions that always say `confidence` and are wrong for `wrong_fraction` of the rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    said = y.copy()
    wrong = rng.random(n) < wrong_fraction
    said[wrong] = 1 - said[wrong]
    p_one = np.where(said == 1, confidence, 1 - confidence)
    return y, np.column_stack([1 - p_one, p_one])


def test_log_loss_matches_scikit_learn():
    from sklearn.metrics import log_loss as sk_log_loss

    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4), size=50)
    y = rng.integers(0, 4, size=50)
    assert log_loss(y, probs) == pytest.approx(sk_log_loss(y, probs, labels=[0, 1, 2, 3]), rel=1e-12)


def test_clip_rescues_overconfident_mistakes():
    y, probs = overconfident()
    result = choose_clip(y, probs)
    assert result["lo"] > 0 and result["hi"] == pytest.approx(1 - result["lo"])
    assert result["log_loss_after"] < 0.5 * result["log_loss_before"]
    assert result["log_loss_after"] == pytest.approx(log_loss(y, apply_clip(probs, result["lo"], result["hi"])))
    clipped = apply_clip(probs, result["lo"], result["hi"])
    assert clipped.min() == pytest.approx(result["lo"]) and clipped.max() == pytest.approx(result["hi"])
    np.testing.assert_allclose(clipped.sum(axis=1), 1.0)


@pytest.mark.parametrize("seed", range(5))
def test_clip_never_worse_on_validation(seed):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(3, 0.3), size=200)
    # Labels drawn from the predictions themselves: calibrated, so clipping has little to gain.
    y = np.array([rng.choice(3, p=row) for row in probs])
    result = choose_clip(y, probs)
    assert result["log_loss_after"] <= result["log_loss_before"]
    assert result["log_loss_before"] == pytest.approx(log_loss(y, probs))


def test_calibrated_confident_predictions_are_not_clipped():
    y = np.array([0, 1] * 50)
    probs = np.where(np.eye(2)[y] == 1, 0.995, 0.005)
    result = choose_clip(y, probs)
    assert result["lo"] == 0.0 and result["hi"] == 1.0
    assert result["log_loss_after"] == result["log_loss_before"]


def test_multiclass_clip_renormalises_rows():
    probs = np.array([[1.0, 0.0, 0.0, 0.0], [0.7, 0.2, 0.1, 0.0]])
    clipped = apply_clip(probs, 0.02, 0.98)
    np.testing.assert_allclose(clipped.sum(axis=1), 1.0)
    assert (clipped > 0).all()
    assert (clipped.argmax(axis=1) == probs.argmax(axis=1)).all()
    y = np.array([1, 3])  # both confidently wrong
    assert choose_clip(y, probs)["lo"] > 0


def test_parse_clip_setting():
    assert parse_clip_setting("auto") == "auto"
    assert parse_clip_setting("none") is None
    assert parse_clip_setting("0.05") == 0.05
    assert parse_clip_setting(0.025) == 0.025
    for bad in ("sometimes", "0.5", "-0.1", "", True, [0.05]):
        with pytest.raises(PodiumError, match="submission.clip"):
            parse_clip_setting(bad)


def test_clip_for_run_applies_each_setting():
    y, probs = overconfident()
    auto = clip_for_run("auto", y, probs)
    assert auto["setting"] == "auto" and auto["lo"] > 0
    fixed = clip_for_run("0.05", y, probs)
    assert (fixed["lo"], fixed["hi"]) == (0.05, 0.95) and fixed["setting"] == 0.05
    assert fixed["log_loss_after"] == pytest.approx(log_loss(y, apply_clip(probs, 0.05, 0.95)))
    assert auto["log_loss_after"] <= fixed["log_loss_after"]
    none = clip_for_run("none", y, probs)
    assert (none["lo"], none["hi"]) == (0.0, 1.0) and none["log_loss_after"] == none["log_loss_before"]


def test_shape_errors_are_clear():
    with pytest.raises(PodiumError, match="2 labels but 3 prediction rows"):
        choose_clip([0, 1], np.full((3, 2), 0.5))
    with pytest.raises(PodiumError, match="shape"):
        choose_clip([0, 1], np.array([0.2, 0.8]))
