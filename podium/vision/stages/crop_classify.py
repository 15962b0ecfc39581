"""Crop then classify: a second stage that classifies each image's crop around its predicted box.

The box model (see `box_output.py`) predicts a box for every labelled and test image; each
image is cropped to that box plus a margin (`boxes.crop_margin`), the crops go through the same
backbone, and a fresh head is trained on them. Training crops come from predicted boxes too, so
the second stage trains on what it will see at test time. An image whose predicted box is too
small to be a fish (e.g. a "no fish" image, whose box target is zeros) keeps its whole frame.
The crop model's validation score is reported beside the single-stage model's; its predictions
and submission are written with the suffix `_crop`, the single-stage submission stays the main one.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from podium.core.stage import RunState, Stage, register_stage
from podium.log import logger
from podium.vision import boxes as box_utils
from podium.vision.data import plain_data
from podium.vision.learner import Learner

# A predicted box narrower or shorter than this fraction of the network input is no box.
MIN_BOX_FRACTION = 0.05


def crop_regions(predicted: np.ndarray, sizes: np.ndarray, size, *, margin: float) -> np.ndarray:
    """Integer crop rectangles (x0, y0, x1, y1) in each image's pixels for predicted input-pixel boxes."""
    height, width = float(size[0]), float(size[1])
    predicted = np.asarray(predicted, dtype=np.float64)
    box_width, box_height = predicted[:, 2] - predicted[:, 0], predicted[:, 3] - predicted[:, 1]
    too_small = (box_width < MIN_BOX_FRACTION * width) | (box_height < MIN_BOX_FRACTION * height)
    pad = np.stack([box_width, box_height], axis=1) * margin
    grown = predicted + np.concatenate([-pad, pad], axis=1)
    regions = box_utils.to_image_pixels(grown, sizes, size)
    limits = np.tile(sizes, 2)
    regions = np.clip(np.round(regions), 0, limits)
    whole = np.concatenate([np.zeros_like(sizes), sizes], axis=1)
    empty = (regions[:, 2] - regions[:, 0] < 2) | (regions[:, 3] - regions[:, 1] < 2)
    return np.where((too_small | empty)[:, None], whole, regions).astype(np.int64)


def write_crops(paths, regions: np.ndarray, folder: Path) -> list[str]:
    """Crop each image to its region into `folder` (kept: the same crops are reused by a later run)."""
    import cv2
    import keras

    from podium.core.imagefiles import BadImageError, decode_image
    from podium.files import atomic_write_bytes

    folder = Path(folder)
    done = folder / ".complete"
    out = [str(folder / f"{row:07d}.jpg") for row in range(len(paths))]
    if done.is_file():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    progress = keras.utils.Progbar(len(paths), unit_name="crop")
    for row, (path, (x0, y0, x1, y1)) in enumerate(zip(paths, regions)):
        try:
            image = decode_image(path)
        except BadImageError:
            # Only reachable with data.skip_bad_images (else the first stage stopped): the missing crop
            # is a bad image again for the second stage, under the same setting.
            continue
        ok, encoded = cv2.imencode(".jpg", image[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise BadImageError(f"cannot encode the crop of {path}")
        atomic_write_bytes(Path(out[row]), encoded.tobytes())
        progress.update(row + 1)
    done.write_text("crops complete\n")
    return out


def crop_folder(cache_root: Path, paths, regions: np.ndarray) -> Path:
    digest = hashlib.sha256()
    for path, region in zip(paths, regions):
        digest.update(f"{path}|{','.join(str(int(v)) for v in region)}\n".encode())
    return Path(cache_root) / f"crops-{digest.hexdigest()[:16]}"


@register_stage
class CropClassify(Stage):
    """Crop every image to the box model's predicted box, train a fresh head on the crops' features, and write
    its predictions and submission beside the single-stage ones (suffix `_crop`), compared on validation."""

    name = "crop_classify"
    order = 50
    reads = ("boxes",)
    requires = ("boxes",)

    @classmethod
    def enabled(cls, config: dict) -> bool:
        return bool(config["boxes"]["crop_classify"])

    def run(self, state: RunState) -> None:
        data, box_learner = state.data, state.learner
        margin = float(state.config["boxes"]["crop_margin"])
        tables = {"labelled": data.labelled, "test": data.test}
        cropped = {}
        for split, table in tables.items():
            predicted = predicted_boxes(box_learner, split)
            regions = crop_regions(predicted, box_utils.table_sizes(table), data.spec.size, margin=margin)
            paths = table["path"].tolist()
            logger.info(f"crop then classify: cropping {len(paths)} {split} images to their predicted boxes")
            crop_paths = write_crops(paths, regions, crop_folder(data.cache.root, paths, regions))
            cropped[split] = table.assign(path=crop_paths)
        crops = plain_data(data, labelled=cropped["labelled"], test=cropped["test"], labelled_passes={},
                           test_passes={})
        learner = Learner.train_head(crops, state.run_dir, name="crop_head")
        learner.save(state.run_dir / "crop_head.keras")
        state.alternatives["_crop"] = learner


def predicted_boxes(learner, split: str) -> np.ndarray:
    """Predicted boxes (network-input pixels) of the plain view; `labelled`: every train and valid row, in
    table order."""
    size = learner.data.spec.size
    if split == "test":
        return box_utils.from_fractions(learner.predict("test", output="bbox"), size) if len(learner.data.test) \
            else np.zeros((0, 4))
    labelled = np.zeros((len(learner.data.labelled), 4))  # rows skipped as unreadable keep the whole image
    labelled[learner.data.train_rows] = box_utils.from_fractions(learner.predict("train", output="bbox"), size)
    labelled[learner.data.valid_rows] = box_utils.from_fractions(learner.predict("valid", output="bbox"), size)
    return labelled
