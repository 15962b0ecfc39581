"""Fine-tuning the fast.ai way: layer groups, discriminative learning rates, gradual unfreezing."""
import keras
import numpy as np
import pytest

from podium.vision.finetuning import (DiscriminativeAdam, set_trainable, layer_groups, lr_multipliers,
                                      trainable_groups)


def small_backbone():
    inputs = keras.Input((16, 16, 3), name="input")
    x = inputs
    for block in (1, 2, 3):
        x = keras.layers.Conv2D(4, 3, padding="same", name=f"block{block}_conv1")(x)
        x = keras.layers.BatchNormalization(name=f"block{block}_bn")(x)
        x = keras.layers.Conv2D(4, 3, padding="same", name=f"block{block}_conv2")(x)
    x = keras.layers.Conv2D(4, 1, name="top_conv")(x)
    return keras.Model(inputs, x, name="small")


def test_layer_groups_follow_the_blocks():
    groups = layer_groups(small_backbone())
    names = [[layer.name for layer in group] for group in groups]
    assert names[0] == ["input"]
    assert names[1] == ["block1_conv1", "block1_bn", "block1_conv2"]
    assert names[-1] == ["block3_conv1", "block3_bn", "block3_conv2", "top_conv"]  # the top joins the last block
    assert len(trainable_groups(small_backbone(), "block2_conv1")) == 2
    assert len(trainable_groups(small_backbone(), "all")) == 4
    assert [layer.name for layer in trainable_groups(small_backbone(), "block2_bn")[0]] == ["block2_bn", "block2_conv2"]


def test_discriminative_rates_are_geometric_up_to_the_head():
    multipliers = lr_multipliers([[1], [2], [3]], ratio=8.0)
    assert multipliers == pytest.approx([1 / 8, 1 / 4, 1 / 2])  # the head (not listed) trains at 1


def test_gradual_unfreezing_freezes_all_but_the_last_groups_and_batchnorm():
    backbone = small_backbone()
    groups = trainable_groups(backbone, "all")
    set_trainable(backbone, groups, 1)
    trainable = {layer.name for layer in backbone.layers if layer.trainable and layer.weights}
    assert trainable == {"block3_conv1", "block3_conv2", "top_conv"}  # block3_bn stays frozen
    set_trainable(backbone, groups, 3)
    assert {"block2_conv1", "block1_conv2"} <= {layer.name for layer in backbone.layers if layer.trainable}


def test_discriminative_adam_scales_each_variables_step():
    slow, fast = keras.Variable(np.zeros(3, dtype="float32")), keras.Variable(np.zeros(3, dtype="float32"))
    optimizer = DiscriminativeAdam(multipliers={slow.path: 0.1}, learning_rate=0.01)
    gradient = np.ones(3, dtype="float32")
    optimizer.apply_gradients([(gradient, slow), (gradient, fast)])
    step_slow, step_fast = abs(float(slow.numpy()[0])), abs(float(fast.numpy()[0]))
    assert step_fast == pytest.approx(0.01, rel=1e-3) and step_slow == pytest.approx(0.001, rel=1e-3)
    assert DiscriminativeAdam.from_config(optimizer.get_config()).multipliers == {slow.path: 0.1}
