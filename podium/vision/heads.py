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


def build_head(feature_shape, num_classes: int, head_config: dict, *, metadata_dim: int = 0,
               weight_decay: float = 0.0) -> keras.Model:
    kind = head_config["kind"]
    if kind not in HEADS:
        raise PodiumError(f"head.kind: unknown {kind!r}; choose one of {', '.join(sorted(HEADS))}")
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay else None
    features = keras.Input(shape=tuple(feature_shape), name="features")
    scores = kind in SCORE_HEADS
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
    return keras.Model(inputs if metadata_dim else features, outputs, name=f"{kind}_head")
