"""Frozen convolutional backbones: one builder per `keras.applications` model, plus saved `.keras` files.

`image.weights` is "imagenet" (Keras downloads them), "none" (random, seeded), or a path to a
weights file for the named architecture. `image.backbone` may also be a path to a saved
`.keras` model, used as is, with `image.preprocessing` naming its input preprocessing.
A `BackboneSpec` knows everything the feature cache keys on without building the model,
so a cache hit never loads a network.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from podium.errors import PodiumError
from podium.vision.preprocessing import preprocessing


def _vgg16(input_shape, weights):
    from keras.applications import VGG16

    return VGG16(include_top=False, weights=weights, input_shape=input_shape)


def _resnet50(input_shape, weights):
    from keras.applications import ResNet50

    return ResNet50(include_top=False, weights=weights, input_shape=input_shape)


def _efficientnetb0(input_shape, weights):
    from keras.applications import EfficientNetB0

    return EfficientNetB0(include_top=False, weights=weights, input_shape=input_shape)


def _efficientnetv2(variant):
    def build(input_shape, weights):
        from keras import applications

        return getattr(applications, f"EfficientNetV2{variant}")(include_top=False, weights=weights,
                                                                  input_shape=input_shape)
    return build


def _convnext_tiny(input_shape, weights):
    from keras.applications import ConvNeXtTiny

    return ConvNeXtTiny(include_top=False, weights=weights, input_shape=input_shape)


# name -> (builder, its preprocessing, first layer of its last conv block: the fine-tuning default)
BUILDERS = {
    "vgg16": (_vgg16, "vgg16", "block5_conv1"),
    "resnet50": (_resnet50, "resnet50", "conv5_block1_1_conv"),
    "efficientnetb0": (_efficientnetb0, "efficientnet", "block7a_expand_conv"),
    "convnext_tiny": (_convnext_tiny, "convnext", "convnext_tiny_stage_3_block_0_depthwise_conv"),
    # EfficientNetV2 rescales inside the model (include_preprocessing); its last stage is block6.
    "efficientnetv2b0": (_efficientnetv2("B0"), "efficientnet", "block6a_expand_conv"),
    "efficientnetv2s": (_efficientnetv2("S"), "efficientnet", "block6a_expand_conv"),
}
# Layer names that start a last block in common saved models (EfficientNet-Lite0 follows B0's names).
_LAST_BLOCK_GUESSES = ("block7a_expand_conv", "block5_conv1", "conv5_block1_1_conv")


@lru_cache(maxsize=32)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def file_digest(path: Path) -> str:
    stat = Path(path).stat()
    return _file_digest(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class BackboneSpec:
    """What identifies a backbone's features: architecture, weights, preprocessing, input size, cut layer."""

    name: str
    weights: str
    preprocessing: str
    size: tuple[int, int]
    cut_layer: str = ""
    seed: int = 0
    precision: str = "float32"  # the Keras dtype policy the backbone computes in (`image.precision`)

    @classmethod
    def from_config(cls, config: dict) -> "BackboneSpec":
        image = config["image"]
        name, weights = str(image["backbone"]), str(image["weights"])
        size = tuple(int(v) for v in image["size"])
        if len(size) != 2 or min(size) < 32:
            raise PodiumError(f"image.size must be [height, width], each at least 32, got {image['size']}")
        if name.endswith(".keras"):
            if not Path(name).is_file():
                raise PodiumError(f"image.backbone: model file {name} not found")
            if not image["preprocessing"]:
                raise PodiumError(f"image.backbone is a saved model ({name}): name its input preprocessing in "
                                  "image.preprocessing (e.g. efficientnet_lite, caffe, tf, torch, none)")
            prep = image["preprocessing"]
        else:
            if name not in BUILDERS:
                raise PodiumError(f"image.backbone: unknown {name!r}; choose one of {', '.join(BUILDERS)} "
                                  "or a path to a saved .keras model")
            prep = image["preprocessing"] or BUILDERS[name][1]
            if weights not in ("imagenet", "none") and not Path(weights).is_file():
                raise PodiumError(f"image.weights: {weights!r} is not 'imagenet', 'none' or an existing weights file")
        preprocessing(prep)  # fail early on an unknown name
        return cls(name=name, weights=weights, preprocessing=prep, size=size,
                   cut_layer=str(image["cut_layer"]), seed=int(config["seed"]),
                   precision=str(image.get("precision", "float32")))

    @property
    def weights_id(self) -> str:
        if self.name.endswith(".keras"):
            return f"model:{file_digest(Path(self.name))}"
        if self.weights == "imagenet":
            return "imagenet"
        if self.weights == "none":
            return f"random:{self.seed}"
        return f"file:{file_digest(Path(self.weights))}"

    @property
    def label(self) -> str:
        return Path(self.name).stem if self.name.endswith(".keras") else self.name

    def cache_key(self) -> dict:
        key = {"backbone": self.label, "weights": self.weights_id, "preprocessing": self.preprocessing,
               "size": list(self.size), "cut_layer": self.cut_layer}
        if self.precision != "float32":
            # Half-precision features differ from float32 ones; float32 entries keep their existing keys.
            key["precision"] = self.precision
        return key

    def preprocess(self, pixels):
        return preprocessing(self.preprocessing)(pixels)

    def build(self):
        """The frozen conv base as a Keras model (ending at `cut_layer` when set), computing in `precision`."""
        import keras

        # Layers take the global dtype policy when created: build in this spec's precision, whatever it is
        # now, so the features always match the cache key.
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.precision)
        try:
            if self.name.endswith(".keras"):
                model = keras.saving.load_model(self.name, compile=False)
            else:
                model = self._build_application()
        finally:
            keras.config.set_dtype_policy(previous)
        if self.cut_layer:
            try:
                layer = model.get_layer(self.cut_layer)
            except ValueError:
                raise PodiumError(f"image.cut_layer: {self.name} has no layer {self.cut_layer!r}") from None
            model = keras.Model(model.input, layer.output, name=f"{model.name}_to_{self.cut_layer}")
        model.trainable = False
        return model

    def _build_application(self):
        import keras

        builder = BUILDERS[self.name][0]
        input_shape = (*self.size, 3)
        if self.weights == "none":
            keras.utils.set_random_seed(self.seed)
            return builder(input_shape, None)
        if self.weights == "imagenet":
            try:
                return builder(input_shape, "imagenet")
            except Exception as exc:  # a download failure surfaces as many exception types
                raise PodiumError(
                    f"could not get the ImageNet weights of {self.name} ({type(exc).__name__}: {exc}). Offline? "
                    f"Download them once elsewhere and set image.weights=/path/to/weights.h5, or use image.weights=none"
                ) from None
        model = builder(input_shape, None)
        try:
            model.load_weights(self.weights)
        except Exception as exc:
            raise PodiumError(f"image.weights: cannot load {self.weights} into {self.name}: {exc}") from None
        return model

    def finetune_from(self, model, configured: str = "") -> str:
        """The first layer to unfreeze when fine-tuning: configured, else the backbone's last block."""
        names = {layer.name for layer in model.layers}
        if configured:
            if configured not in names:
                raise PodiumError(f"finetune.from_layer: {self.label} has no layer {configured!r}")
            return configured
        candidates = [BUILDERS[self.name][2]] if self.name in BUILDERS else list(_LAST_BLOCK_GUESSES)
        for candidate in candidates:
            if candidate in names:
                return candidate
        raise PodiumError(f"finetune.from_layer: cannot guess the last block of {self.label}; name its first layer")
