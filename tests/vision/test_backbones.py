import numpy as np
import pytest

from podium.errors import PodiumError
from podium.vision.backbones import BackboneSpec
from podium.config import IMAGE_DEFAULTS, deep_update


def _spec(**image):
    return BackboneSpec.from_config(deep_update(IMAGE_DEFAULTS, {"image": {"size": [32, 32], **image}}))


@pytest.mark.parametrize("name, channels", [("vgg16", 512), ("resnet50", 2048), ("efficientnetb0", 1280),
                                           ("efficientnetv2s", 1280)])
def test_each_builder_gives_a_frozen_conv_base_at_any_size(name, channels):
    spec = _spec(backbone=name, weights="none", size=[64, 96])
    model = spec.build()
    assert model.output_shape == (None, 2, 3, channels)
    assert not model.trainable_weights
    assert spec.finetune_from(model)  # the last block is known for fine-tuning


def test_random_weights_are_seeded():
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    a = _spec(weights="none").build()(x)
    b = _spec(weights="none").build()(x)
    assert np.allclose(np.asarray(a), np.asarray(b))


def test_local_weights_file_is_loaded_and_hashed(tmp_path):
    source = _spec(weights="none", size=[32, 32]).build()
    path = tmp_path / "vgg.weights.h5"
    source.save_weights(path)
    spec = _spec(weights=str(path))
    assert spec.weights_id.startswith("file:")
    x = np.random.default_rng(1).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    import keras

    keras.utils.set_random_seed(99)  # a different init, so only the file can make the outputs agree
    assert np.allclose(np.asarray(spec.build()(x)), np.asarray(source(x)), atol=1e-5)


def test_saved_keras_model_needs_its_preprocessing_named(tmp_path):
    import keras

    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="block7a_expand_conv")(inputs)
    path = tmp_path / "tiny.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(PodiumError, match="image.preprocessing"):
        _spec(backbone=str(path))
    spec = _spec(backbone=str(path), preprocessing="efficientnet_lite")
    assert spec.build()(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 16, 16, 8)
    assert spec.weights_id.startswith("model:") and spec.label == "tiny"


def test_cut_layer_and_unknown_names_are_clear():
    spec = _spec(backbone="vgg16", weights="none", cut_layer="block3_pool")
    assert spec.build().output_shape == (None, 4, 4, 256)
    with pytest.raises(PodiumError, match="no layer 'nope'"):
        _spec(weights="none", cut_layer="nope").build()
    with pytest.raises(PodiumError, match="image.backbone"):
        _spec(backbone="alexnet")
    with pytest.raises(PodiumError, match="image.weights"):
        _spec(weights="/no/such/file.h5")


def test_imagenet_download_failure_names_the_local_file_option(monkeypatch):
    from podium.vision import backbones

    def offline(input_shape, weights):
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.setitem(backbones.BUILDERS, "vgg16", (offline, "vgg16", "block5_conv1"))
    with pytest.raises(PodiumError, match="image.weights=/path/to/weights.h5"):
        _spec(weights="imagenet").build()


def test_preprocessings_match_their_backbones():
    from podium.vision.preprocessing import preprocessing

    x = np.full((1, 2, 2, 3), 255.0, "float32")
    assert np.allclose(preprocessing("efficientnet_lite")(x), 1.0)
    assert np.allclose(preprocessing("tf")(x), 1.0)
    caffe = preprocessing("vgg16")(x)
    assert np.allclose(caffe[0, 0, 0], [255 - 103.939, 255 - 116.779, 255 - 123.68])


def test_the_default_backbone_is_efficientnetv2s_on_raw_pixels_to_its_last_activation():
    from podium.competitions import get, names

    for name in names():
        plugin = get(name)
        if plugin.pipeline == "image_classification":
            assert plugin.default_config()["image"]["backbone"] == "efficientnetv2s", name
    spec = _spec(weights="none", size=[64, 96])  # the shared default
    assert spec.name == "efficientnetv2s" and spec.preprocessing == "efficientnet"
    pixels = np.random.default_rng(2).uniform(0, 255, (1, 64, 96, 3)).astype("float32")
    assert np.array_equal(spec.preprocess(pixels), pixels)  # the model rescales 0..255 pixels itself
    model = spec.build()
    assert model.layers[1].name.startswith("rescaling")
    assert model.layers[-1].name == "top_activation" and model.output_shape == (None, 2, 3, 1280)
    assert spec.finetune_from(model) == "block6a_expand_conv"
