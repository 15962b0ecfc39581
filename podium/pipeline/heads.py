"""Heads trained on cached features. Register a new kind with `@head("name")`.

A head builder takes the feature shape and the head config and returns the tensor before
the classifier; `build_head` adds optional metadata fusion (a second input, batch-normalised,
concatenated just before the last dense layer) and the softmax.
"""
from __future__ import annotations

import keras
from keras import layers

from ..errors import PodiumError

HEADS: dict = {}


def head(kind: str):
    def register(builder):
        HEADS[kind] = builder
        return builder
    return register


# Moving statistics must settle within the few hundred steps a head trains for on a sample;
# Keras' default momentum (0.99) leaves them near their initial values and wrecks validation.
BN_MOMENTUM = 0.9


def _input_norm(x, config):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name="input_bn")(x) if config["input_bn"] else x


def _dense_block(x, units: int, dropout: float, regularizer, name: str):
    x = layers.Dense(units, activation="relu", kernel_regularizer=regularizer, name=f"{name}_dense")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Dropout(dropout, name=f"{name}_dropout")(x)


@head("gap")
def gap_head(features, config, regularizer):
    """Global average pooling then one dense block: the seeds' best on ResNet features."""
    x = _input_norm(features, config)
    if len(features.shape) == 4:
        x = layers.GlobalAveragePooling2D(name="gap")(x)
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


def build_head(feature_shape, num_classes: int, head_config: dict, *, metadata_dim: int = 0,
               weight_decay: float = 0.0) -> keras.Model:
    kind = head_config["kind"]
    if kind not in HEADS:
        raise PodiumError(f"head.kind: unknown {kind!r}; choose one of {', '.join(sorted(HEADS))}")
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay else None
    features = keras.Input(shape=tuple(feature_shape), name="features")
    x = HEADS[kind](features, head_config, regularizer)
    inputs = [features]
    if metadata_dim:
        metadata = keras.Input(shape=(metadata_dim,), name="metadata")
        inputs.append(metadata)
        x = layers.Concatenate(name="fusion")([x, layers.BatchNormalization(momentum=BN_MOMENTUM, name="metadata_bn")(metadata)])
    outputs = layers.Dense(num_classes, activation="softmax", name="class", dtype="float32")(x)
    return keras.Model(inputs if metadata_dim else features, outputs, name=f"{kind}_head")
