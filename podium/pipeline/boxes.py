"""Bounding boxes: reading box files, the largest box per image, scaling to the network input,
box-aware augmentation, and a picture of true and predicted boxes.

A plugin with boxes adds `BOX_COLUMNS` to its canonical table: the largest box of each labelled
image as Pascal VOC corners (x0, y0, x1, y1) in the image's own pixels, NaN where it has none.
Boxes given to a model are in network-input pixels (`image.size`), where the images are stretched
to; an image without a box gets the target (0, 0, 0, 0).
"""
from __future__ import annotations

import json
import math
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import PodiumError

BOX_COLUMNS = ("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1")
_FIELDS = ("x", "y", "width", "height")


def read_box_file(path: Path) -> dict[str, list[tuple]]:
    """File name -> its boxes (x0, y0, x1, y1) from a JSON list of
    `{"filename": ..., "annotations": [{"x", "y", "width", "height"}, ...]}` (the Fisheries forum format).

    An entry with an empty annotation list is an image without a box. A malformed entry is one
    error naming the file, the entry's index and what is wrong.
    """
    path = Path(path)
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PodiumError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(entries, list):
        raise PodiumError(f"{path}: expected a JSON list of entries, got {type(entries).__name__}")
    boxes: dict[str, list[tuple]] = {}
    for index, entry in enumerate(entries):
        where = f"{path}: entry {index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str) or not entry["filename"].strip():
            raise PodiumError(f"{where} needs a 'filename' text, got {_short(entry)}")
        where = f"{where} ({entry['filename']})"
        annotations = entry.get("annotations")
        if not isinstance(annotations, list):
            raise PodiumError(f"{where}: 'annotations' must be a list (empty for no fish), got {_short(annotations)}")
        # Some box files name images with their folders; the file name is what identifies them.
        found = boxes.setdefault(entry["filename"].replace("\\", "/").rsplit("/", 1)[-1], [])
        for number, annotation in enumerate(annotations):
            if not isinstance(annotation, dict):
                raise PodiumError(f"{where}, annotation {number}: expected an object with x, y, width, height, "
                                  f"got {_short(annotation)}")
            values = []
            for name in _FIELDS:
                value = annotation.get(name)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise PodiumError(f"{where}, annotation {number}: '{name}' must be a number, got {_short(value)}")
                values.append(float(value))
            x, y, width, height = values
            found.append((x, y, x + width, y + height))
    return boxes


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def largest_box(boxes, width: float, height: float) -> tuple | None:
    """The largest of `boxes` once clipped to the image; None when none keeps any area
    (no box, or only boxes outside the image or of zero size)."""
    best, best_area = None, 0.0
    for x0, y0, x1, y1 in boxes:
        x0, x1 = min(max(x0, 0.0), width), min(max(x1, 0.0), width)
        y0, y1 = min(max(y0, 0.0), height), min(max(y1, 0.0), height)
        area = (x1 - x0) * (y1 - y0) if x1 > x0 and y1 > y0 else 0.0
        if area > best_area:
            best, best_area = (x0, y0, x1, y1), area
    return best


def image_sizes(paths) -> np.ndarray:
    """(width, height) of each image, read from the file headers only."""
    from PIL import Image, UnidentifiedImageError

    sizes = np.zeros((len(paths), 2), dtype=np.int64)
    for row, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                sizes[row] = image.size
        except (OSError, UnidentifiedImageError) as exc:
            raise PodiumError(f"cannot read the size of image {path}: {exc}") from None
    return sizes


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
    from .images import decode_images

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

    from ..files import atomic_write_bytes

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
