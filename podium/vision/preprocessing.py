"""Named input preprocessings: each backbone's own, applied to float RGB pixels in 0..255."""
from __future__ import annotations

import numpy as np

from podium.errors import PodiumError


def _caffe(x: np.ndarray) -> np.ndarray:
    # VGG16 / ResNet50: RGB -> BGR and ImageNet mean subtraction, as keras.applications does.
    from keras.applications import vgg16

    return vgg16.preprocess_input(np.array(x, dtype=np.float32, copy=True))


def _identity(x: np.ndarray) -> np.ndarray:
    # keras.applications EfficientNet and ConvNeXt rescale inside the model.
    return np.asarray(x, dtype=np.float32)


def _tf(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32) / 127.5 - 1.0


def _torch(x: np.ndarray) -> np.ndarray:
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    return (np.asarray(x, dtype=np.float32) / 255.0 - mean) / std


def _efficientnet_lite(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float32) - 127.0) / 128.0


PREPROCESSING = {
    "caffe": _caffe,
    "vgg16": _caffe,
    "resnet50": _caffe,
    "efficientnet": _identity,
    "convnext": _identity,
    "tf": _tf,
    "torch": _torch,
    "efficientnet_lite": _efficientnet_lite,
    "none": _identity,
}


def preprocessing(name: str):
    try:
        return PREPROCESSING[name]
    except KeyError:
        raise PodiumError(f"image.preprocessing: unknown {name!r}; choose one of {', '.join(PREPROCESSING)}") from None
