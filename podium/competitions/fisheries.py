"""The Nature Conservancy Fisheries Monitoring: which fish (if any) is on a boat camera's picture.

Raw layout: `train/<CLASS>/img_*.jpg`, `test_stg1/*.jpg`, optionally `test_stg2/*.jpg` (stage-2
ids keep their folder: `test_stg2/image_00001.jpg`), `sample_submission_stg1.csv`, and optional
bounding boxes from the competition's forum, `{alb,bet,dol,lag,other,shark,yft}_labels.json`.

Each boat's camera has its own image size, so the size gives away the boat and, through what
each boat catches, the fish. The table carries width, height and size as metadata (the model's
second input, `head.metadata`), the size as the group (`data.split=group` validates on unseen
cameras), and the largest box of each annotated training image (`boxes.loss_weight > 0` trains a
box output beside the classifier). See `podium leakage fisheries --data DIR` for how much the
metadata alone gives away.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.files import visible_entries
from podium.core.annotations import BOX_COLUMNS
from podium.core.imagefiles import BAD_IMAGE_COLUMN
from podium.competitions.base import Competition
from podium.competitions.registry import register

CLASSES = ("ALB", "BET", "DOL", "LAG", "NoF", "OTHER", "SHARK", "YFT")
BOXED_CLASSES = tuple(c for c in CLASSES if c != "NoF")  # the forum's box files cover every fish class
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
STAGE2_PREFIX = "test_stg2/"

# The real cameras' sizes (width, height), shrunk 6x for demo data.
DEMO_SIZES = ((213, 120), (213, 162), (199, 112), (289, 162))
# Colour (BGR) and body length/height ratio of each fish; the three tunas look alike on purpose.
_FISH = {
    "ALB": ((150, 90, 40), 3.0), "BET": ((140, 80, 60), 2.6), "YFT": ((120, 100, 50), 2.8),
    "DOL": ((60, 200, 120), 3.6), "LAG": ((70, 70, 210), 1.5), "OTHER": ((200, 200, 200), 2.2),
    "SHARK": ((50, 50, 60), 5.0),
}


@register
class Fisheries(Competition):
    name = "fisheries"
    slug = "the-nature-conservancy-fisheries-monitoring"
    classes = CLASSES
    id_column = "image"
    metadata_columns = ("width", "height", "size")

    def read_table(self, data_dir: Path) -> pd.DataFrame:
        from podium.core.imagefiles import image_sizes

        data_dir = Path(data_dir).resolve()
        train_dir, stage1_dir, stage2_dir = data_dir / "train", data_dir / "test_stg1", data_dir / "test_stg2"
        for folder in (train_dir, stage1_dir):
            if not folder.is_dir():
                raise PodiumError(f"{folder} not found: expected Kaggle's train/<CLASS>/ and test_stg1/ folders "
                                  f"in {data_dir}")
        self._check_sample_submission(data_dir / "sample_submission_stg1.csv")
        rows = []
        for folder in visible_entries(train_dir):
            if not folder.is_dir() or folder.name not in CLASSES:
                raise PodiumError(f"{folder}: train/ must hold one folder per class ({', '.join(CLASSES)})")
            rows += [(path.name, str(path), folder.name, "train") for path in _images(folder)]
        rows += [(path.name, str(path), None, "test") for path in _images(stage1_dir)]
        if stage2_dir.is_dir():
            rows += [(STAGE2_PREFIX + path.name, str(path), None, "test") for path in _images(stage2_dir)]
        table = pd.DataFrame(rows, columns=["id", "path", "label", "split"])
        if not (table["split"] == "train").any():
            raise PodiumError(f"{train_dir} holds no images")
        if not (table["split"] == "test").any():
            raise PodiumError(f"{stage1_dir} holds no images")
        # Unreadable images get size 0x0 and are marked; prepare_table refuses them or, under
        # data.skip_bad_images, lets the feature cache skip and count them like any other reader.
        sizes = image_sizes(table["path"].tolist(), skip_bad_images=True)
        table["width"], table["height"] = sizes[:, 0], sizes[:, 1]
        table["size"] = [f"{w}x{h}" for w, h in sizes]
        table.insert(3, "group", table["size"])  # the camera, i.e. the boat
        bad = sizes[:, 0] == 0
        if bad.any():
            table[BAD_IMAGE_COLUMN] = bad
        return _add_boxes(table, data_dir)

    def _check_sample_submission(self, path: Path) -> None:
        if not path.is_file():
            return
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise PodiumError(f"{path} is not UTF-8 CSV text (is it the sample submission?)") from None
        except OSError as exc:
            raise PodiumError(f"{path} cannot be read: {exc.strerror or exc}") from None
        header = text.splitlines()[0].strip().split(",") if text.strip() else []
        if header != self.submission_header():
            raise PodiumError(f"{path}: header is {','.join(header)!r}, expected {','.join(self.submission_header())!r}"
                              " (is this the Fisheries Monitoring data?)")

    def default_config(self) -> dict:
        from podium.config import IMAGE_DEFAULTS, deep_update

        # The course's metadata fusion before the last layer (on the shared default backbone). Box output and the
        # fully convolutional head are switches (boxes.loss_weight=1: boxes are fractions of the image, so the box
        # loss is on the class loss's scale; head.kind=fcn, image.size=[360,640]).
        return deep_update(IMAGE_DEFAULTS, {"image": {"size": [224, 224]},
                                            "head": {"kind": "gap", "metadata": True}})

    def make_demo_data(self, out_dir: Path, seed: int = 0) -> Path:
        return write_demo_data(out_dir, seed=seed)

    def demo_overrides(self) -> dict:
        return {
            "image": {"backbone": "vgg16", "weights": "none", "size": [64, 112], "batch_size": 32},
            "train": {"epochs": 12, "batch_size": 16, "lr": 3e-3, "patience": 6},
            "boxes": {"loss_weight": 1.0},
            "oof": {"folds": 3},
            "tta": {"views": 0},
        }


def _images(folder: Path) -> list[Path]:
    paths = visible_entries(folder)
    for path in paths:
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            raise PodiumError(f"{path}: expected only images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return paths


def _add_boxes(table: pd.DataFrame, data_dir: Path) -> pd.DataFrame:
    """The largest box of each training image found in the box files (NaN when none)."""
    from podium.core.annotations import largest_box, read_box_file

    found = np.full((len(table), 4), np.nan)
    for name in BOXED_CLASSES:
        path = data_dir / f"{name.lower()}_labels.json"
        if not path.is_file():
            continue
        notes: list[str] = []
        by_file = read_box_file(path, notes=notes)
        for note in notes:
            print(f"fisheries: {note}")
        rows = np.flatnonzero(((table["split"] == "train") & (table["label"] == name)).to_numpy())
        outside, first_outside = 0, None
        for row in rows:
            if table["width"].iat[row] == 0:  # unreadable image: no size to clip its boxes to
                continue
            boxes = by_file.get(table["id"].iat[row], ())
            width, height = table["width"].iat[row], table["height"].iat[row]
            beyond = sum(1 for box in boxes if largest_box([box], width, height) is None)
            if beyond:
                outside, first_outside = outside + beyond, first_outside or table["id"].iat[row]
            box = largest_box(boxes, width, height)
            if box is not None:
                found[row] = box
        if outside:
            print(f"fisheries: warning: {path}: {outside} boxes lie wholly outside their image (first: "
                  f"{first_outside}) and were ignored")
    for column, values in zip(BOX_COLUMNS, found.T):
        table[column] = values
    return table


def write_demo_data(out_dir: Path, *, seed: int = 0, per_class: int = 30, stage1: int = 40, stage2: int = 16,
                    leak: float = 0.75, sizes=DEMO_SIZES) -> Path:
    """Kaggle-layout Fisheries data with drawn fish, their box files, and a planted size leak.

    Each class has a home camera (image size); a fish is photographed there with probability
    `leak`, else by a random camera (leak=0: size and class independent). A few fish stick out
    of the frame, a few annotated entries have no boxes, and NoF images have none.
    """
    import json

    import cv2

    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    boxes: dict[str, list] = {name: [] for name in BOXED_CLASSES}

    def camera(class_index):
        home = class_index % len(sizes)
        return sizes[home] if rng.random() < leak else sizes[int(rng.integers(len(sizes)))]

    def save(path: Path, image: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), image):
            raise OSError(f"cannot write {path}")

    number = 0
    for class_index, name in enumerate(CLASSES):
        for _ in range(per_class):
            number += 1
            file_name = f"img_{number:05d}.jpg"
            image, drawn = _demo_picture(name, camera(class_index), rng)
            save(out_dir / "train" / name / file_name, image)
            if name == "NoF":
                continue
            annotations = [] if rng.random() < 0.05 else [
                {"class": "rect", "x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0} for x0, y0, x1, y1 in drawn]
            boxes[name].append({"filename": file_name, "class": "image", "annotations": annotations})
    test_names, truth = [], []
    for folder, count, pattern in (("test_stg1", stage1, "img_{:05d}.jpg"), ("test_stg2", stage2, "image_{:05d}.jpg")):
        for _ in range(count):
            number += 1
            class_index = int(rng.integers(len(CLASSES)))
            image, _ = _demo_picture(CLASSES[class_index], camera(class_index), rng)
            save(out_dir / folder / pattern.format(number), image)
            if folder == "test_stg1":
                test_names.append(pattern.format(number))
            truth.append((pattern.format(number) if folder == "test_stg1" else f"{folder}/{pattern.format(number)}",
                          CLASSES[class_index]))
    for name, entries in boxes.items():
        (out_dir / f"{name.lower()}_labels.json").write_text(json.dumps(entries, indent=1))
    sample = pd.DataFrame({"image": test_names, **{c: 1.0 / len(CLASSES) for c in CLASSES}})
    sample.to_csv(out_dir / "sample_submission_stg1.csv", index=False)
    # The generated test images' classes, to score a submission as the leaderboard would (bench/fisheries.py).
    pd.DataFrame(truth, columns=["image", "label"]).to_csv(out_dir / "test_labels.csv", index=False)
    return out_dir


def _demo_picture(name: str, size, rng: np.random.Generator):
    """A deck photo of `size` (width, height) with clutter and 0, 1 or 2 fish of class `name`; (image, boxes)."""
    import cv2

    width, height = size
    image = rng.normal((95, 105, 110), 14, size=(height, width, 3)).clip(0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 5))):  # ropes, buckets, people: not fish
        x, y = int(rng.integers(width)), int(rng.integers(height))
        shade = tuple(int(v) for v in rng.integers(40, 180, 3))
        cv2.rectangle(image, (x, y), (x + int(rng.integers(5, width // 4)), y + int(rng.integers(3, height // 6))),
                      shade, thickness=-1)
    drawn = []
    if name != "NoF":
        colour, ratio = _FISH[name]
        for _ in range(1 if rng.random() < 0.8 else 2):
            length = rng.uniform(0.22, 0.4) * width
            thickness = length / ratio
            # Mostly inside the frame; about one fish in ten sticks out of it.
            margin = -0.3 * length if rng.random() < 0.1 else 0.6 * length
            cx = rng.uniform(margin, width - margin) if width > 2 * margin else width / 2
            cy = rng.uniform(thickness, height - thickness) if height > 2 * thickness else height / 2
            shade = tuple(int(np.clip(c + rng.normal(0, 12), 0, 255)) for c in colour)
            cv2.ellipse(image, (int(cx), int(cy)), (int(length * 0.4), int(thickness / 2)), 0, 0, 360, shade, -1)
            tail_x = cx + length * 0.4
            tail = np.array([[tail_x - 2, cy], [tail_x + length * 0.2, cy - thickness / 2],
                             [tail_x + length * 0.2, cy + thickness / 2]], dtype=np.int32)
            cv2.fillPoly(image, [tail], shade)
            drawn.append((round(cx - length * 0.4, 1), round(cy - thickness / 2, 1),
                          round(cx + length * 0.6, 1), round(cy + thickness / 2, 1)))
    return image, drawn
