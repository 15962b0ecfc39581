"""Bounding boxes for models: scaling to the network input, box-aware augmentation, IoU, and a picture
of true and predicted boxes. The table's box columns are `podium.core.annotations.BOX_COLUMNS`.

Boxes are kept in network-input pixels (`image.size`), where the images are stretched to; a model
learns and predicts them as fractions of the input (`to_fractions`, `from_fractions`), so the box
loss is on the scale of the class loss whatever the image size (in pixels squared, a box loss weight
of 1 swamped the classifier: Fisheries' class accuracy fell from 0.98 to 0.54). An image without a
box gets the target (0, 0, 0, 0).
"""
from __future__ import annotations

import math
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd

from podium.core.annotations import BOX_COLUMNS
from podium.core.imagefiles import image_sizes
from podium.errors import PodiumError

def has_boxes(table: pd.DataFrame) -> bool:
    return all(c in table.columns for c in BOX_COLUMNS) and table[list(BOX_COLUMNS)].notna().all(axis=1).any()


def table_sizes(table: pd.DataFrame) -> np.ndarray:
    """(width, height) per row: the table's width/height columns when it has them, else the image headers."""
    if "width" in table.columns and "height" in table.columns:
        return table[["width", "height"]].to_numpy(dtype=np.float64)
    return image_sizes(table["path"].tolist()).astype(np.float64)


def input_boxes(table: pd.DataFrame, size) -> np.ndarray:
    """The table's boxes scaled to network-input pixels (`size` = [height, width]); NaN rows: no box."""
    height, width = float(size[0]), float(size[1])
    scale = np.array([width, height, width, height]) / np.tile(table_sizes(table), 2)
    return (table[list(BOX_COLUMNS)].to_numpy(dtype=np.float64) * scale).astype(np.float32)


def to_image_pixels(boxes: np.ndarray, sizes: np.ndarray, size) -> np.ndarray:
    """Network-input boxes back to each image's own pixels (`sizes`: (width, height) per row)."""
    height, width = float(size[0]), float(size[1])
    return np.asarray(boxes, dtype=np.float64) * np.tile(sizes, 2) / np.array([width, height, width, height])


def to_fractions(boxes: np.ndarray, size) -> np.ndarray:
    """Network-input pixel boxes as fractions of the input (x / width, y / height)."""
    height, width = float(size[0]), float(size[1])
    return np.asarray(boxes, dtype=np.float32) / np.array([width, height, width, height], dtype=np.float32)


def from_fractions(boxes: np.ndarray, size) -> np.ndarray:
    """A model's fraction boxes back to network-input pixels."""
    height, width = float(size[0]), float(size[1])
    return np.asarray(boxes, dtype=np.float64) * np.array([width, height, width, height])


def targets(boxes: np.ndarray) -> np.ndarray:
    """Regression targets: the boxes, with (0, 0, 0, 0) for an image without one."""
    return np.nan_to_num(np.asarray(boxes, dtype=np.float32), nan=0.0)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of paired boxes (rows of x0, y0, x1, y1)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    width = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    height = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = width * height
    union = _area(a) + _area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def load_batch_with_boxes(paths, size, *, augment, boxes: np.ndarray, skip_bad_images: bool = False,
                          threads: int = 2):
    """`images.load_batch` for a box-aware pipeline (`build_augment(..., bbox=True)`): the images, the
    mask of good rows, and each row's box moved with its image (NaN: none, or pushed out of the image)."""
    from podium.vision.images import decode_images

    images, ok, batch = decode_images(paths, size, skip_bad_images=skip_bad_images, threads=threads)
    moved = np.full((len(images), 4), np.nan, dtype=np.float32)
    # In order on this thread, as load_batch does, so a seeded pipeline is reproducible.
    for row, image in enumerate(images):
        if image is None:
            continue
        box = boxes[row]
        present = bool(np.isfinite(box).all())
        out = augment(image=image, bboxes=[box.tolist()] if present else [], labels=[0] if present else [])
        batch[row] = out["image"]
        if len(out["bboxes"]):
            moved[row] = np.asarray(out["bboxes"][0], dtype=np.float32)[:4]
    return batch, ok, moved


def draw_boxes(paths, true_boxes, predicted_boxes, titles, out: Path, *, columns: int = 4) -> Path:
    """A PNG grid of images with their true (green) and predicted (red) boxes, in image pixels."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from podium.files import atomic_write_bytes

    count = len(paths)
    rows = max(1, math.ceil(count / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, path, truth, guess, title in zip(axes.ravel(), paths, true_boxes, predicted_boxes, titles):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        ax.imshow(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        for box, colour in ((truth, "lime"), (guess, "red")):
            if box is not None and np.isfinite(box).all():
                ax.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1], fill=False,
                                       edgecolor=colour, linewidth=1.5))
        ax.set_title(title, fontsize=8)
    fig.suptitle("boxes: true (green), predicted (red)", fontsize=10)
    fig.tight_layout()
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return atomic_write_bytes(Path(out), buffer.getvalue())


def with_box_output(head, *, size, mean_box: np.ndarray):
    """`head` with a second, box output beside its classifier: a Keras model with outputs {"class", "bbox"}.

    The box output is (x0, y0, x1, y1) as fractions of the input (`from_fractions` gives pixels back), a
    linear layer on the classifier's input that starts at the average training box (`mean_box`, pixels).
    """
    import keras
    from keras import layers

    try:
        classifier = head.get_layer("class")
    except ValueError:
        raise PodiumError("this head ends in class maps with no dense layer to add a box output to; "
                          "use head.kind=gap or dense") from None
    start = to_fractions(np.asarray(mean_box, dtype=np.float32)[None], size)[0]
    bbox = layers.Dense(4, kernel_initializer="zeros", name="bbox", dtype="float32",
                        bias_initializer=keras.initializers.Constant(start.tolist()))(classifier.input)
    inputs = head.inputs if len(head.inputs) > 1 else head.inputs[0]
    return keras.Model(inputs, {"class": classifier.output, "bbox": bbox}, name=f"{head.name}_bbox")
