"""Neighbour smoothing: each prediction averaged with its nearest rows of the same split, by features only."""
import numpy as np
import pytest

from podium.core.metrics import log_loss
from podium.vision.stages.neighbours import choose_k, neighbour_index, pooled, smooth, smooth_split


def clustered(n_clusters=30, per=8, classes=4, seed=0, noise=0.6):
    """Rows in tight feature clusters (frames of one video), one class per cluster; noisy predictions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, 16))
    vectors = np.repeat(centres, per, axis=0) + 0.05 * rng.normal(size=(n_clusters * per, 16))
    y = np.repeat(rng.integers(0, classes, size=n_clusters), per)
    logits = 2.0 * np.eye(classes)[y] + noise * 3 * rng.normal(size=(len(y), classes))
    preds = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return pooled(vectors), y, preds


def test_neighbours_exclude_the_row_itself_and_stay_in_its_cluster():
    vectors, _, _ = clustered()
    index = neighbour_index(vectors, 5)
    assert index.shape == (len(vectors), 5)
    assert not (index == np.arange(len(vectors))[:, None]).any()
    assert (index // 8 == np.arange(len(vectors))[:, None] // 8).all()


def test_smoothing_helps_clustered_rows_and_k_is_chosen():
    vectors, y, preds = clustered()
    k, scores = choose_k(y, preds, vectors)
    assert k > 0 and scores[k] < scores[0]
    assert log_loss(y, smooth(preds, vectors, k)) < log_loss(y, preds)
    assert np.allclose(smooth(preds, vectors, k).sum(axis=1), 1.0)


def test_no_smoothing_when_neighbours_carry_no_information():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, size=300)
    preds = np.full((300, 3), 0.05)
    preds[np.arange(300), y] = 0.9  # confident and right: averaging with random rows only hurts
    k, _ = choose_k(y, preds, pooled(rng.normal(size=(300, 8))))
    assert k == 0


class _Features:
    def __init__(self, array):
        self.array = array


class _TestOnlyData:
    """Data whose labelled features must not be read when smoothing test predictions."""

    valid_rows = np.arange(3)

    def __init__(self, test_array):
        self._test = test_array

    def test_features(self, pass_index):
        assert pass_index == 0
        return _Features(self._test)

    def labelled_features(self, pass_index):
        raise AssertionError("test smoothing read labelled features")


def test_test_smoothing_uses_test_features_only():
    vectors, _, preds = clustered(seed=4)
    maps = np.repeat(np.repeat(vectors[:, None, None, :], 2, axis=1), 2, axis=2)  # a (rows, 2, 2, c) feature map
    smoothed = smooth_split(_TestOnlyData(maps), "test", preds, k=3)
    assert smoothed.shape == preds.shape
    assert np.allclose(smoothed, smooth(preds, vectors, 3))
    with pytest.raises(AssertionError):
        smooth_split(_TestOnlyData(maps), "valid", preds, k=3)
