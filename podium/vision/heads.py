"""Heads trained on cached features. Register a new kind with `@head("name")`.

A head builder takes the feature shape and the head config and returns the tensor before
the classifier; `build_head` adds optional metadata fusion (a second input, batch-normalised,
concatenated just before the last dense layer) and the softmax. A head registered with
`scores=True` (the fully convolutional "fcn") ends in one score per class itself.
"""
from __future__ import annotations

import keras
from keras import layers

from podium.errors import PodiumError

HEADS: dict = {}
# Kinds whose builder takes `num_classes` and ends in one score per class (softmax is added here).
SCORE_HEADS: set = set()


def head(kind: str, *, scores: bool = False):
    def register(builder):
        HEADS[kind] = builder
        if scores:
            SCORE_HEADS.add(kind)
        return builder
    return register


# Moving statistics must settle within the few hundred steps a head trains for on a sample;
# Keras' default momentum (0.99) leaves them near their initial values and wrecks validation.
BN_MOMENTUM = 0.9


def _input_norm(x, config):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name="input_bn")(x) if config["input_bn"] else x


class PooledInputNorm(layers.Layer):
    """The gap head's input BatchNorm then global average pooling, computed from pooled moments.

    Its input is each row's per-channel mean `m` and mean of squares `s` over the feature map (2C values).
    BatchNorm over a batch of maps normalises channel c by the mean and variance over (rows, height, width):
    mean = mean(m), variance = mean(s) - mean**2, and pooling after it gives
    gamma * (m - mean) / sqrt(variance + eps) + beta. So this layer computes exactly what `input_bn` + `gap`
    compute on the maps (the same moving statistics too), from rows 49x smaller at 7x7: a head trains on
    (N, 2C) rows held in memory. Its weights are the BatchNorm's, in the same order (see `pooled_twin`).
    """

    def __init__(self, channels: int, momentum: float = BN_MOMENTUM, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.momentum, self.epsilon = int(channels), float(momentum), float(epsilon)

    def build(self, input_shape):
        c = (self.channels,)
        self.gamma = self.add_weight(shape=c, initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=c, initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(shape=c, initializer="zeros", name="moving_mean", trainable=False)
        self.moving_variance = self.add_weight(shape=c, initializer="ones", name="moving_variance", trainable=False)

    def call(self, inputs, training=None):
        ops = keras.ops
        m, s = inputs[:, :self.channels], inputs[:, self.channels:]
        if training:
            mean = ops.mean(m, axis=0)
            variance = ops.maximum(ops.mean(s, axis=0) - ops.square(mean), 0.0)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        return (m - mean) * ops.rsqrt(variance + self.epsilon) * self.gamma + self.beta

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.channels)


def poolable(feature_shape, head_config: dict) -> bool:
    """Whether a head of `head_config` on maps of `feature_shape` has a pooled twin (a gap head on a 4-D map)."""
    return head_config["kind"] == "gap" and len(tuple(feature_shape)) == 3


def _dense_block(x, units: int, dropout: float, regularizer, name: str):
    x = layers.Dense(units, activation="relu", kernel_regularizer=regularizer, name=f"{name}_dense")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Dropout(dropout, name=f"{name}_dropout")(x)


@head("gap")
def gap_head(features, config, regularizer, *, pooled_channels: int = 0):
    """Global average pooling then one dense block: the seeds' best on ResNet features.

    `pooled_channels` > 0: the pooled twin, whose input is pooled moments (see `PooledInputNorm`)."""
    if pooled_channels:
        x = (PooledInputNorm(pooled_channels, name="input_bn")(features) if config["input_bn"]
             else features)
    else:
        x = _input_norm(features, config)
        if len(features.shape) == 4:
            x = layers.GlobalAveragePooling2D(name="gap")(x)
    if not config["units"]:
        # units = 0: pooled features straight to the classifier, a regularised logistic regression.
        return layers.Dropout(config["dropout"], name="gap_dropout")(x)
    x = layers.Dropout(config["dropout"] / 2, name="gap_dropout")(x)
    return _dense_block(x, config["units"], config["dropout"], regularizer, "fc1")


@head("dense")
def dense_head(features, config, regularizer):
    """Flatten then two dense blocks with BatchNorm and dropout: the course's VGG head."""
    x = _input_norm(features, config)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(config["dropout"] / 2, name="flat_dropout")(x)
    x = _dense_block(x, config["units"], config["dropout"], regularizer, "fc1")
    return _dense_block(x, config["units"], config["dropout"], regularizer, "fc2")


@head("fcn", scores=True)
def fcn_head(features, config, regularizer, *, num_classes):
    """Fully convolutional: 3x3 convs, a 1x1 conv to one map per class (the heatmaps), averaged into scores."""
    if len(features.shape) != 4:
        raise PodiumError("head.kind=fcn needs a conv feature map (height, width, channels); "
                          f"the features have shape {tuple(features.shape[1:])}")
    x = _input_norm(features, config)
    for index in range(1, int(config["conv_layers"]) + 1):
        x = layers.Conv2D(config["units"], 3, padding="same", activation="relu", kernel_regularizer=regularizer,
                          name=f"conv{index}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"conv{index}_bn")(x)
    x = layers.Dropout(config["dropout"], name="maps_dropout")(x)
    maps = layers.Conv2D(num_classes, 1, kernel_regularizer=regularizer, name="class_maps")(x)
    return layers.GlobalAveragePooling2D(name="class_scores")(maps)


def pooled_input_dim(feature_shape, head_config: dict) -> int:
    """Width of a pooled twin's feature input: each channel's mean, and its mean square with `input_bn`."""
    channels = int(tuple(feature_shape)[-1])
    return 2 * channels if head_config["input_bn"] else channels


def build_head(feature_shape, num_classes: int, head_config: dict, *, metadata_dim: int = 0,
               weight_decay: float = 0.0, pooled: bool = False) -> keras.Model:
    """The head on features of `feature_shape`. `pooled=True` (gap heads on a 4-D map, see `poolable`): its
    pooled twin, the same function of pooled moments (N, 2C) with the same layers and weights by name."""
    kind = head_config["kind"]
    if kind not in HEADS:
        raise PodiumError(f"head.kind: unknown {kind!r}; choose one of {', '.join(sorted(HEADS))}")
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay else None
    if pooled and not poolable(feature_shape, head_config):
        raise PodiumError(f"head.kind={kind} on features {tuple(feature_shape)} has no pooled form")
    shape = (pooled_input_dim(feature_shape, head_config),) if pooled else tuple(feature_shape)
    features = keras.Input(shape=shape, name="features")
    scores = kind in SCORE_HEADS
    if pooled:
        x = HEADS[kind](features, head_config, regularizer, pooled_channels=int(feature_shape[-1]))
    else:
        x = (HEADS[kind](features, head_config, regularizer, num_classes=num_classes) if scores
             else HEADS[kind](features, head_config, regularizer))
    inputs = [features]
    if metadata_dim:
        metadata = keras.Input(shape=(metadata_dim,), name="metadata")
        inputs.append(metadata)
        normalised = layers.BatchNormalization(momentum=BN_MOMENTUM, name="metadata_bn")(metadata)
        if scores:
            # No dense layer to fuse into: metadata adds its own score per class, so the maps stay image-only.
            x = layers.Add(name="fusion")([x, layers.Dense(num_classes, name="metadata_scores")(normalised)])
        else:
            x = layers.Concatenate(name="fusion")([x, normalised])
    if scores:
        outputs = layers.Activation("softmax", name="class", dtype="float32")(x)
    else:
        outputs = layers.Dense(num_classes, activation="softmax", name="class", dtype="float32")(x)
    return keras.Model(inputs if metadata_dim else features, outputs, name=f"{kind}_head" + ("_pooled" * pooled))


def copy_weights(source: keras.Model, target: keras.Model) -> keras.Model:
    """Every weight of `source` into `target`'s layer of the same name (a head and its pooled twin)."""
    for layer in source.layers:
        if layer.weights:
            target.get_layer(layer.name).set_weights(layer.get_weights())
    return target
