"""The Keras layers the rating models need beyond Keras' own (registered, so model files load)."""
from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="podium")
class BagEmbedding(keras.layers.Layer):
    """Embedding of a weighted bag: row i of a fixed dense `table` (rows x vocabulary) times trainable vectors.

    With a users x features table, metadata embeddings (a small vocabulary; the implicit feedback's
    users x movies table is sparse: `RatedBag`). The table is a non-trainable weight filled by
    `set_table`, so it is saved with the model but not in its config.
    """

    def __init__(self, rows: int, vocabulary: int, output_dim: int, *, l2: float = 0.0, init_scale: float = 0.01,
                 **kwargs):
        super().__init__(**kwargs)
        self.rows, self.vocabulary, self.output_dim = int(rows), int(vocabulary), int(output_dim)
        self.l2, self.init_scale = float(l2), float(init_scale)

    def build(self, input_shape):
        self.table = self.add_weight(shape=(self.rows, self.vocabulary), initializer="zeros", trainable=False,
                                     name="table")
        self.embeddings = self.add_weight(
            shape=(self.vocabulary, self.output_dim), name="embeddings",
            initializer=keras.initializers.RandomNormal(stddev=self.init_scale) if self.output_dim > 1 else "zeros",
            regularizer=keras.regularizers.L2(self.l2) if self.l2 else None)

    def set_table(self, values) -> None:
        self.table.assign(ops.convert_to_tensor(values, dtype=self.table.dtype))

    def call(self, indices):
        return ops.matmul(ops.take(self.table, ops.cast(indices, "int32"), axis=0), self.embeddings)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def get_config(self):
        return {**super().get_config(), "rows": self.rows, "vocabulary": self.vocabulary,
                "output_dim": self.output_dim, "l2": self.l2, "init_scale": self.init_scale}


# Columns a row's bag sums per training step at most. A longer row (a heavy rater: up to 9,254 ratings in ML-20M) is
# sampled, so a step costs batch x 128 lookups whatever the row lengths; on ML-100K's sparse validation the
# systematic sample of 128 scored RMSE 0.8758 against 0.8752 exact (64: 0.8790).
BAG_SAMPLES = 128
# Pairs summed at a time when every row's exact bag is computed (bounded memory at 20M pairs).
REFRESH_PAIRS = 1 << 18


