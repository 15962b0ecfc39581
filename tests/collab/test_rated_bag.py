"""The sparse implicit-feedback bag: equal to the dense users x movies table it replaces, sampled without bias."""
import keras
import numpy as np
import pytest

from podium.collab.data import rated_pairs
from podium.collab.layers import RatedBag


def dense_table(rows, columns, *, n_rows, n_columns):
    """The dense "rated" table as podium built it before: 1 where rated, each row scaled by |N(r)|^-1/2."""
    table = np.zeros((n_rows, n_columns), dtype=np.float32)
    table[rows, columns] = 1.0
    return table / np.sqrt(np.maximum(table.sum(axis=1, keepdims=True), 1.0))


def built_bag(rows, columns, *, n_rows, n_columns, dim=5, samples=8, seed=0):
    pairs = rated_pairs(rows, columns, n_rows=n_rows, n_columns=n_columns)
    bag = RatedBag(n_rows, n_columns, len(pairs[2]), dim, init_scale=1.0, samples=samples, seed=seed)
    bag.build((None,))
    bag.set_pairs(*pairs)
    return bag


@pytest.fixture(scope="module")
def ratings():
    rng = np.random.default_rng(0)
    n_rows, n_columns = 40, 30
    # Row 0 ("unseen") and row 7 rate nothing; row 3 rates every column (longer than the samples); pairs repeat.
    rows = rng.integers(1, n_rows, size=300)
    columns = rng.integers(0, n_columns, size=300)
    rows, columns = rows[rows != 7], columns[rows != 7]
    rows = np.concatenate([rows, np.full(n_columns, 3), rows[:20]])
    columns = np.concatenate([columns, np.arange(n_columns), columns[:20]])
    return rows, columns, n_rows, n_columns


def test_sparse_pairs_are_the_dense_table(ratings):
    rows, columns, n_rows, n_columns = ratings
    starts, counts, held = rated_pairs(rows, columns, n_rows=n_rows, n_columns=n_columns)
    dense = dense_table(rows, columns, n_rows=n_rows, n_columns=n_columns)
    assert counts.sum() == len(held) == (dense > 0).sum()  # each distinct pair once
    assert counts[0] == 0 and counts[7] == 0 and counts[3] == n_columns
    for row in range(n_rows):
        assert sorted(held[starts[row]:starts[row] + counts[row]]) == np.flatnonzero(dense[row]).tolist()


def test_inference_equals_the_dense_table_times_the_vectors(ratings):
    rows, columns, n_rows, n_columns = ratings
    bag = built_bag(rows, columns, n_rows=n_rows, n_columns=n_columns)
    dense = dense_table(rows, columns, n_rows=n_rows, n_columns=n_columns)
    indices = np.arange(n_rows, dtype=np.int32)
    expected = dense @ keras.ops.convert_to_numpy(bag.embeddings.value)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bag(indices, training=False)), expected, atol=1e-5)
    # After the vectors change, a refresh follows them.
    bag.embeddings.assign(keras.ops.convert_to_numpy(bag.embeddings.value) * 2)
    bag.refresh()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bag(indices, training=False)), 2 * expected, atol=1e-5)


def test_training_reads_a_short_row_whole(ratings):
    rows, columns, n_rows, n_columns = ratings
    bag = built_bag(rows, columns, n_rows=n_rows, n_columns=n_columns, samples=8)
    short = np.flatnonzero(keras.ops.convert_to_numpy(bag.row_counts.value) <= 8).astype(np.int32)
    assert len(short) > 10
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bag(short, training=True)),
                               keras.ops.convert_to_numpy(bag(short, training=False)), atol=1e-5)


def test_a_row_longer_than_the_samples_is_an_unbiased_sample_of_its_columns(ratings):
    rows, columns, n_rows, n_columns = ratings
    bag = built_bag(rows, columns, n_rows=n_rows, n_columns=n_columns, samples=8)
    exact = keras.ops.convert_to_numpy(bag(np.array([3], dtype=np.int32), training=False))[0]
    draws = np.stack([keras.ops.convert_to_numpy(bag(np.full(50, 3, dtype=np.int32), training=True))
                      for _ in range(40)]).reshape(-1, exact.shape[0])
    assert np.abs(draws - exact).max() > 1e-3  # 8 of 30 columns: one draw is not the whole sum
    spread = draws.std(axis=0) / np.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - exact) < 5 * spread + 1e-6)


def test_a_saved_model_keeps_its_pairs_and_exact_sums(ratings, tmp_path):
    rows, columns, n_rows, n_columns = ratings
    bag = built_bag(rows, columns, n_rows=n_rows, n_columns=n_columns)
    inputs = keras.Input(shape=(), dtype="int32")
    model = keras.Model(inputs, bag(inputs))
    indices = np.arange(n_rows, dtype=np.int32)
    before = model.predict(indices, verbose=0)
    model.save(tmp_path / "bag.keras")
    again = keras.saving.load_model(tmp_path / "bag.keras")
    np.testing.assert_allclose(again.predict(indices, verbose=0), before, atol=1e-6)
