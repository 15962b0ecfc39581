"""The Keras layers the rating models need beyond Keras' own (registered, so model files load)."""
from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="podium")
class BagEmbedding(keras.layers.Layer):
    """Embedding of a weighted bag: row i of a fixed `table` (rows x vocabulary) times trainable vectors.

    With the users x movies "rated" table this is SVD++'s implicit feedback (a user is also the
    movies they chose to rate); with a users x features table, metadata embeddings. The table is a
    non-trainable weight filled by `set_table`, so it is saved with the model but not in its config.
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