@keras.saving.register_keras_serializable(package="podium")
class RatedBag(keras.layers.Layer):
    """SVD++'s implicit feedback from a sparse "rated" table: row r's vector is |N(r)|^-1/2 times the sum of the
    trainable vectors of the columns N(r) it was rated with (a user and the movies they rated, or a movie and its
    raters). The table is held as its pairs sorted by row (`row_starts`, `row_counts`, `columns`: non-trainable
    weights filled by `set_pairs`), never as rows x columns (138,493 x 26,744 cells at ML-20M's shape).

    A training step sums at most `samples` columns of a row: a longer row contributes a systematic sample (every
    k-th column from a random start, k = count / samples), each weighted k, so the sum is unbiased. Inference
    reads `exact`, every row's whole sum, which `refresh()` computes after the vectors change (`RefreshBags`
    does so before each validation pass and when training ends, so saved models hold it).
    """

    def __init__(self, rows: int, vocabulary: int, pairs: int, output_dim: int, *, l2: float = 0.0,
                 init_scale: float = 0.01, samples: int = BAG_SAMPLES, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rows, self.vocabulary, self.pairs = int(rows), int(vocabulary), int(pairs)
        self.output_dim, self.l2, self.init_scale = int(output_dim), float(l2), float(init_scale)
        self.samples, self.seed = int(samples), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        def table(name, shape):
            return self.add_weight(shape=shape, initializer="zeros", dtype="int32", trainable=False, name=name)

        self.row_starts, self.row_counts = table("row_starts", (self.rows,)), table("row_counts", (self.rows,))
        self.columns = table("columns", (max(self.pairs, 1),))
        self.embeddings = self.add_weight(
            shape=(self.vocabulary, self.output_dim), name="embeddings",
            initializer=keras.initializers.RandomNormal(stddev=self.init_scale) if self.output_dim > 1 else "zeros",
            regularizer=keras.regularizers.L2(self.l2) if self.l2 else None)
        self.exact = self.add_weight(shape=(self.rows, self.output_dim), initializer="zeros", trainable=False,
                                     name="exact")

    def set_pairs(self, row_starts, row_counts, columns) -> None:
        """The table's pairs as `podium.collab.data.rated_pairs` gives them; then every row's exact bag."""
        if len(columns) != self.pairs:
            raise ValueError(f"{self.name} was built for {self.pairs} pairs, got {len(columns)}")
        self.row_starts.assign(np.asarray(row_starts, dtype=np.int32))
        self.row_counts.assign(np.asarray(row_counts, dtype=np.int32))
        self.columns.assign(np.asarray(columns, dtype=np.int32) if self.pairs else np.zeros(1, dtype=np.int32))
        self.refresh()

    def refresh(self) -> None:
        """`exact` = every row's whole normalised sum, a bounded block of pairs at a time."""
        embeddings = ops.convert_to_numpy(self.embeddings.value)
        starts, counts = ops.convert_to_numpy(self.row_starts.value), ops.convert_to_numpy(self.row_counts.value)
        columns, ends = ops.convert_to_numpy(self.columns.value), starts.astype(np.int64) + counts
        exact = np.zeros((self.rows, self.output_dim), dtype=np.float32)
        for first in range(0, self.pairs, REFRESH_PAIRS):
            positions = np.arange(first, min(first + REFRESH_PAIRS, self.pairs))
            rows = np.searchsorted(ends, positions, side="right")  # the rows are sorted, so are these
            breaks = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
            exact[rows[breaks]] += np.add.reduceat(embeddings[columns[positions]], breaks, axis=0)
        self.exact.assign(exact / np.sqrt(np.maximum(counts, 1))[:, None].astype(np.float32))

    def call(self, indices, training=None):
        indices = ops.cast(indices, "int32")
        if not training:
            return ops.take(self.exact, indices, axis=0)
        starts, counts = ops.take(self.row_starts, indices), ops.take(self.row_counts, indices)
        counts_f = ops.cast(counts, "float32")
        spacing = ops.maximum(counts_f / self.samples, 1.0)  # 1: a row of at most `samples` columns is read whole
        begin = keras.random.uniform(ops.shape(counts_f), seed=self.seed_generator) * spacing
        steps = ops.arange(self.samples, dtype="float32")
        offsets = ops.cast(ops.floor(begin[..., None] + steps * spacing[..., None]), "int32")
        taken = steps < ops.minimum(counts_f, float(self.samples))[..., None]
        offsets = ops.minimum(offsets, ops.maximum(counts - 1, 0)[..., None])
        columns = ops.take(self.columns, ops.where(taken, starts[..., None] + offsets, 0), axis=0)
        weights = ops.where(taken, spacing[..., None], 0.0) / ops.sqrt(ops.maximum(counts_f, 1.0))[..., None]
        return ops.sum(ops.take(self.embeddings, columns, axis=0) * weights[..., None], axis=-2)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def get_config(self):
        return {**super().get_config(), "rows": self.rows, "vocabulary": self.vocabulary, "pairs": self.pairs,
                "output_dim": self.output_dim, "l2": self.l2, "init_scale": self.init_scale,
                "samples": self.samples, "seed": self.seed}


class RefreshBags(keras.callbacks.Callback):
    """Every `RatedBag`'s exact sums recomputed before each validation pass and when training ends (after early
    stopping has put the best weights back: give this callback after it)."""

    def _refresh(self):
        for layer in self.model.layers:
            if isinstance(layer, RatedBag):
                layer.refresh()

    def on_test_begin(self, logs=None):
        self._refresh()

    def on_train_end(self, logs=None):
        self._refresh()


@keras.saving.register_keras_serializable(package="podium")
class RatingSquash(keras.layers.Layer):
    """A score squashed into the rating range: low + (high - low) * sigmoid(score + logit(mean)).

    A score of 0 predicts the training mean, so biases and factors start from it. The range is
    a little wider than the ratings because a sigmoid only approaches its ends.
    """

    def __init__(self, low: float, high: float, mean: float, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high, self.mean = float(low), float(high), float(mean)
        share = min(max((self.mean - self.low) / (self.high - self.low), 1e-3), 1 - 1e-3)
        self.offset = math.log(share / (1 - share))

    def call(self, score):
        return self.low + (self.high - self.low) * ops.sigmoid(score + self.offset)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high, "mean": self.mean}


@keras.saving.register_keras_serializable(package="podium")
class BinnedBias(keras.layers.Layer):
    """A bias per (row, time bin): a movie's popularity in each period (timeSVD++'s b_i,Bin(t)).

    Called on [row index, bin index]; starts at zero, so it only learns what the static bias misses.
    """

    def __init__(self, rows: int, bins: int, *, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.rows, self.bins, self.l2 = int(rows), int(bins), float(l2)

    def build(self, input_shape):
        self.biases = self.add_weight(shape=(self.rows * self.bins, 1), initializer="zeros", name="biases",
                                      regularizer=keras.regularizers.L2(self.l2) if self.l2 else None)

    def call(self, inputs):
        row, time_bin = (ops.cast(value, "int32") for value in inputs)
        return ops.take(self.biases, row * self.bins + time_bin, axis=0)

    def compute_output_shape(self, input_shape):
        return (*input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "rows": self.rows, "bins": self.bins, "l2": self.l2}


@keras.saving.register_keras_serializable(package="podium")
class DriftBias(keras.layers.Layer):
    """A per-row slope times the rating's drift: a user's bias moving with time (timeSVD++'s alpha_u dev_u(t)).

    Called on [row index, drift value]; slopes start at zero.
    """

    def __init__(self, rows: int, *, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.rows, self.l2 = int(rows), float(l2)

    def build(self, input_shape):
        self.slopes = self.add_weight(shape=(self.rows, 1), initializer="zeros", name="slopes",
                                      regularizer=keras.regularizers.L2(self.l2) if self.l2 else None)

    def call(self, inputs):
        row, drift = inputs
        return ops.take(self.slopes, ops.cast(row, "int32"), axis=0) * ops.expand_dims(ops.cast(drift, self.dtype), -1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "rows": self.rows, "l2": self.l2}
