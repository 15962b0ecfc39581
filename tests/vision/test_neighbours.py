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


def full_neighbour_index(vectors, k):
    """The whole rows x rows similarity matrix in float64: what the blocked search must reproduce."""
    similarity = np.asarray(vectors, dtype=np.float64) @ np.asarray(vectors, dtype=np.float64).T
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("block_rows", [1, 7, 64, 1000])
def test_blocked_neighbours_equal_the_full_matrix(block_rows):
    rng = np.random.default_rng(5)
    vectors = pooled(rng.normal(size=(300, 24)))
    index = neighbour_index(vectors, 8, block_rows=block_rows)
    assert index.dtype == np.int64 and index.shape == (300, 8)
    assert np.array_equal(index, full_neighbour_index(vectors, 8))


def test_pooled_reads_a_memory_map_in_blocks_and_in_any_row_order(tmp_path):
    rng = np.random.default_rng(6)
    maps = rng.normal(size=(50, 2, 3, 5)).astype(np.float32)
    path = tmp_path / "maps.npy"
    np.save(path, maps)
    rows = rng.permutation(50)[:30]
    expected = pooled(maps.mean(axis=(1, 2))[rows])
    assert np.allclose(pooled(np.load(path, mmap_mode="r"), rows), expected, atol=1e-6)


def test_choose_k_with_one_search_equals_a_search_per_k():
    vectors, y, preds = clustered(seed=7)
    _, scores = choose_k(y, preds, vectors)
    for k, score in scores.items():
        assert score == pytest.approx(log_loss(y, smooth(preds, vectors, k)), abs=1e-12)
