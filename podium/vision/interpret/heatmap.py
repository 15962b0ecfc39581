"""Class heatmaps of a fully convolutional run: where in the image the model sees each class.

The fcn head ends in one map per class (layer `class_maps`) that global average pooling turns
into the class scores, so each map shows where its class's evidence lies (a class activation
map). A heatmap is one class's map scaled to 0..1 over the image, upsampled to the image and
overlaid on it: red where the evidence for that class is strongest, blue where it is weakest.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from podium.errors import PodiumError

OVERLAY_WEIGHT = 0.45  # share of the heat colours in the picture


def load_fcn_run(run_dir: Path):
    """(plugin, config, backbone spec, backbone model, head model) of a run trained with head.kind=fcn."""
    import keras

    from podium.competitions import get
    from podium.core.rundir import load_run
    from podium.files import read_json
    from podium.vision.backbones import BackboneSpec

    run_dir = Path(run_dir)
    config, _ = load_run(run_dir)
    plugin = get(read_json(run_dir / "run.json")["competition"])
    kind = config["head"]["kind"]
    if kind != "fcn":
        raise PodiumError(f"{run_dir} has a {kind!r} head; heatmaps need a fully convolutional run "
                          "(podium run ... --set head.kind=fcn)")
    spec = BackboneSpec.from_config(config)
    if (run_dir / "model.keras").is_file():
        # Fine-tuned: the saved model nests the tuned backbone and head.
        model = keras.saving.load_model(run_dir / "model.keras", compile=False)
        head = model.get_layer("fcn_head")
        backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model) and layer is not head)
    elif (run_dir / "head.keras").is_file():
        head = keras.saving.load_model(run_dir / "head.keras", compile=False)
        backbone = spec.build()
    else:
        raise PodiumError(f"{run_dir} has no head.keras or model.keras (did the run finish?)")
    return plugin, config, spec, backbone, head


def class_maps(spec, backbone, head, image_path) -> np.ndarray:
    """The class maps (map height, map width, classes) of one image: per-cell class scores."""
    import keras

    from podium.vision.images import load_image

    pixels = load_image(image_path, spec.size)[None].astype(np.float32)
    features = backbone(spec.preprocess(pixels), training=False)
    maps_model = keras.Model(head.get_layer("features").output, head.get_layer("class_maps").output)
    return keras.ops.convert_to_numpy(maps_model(features, training=False))[0].astype(np.float64)


def stretch(cells: np.ndarray) -> np.ndarray:
    """Scale to 0..1 over the image (a flat map stays 0)."""
    span = cells.max() - cells.min()
    return (cells - cells.min()) / span if span > 0 else np.zeros_like(cells)


def softmax(scores: np.ndarray) -> np.ndarray:
    exp = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def overlay(image_bgr: np.ndarray, heat: np.ndarray, caption: str) -> np.ndarray:
    """`heat` (cells in 0..1) upsampled to the image, coloured and blended in, with a caption."""
    import cv2

    height, width = image_bgr.shape[:2]
    upsampled = np.clip(cv2.resize(heat.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC), 0, 1)
    colours = cv2.applyColorMap((upsampled * 255).astype(np.uint8), cv2.COLORMAP_JET)
    picture = cv2.addWeighted(image_bgr, 1.0 - OVERLAY_WEIGHT, colours, OVERLAY_WEIGHT, 0)
    scale = max(0.4, min(width, height) / 700)
    for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(picture, caption, (8, int(24 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness,
                    cv2.LINE_AA)
    return picture


def write_heatmap(run_dir: Path, image_path: Path, *, out: Path | None = None, class_name: str | None = None) -> dict:
    """Write the heatmap PNG of `class_name` (default: the predicted class) for one image.

    The prediction is the image's alone (pooled maps, without any metadata input). The PNG has
    the image's own size. `out` is never overwritten; by default the PNG goes into the run
    directory. Returns {"path", "class", "probability"}.
    """
    import cv2

    from podium.core.imagefiles import decode_image
    from podium.files import atomic_write_bytes, unused_path

    plugin, _, spec, backbone, head = load_fcn_run(run_dir)
    image_path = Path(image_path)
    maps = class_maps(spec, backbone, head, image_path)
    predicted = softmax(maps.mean(axis=(0, 1)))
    if class_name is None:
        index = int(predicted.argmax())
    elif class_name in plugin.classes:
        index = plugin.classes.index(class_name)
    else:
        raise PodiumError(f"--class: {class_name!r} is not a class of {plugin.name}; classes are "
                          f"{', '.join(plugin.classes)}")
    image = decode_image(image_path)
    name = plugin.classes[index]
    picture = overlay(image, stretch(maps[..., index]), f"{name} p={predicted[index]:.2f}")
    ok, encoded = cv2.imencode(".png", picture)
    if not ok:
        raise PodiumError(f"cannot encode the heatmap of {image_path} as PNG")
    path = Path(out) if out is not None else unused_path(Path(run_dir) / f"heatmap_{image_path.stem}_{name}.png")
    atomic_write_bytes(path, encoded.tobytes(), overwrite=False)
    return {"path": str(path), "class": name, "probability": float(predicted[index])}
