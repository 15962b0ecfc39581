"""Crop then classify: a second stage that classifies each image's crop around its predicted box.

The box model (see `multi_output.py`) predicts a box for every labelled and test image; each
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

from podium.vision import boxes as box_utils

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

    from podium.files import atomic_write_bytes
    from podium.vision.images import BadImageError

    folder = Path(folder)
    done = folder / ".complete"
    out = [str(folder / f"{row:07d}.jpg") for row in range(len(paths))]
    if done.is_file():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    progress = keras.utils.Progbar(len(paths), unit_name="crop")
    for row, (path, (x0, y0, x1, y1)) in enumerate(zip(paths, regions)):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
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


def crop_and_classify(data, box_model, run_dir: Path, *, views: int, data_dir: Path, single_stage: dict) -> dict:
    """Train and score the crop classifier; metrics prefixed `crop_`, with the single-stage comparison."""
    from podium.vision.pipeline import finish, predict_views, train_head
    from podium.vision.stages.box_output import plain_data, predict_boxes

    config = data.config
    margin = float(config["boxes"]["crop_margin"])
    tables = {"labelled": data.labelled, "test": data.test}
    predicted = {"labelled": predict_boxes(box_model, data, "labelled"),
                 "test": predict_boxes(box_model, data, "test") if len(data.test) else np.zeros((0, 4))}
    cropped = {}
    for split, table in tables.items():
        regions = crop_regions(predicted[split], box_utils.table_sizes(table), data.spec.size, margin=margin)
        paths = table["path"].tolist()
        print(f"crop then classify: cropping {len(paths)} {split} images to their predicted boxes")
        crop_paths = write_crops(paths, regions, crop_folder(data.cache.root, paths, regions))
        cropped[split] = table.assign(path=crop_paths)
    crops = plain_data(data, labelled=cropped["labelled"], test=cropped["test"], labelled_passes={}, test_passes={})
    model = train_head(crops, run_dir, name="crop_head")
    model.save(Path(run_dir) / "crop_head.keras")
    valid_views = predict_views(model, crops, "valid", views)
    test_views = predict_views(model, crops, "test", views) if len(crops.test) else []
    scores = finish(data.plugin, crops, run_dir, valid_views, test_views, data_dir=data_dir, suffix="_crop")
    metric = f"val_{data.plugin.metric}"
    print(f"crop then classify: {metric} {scores[metric]:.4f} vs single-stage {single_stage[metric]:.4f}")
    return {**{f"crop_{key}": value for key, value in scores.items()},
            "crop_better_than_single_stage": bool(scores[metric] < single_stage[metric])}
