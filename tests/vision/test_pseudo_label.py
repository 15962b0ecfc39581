"""Mixed batches for pseudo-labeling, measured on the batches Keras would get."""
import numpy as np
import pytest

from podium.errors import PodiumError
from podium.vision.batches import RowSource
from podium.vision.stages.pseudo_label import MixedBatches, pseudo_targets

CLASSES = 4


def marked_source(n, marker, *, first_id=0, name=""):
    """Rows whose feature 0 says where they come from and feature 1 which row they are."""
    features = np.zeros((n, 3), dtype=np.float32)
    features[:, 0] = marker
    features[:, 1] = np.arange(first_id, first_id + n)
    targets = np.eye(CLASSES, dtype=np.float32)[np.arange(n) % CLASSES]
    return RowSource({"features": features}, np.arange(n), targets, name=name)


def epoch(batches):
    return [batches[i] for i in range(len(batches))]


@pytest.mark.parametrize("fraction,batch_size", [(0.25, 16), (0.5, 10), (0.1, 32)])
def test_every_batch_mixes_the_configured_fraction(fraction, batch_size):
    labelled = [marked_source(100, 0.0, name="train/p0"), marked_source(100, 0.0, first_id=100, name="train/p1")]
    pseudo = [marked_source(30, 1.0, first_id=1000, name="pseudo/p0")]
    batches = MixedBatches(labelled, pseudo, batch_size=batch_size, fraction=fraction, seed=3)
    for x, y in epoch(batches)[:-1]:
        assert len(x) == batch_size and len(y) == batch_size
        measured = float(np.mean(x[:, 0] == 1.0))
        assert measured == pytest.approx(fraction, abs=0.5 / batch_size)
    x_all = np.concatenate([x for x, _ in epoch(batches)])
    assert float(np.mean(x_all[:, 0] == 1.0)) == pytest.approx(fraction, abs=0.02)


def test_an_epoch_is_every_labelled_row_once_and_pseudo_rows_evenly():
    labelled = [marked_source(90, 0.0)]
    pseudo = [marked_source(25, 1.0, first_id=1000)]
    batches = MixedBatches(labelled, pseudo, batch_size=16, fraction=0.25, seed=0)
    seen_pseudo = []
    for _ in range(3):
        x = np.concatenate([x for x, _ in epoch(batches)])
        ids = x[x[:, 0] == 0.0, 1]
        assert sorted(ids.tolist()) == list(range(90))
        seen_pseudo.append(x[x[:, 0] == 1.0, 1])
        batches.on_epoch_end()
    counts = np.bincount(np.concatenate(seen_pseudo).astype(int) - 1000, minlength=25)
    assert counts.max() - counts.min() <= 1  # drawn from a shuffled cycle, not at random


def test_targets_travel_with_their_rows():
    labelled = [marked_source(40, 0.0)]
    pseudo_targets_ = np.full((12, CLASSES), 0.25, dtype=np.float32)
    pseudo = [RowSource({"features": marked_source(12, 1.0).inputs["features"]}, np.arange(12), pseudo_targets_)]
    batches = MixedBatches(labelled, pseudo, batch_size=8, fraction=0.25, seed=1)
    for x, y in epoch(batches):
        is_pseudo = x[:, 0] == 1.0
        np.testing.assert_allclose(y[is_pseudo], 0.25)
        np.testing.assert_array_equal(y[~is_pseudo].argmax(axis=1), x[~is_pseudo, 1].astype(int) % CLASSES)


def test_batch_plan_names_the_sources():
    batches = MixedBatches([marked_source(20, 0.0)], [marked_source(5, 1.0)], batch_size=8, fraction=0.25, seed=0)
    for index in range(len(batches)):
        plan = batches.batch_plan(index)
        pseudo_rows = sum(len(positions) for k, positions in plan if batches.is_pseudo(k))
        labelled_rows = sum(len(positions) for k, positions in plan if not batches.is_pseudo(k))
        assert pseudo_rows >= 1 and labelled_rows >= 1


def test_soft_hard_and_threshold():
    probabilities = np.array([[0.7, 0.1, 0.1, 0.1], [0.3, 0.3, 0.2, 0.2], [0.05, 0.9, 0.03, 0.02]])
    kept, soft = pseudo_targets(probabilities, soft=True, threshold=0.0)
    assert kept.tolist() == [0, 1, 2]
    np.testing.assert_allclose(soft, probabilities, rtol=1e-6)
    kept, hard = pseudo_targets(probabilities, soft=False, threshold=0.5)
    assert kept.tolist() == [0, 2]
    np.testing.assert_array_equal(hard, np.eye(4)[[0, 1]])
    with pytest.raises(PodiumError, match="pseudo.threshold"):
        pseudo_targets(probabilities, soft=True, threshold=0.95)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 0.01])
def test_bad_fraction_is_one_clear_error(fraction):
    with pytest.raises(PodiumError, match="pseudo.fraction"):
        MixedBatches([marked_source(10, 0.0)], [marked_source(5, 1.0)], batch_size=16, fraction=fraction)


def test_class_balanced_pseudo_labels_match_the_prior_and_keep_rankings():
    from podium.vision.stages.pseudo_label import balance_classes

    rng = np.random.default_rng(0)
    # A first model biased to class 0: it puts extra mass there for every row.
    truth = rng.integers(0, 3, size=600)
    logits = 2.0 * np.eye(3)[truth] + rng.normal(size=(600, 3))
    logits[:, 0] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.bincount(probs.argmax(axis=1), minlength=3)[0] > 300  # the bias, before
    balanced = balance_classes(probs, np.full(3, 1 / 3))
    assert np.allclose(balanced.sum(axis=1), 1.0)
    assert np.allclose(balanced.mean(axis=0), 1 / 3, atol=1e-3)
    counts = np.bincount(balanced.argmax(axis=1), minlength=3)
    assert counts.max() < 260 and counts.min() > 140
    assert (balanced.argmax(axis=1) == truth).mean() > (probs.argmax(axis=1) == truth).mean()
    kept, targets = pseudo_targets(probs, soft=False, threshold=0.0, balance=True, prior=[1 / 3] * 3)
    assert len(kept) == 600 and np.bincount(targets.argmax(axis=1), minlength=3).max() < 260
