"""Bounding boxes: box files, largest box, scaling, and augmentation that keeps boxes on their objects."""
import json

import cv2
import numpy as np
import pandas as pd
import pytest

from podium.errors import PodiumError
from podium.vision.backbones import BackboneSpec
from podium.vision.cache import FeatureCache
from podium.vision.augment import build_augment
from podium.core.annotations import BOX_COLUMNS, largest_box, read_box_file
from podium.vision.boxes import (input_boxes, iou, load_batch_with_boxes,
                                   to_image_pixels)
from podium.config import IMAGE_DEFAULTS, deep_update

AUGMENT = [
    {"name": "HorizontalFlip", "p": 0.5},
    {"name": "Affine", "translate_percent": [-0.1, 0.1], "rotate": [-8, 8], "scale": [0.9, 1.1], "p": 1.0},
    {"name": "RandomBrightnessContrast", "brightness_limit": 0.1, "contrast_limit": 0.1, "p": 0.5},
]


def _write(path, entries):
    path.write_text(json.dumps(entries))
    return path


def test_box_file_reads_corners_by_file_name(tmp_path):
    path = _write(tmp_path / "alb_labels.json", [
        {"filename": "img_00003.jpg", "class": "image",
         "annotations": [{"class": "rect", "x": 10, "y": 20, "width": 30, "height": 5.5}]},
        {"filename": "../data/train/ALB/img_00007.jpg", "annotations": []},  # a folder, and no fish annotated
    ])
    boxes = read_box_file(path)
    assert boxes == {"img_00003.jpg": [(10.0, 20.0, 40.0, 25.5)], "img_00007.jpg": []}


@pytest.mark.parametrize("entry, message", [
    ({"annotations": []}, r"entry 1 needs a 'filename'"),
    ({"filename": "img_2.jpg"}, r"entry 1 \(img_2.jpg\): 'annotations' must be a list"),
    ({"filename": "img_2.jpg", "annotations": [{"x": 1, "y": 2, "width": "wide", "height": 3}]},
     r"entry 1 \(img_2.jpg\), annotation 0: 'width' must be a number"),
    ({"filename": "img_2.jpg", "annotations": [{"x": 1, "y": 2, "width": 3}]},
     r"entry 1 \(img_2.jpg\), annotation 0: 'height' must be a number"),
    ({"filename": "img_2.jpg", "annotations": ["rect"]}, r"entry 1 \(img_2.jpg\), annotation 0: expected an object"),
])
def test_malformed_entry_is_reported_by_file_and_index(tmp_path, entry, message):
    good = {"filename": "img_1.jpg", "annotations": []}
    path = _write(tmp_path / "bet_labels.json", [good, entry])
    with pytest.raises(PodiumError, match=message) as error:
        read_box_file(path)
    assert str(path) in str(error.value)


def test_box_file_that_is_not_a_list_or_not_json(tmp_path):
    with pytest.raises(PodiumError, match="expected a JSON list"):
        read_box_file(_write(tmp_path / "a.json", {"filename": "x"}))
    (tmp_path / "b.json").write_text("[{")
    with pytest.raises(PodiumError, match="b.json is not valid JSON"):
        read_box_file(tmp_path / "b.json")


def test_largest_box_is_clipped_to_the_image():
    assert largest_box([(10, 10, 20, 20), (50, 40, 90, 70)], 100, 60) == (50, 40, 90, 60)  # sticks out below
    assert largest_box([(-30, -5, 40, 30)], 100, 60) == (0, 0, 40, 30)
    assert largest_box([(120, 10, 150, 20), (5, 5, 5, 30)], 100, 60) is None  # outside, or no width
    assert largest_box([], 100, 60) is None


def test_boxes_scale_to_the_network_input_and_back():
    table = pd.DataFrame({"width": [1280, 640], "height": [720, 360],
                          **dict(zip(BOX_COLUMNS, [[128.0, np.nan], [72.0, np.nan], [640.0, np.nan],
                                                    [360.0, np.nan]]))})
    scaled = input_boxes(table, [36, 64])
    assert scaled[0].tolist() == pytest.approx([6.4, 3.6, 32.0, 18.0])
    assert np.isnan(scaled[1]).all()
    back = to_image_pixels(scaled[:1], table[["width", "height"]].to_numpy()[:1], [36, 64])
    assert back[0] == pytest.approx([128.0, 72.0, 640.0, 360.0], rel=1e-5)


def test_iou():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10]])
    assert iou(a, b) == pytest.approx([1.0, 1 / 3])


def _scene(path, box, size=(48, 80)):
    image = np.full((*size, 3), 90, np.uint8)
    x0, y0, x1, y1 = box
    image[y0:y1, x0:x1] = (250, 250, 250)
    cv2.imwrite(str(path), image)  # PNG: lossless, so the drawn object's edges are exact
    return path


def test_boxes_survive_augmentation_within_a_pixel(tmp_path):
    rng = np.random.default_rng(0)
    boxes, paths = [], []
    for n in range(24):
        x0, y0 = int(rng.integers(8, 40)), int(rng.integers(6, 22))
        box = (x0, y0, x0 + int(rng.integers(12, 30)), y0 + int(rng.integers(8, 18)))
        paths.append(str(_scene(tmp_path / f"{n}.png", box)))
        boxes.append(box)
    boxes.append((np.nan,) * 4)  # an image without a box stays without one
    paths.append(str(_scene(tmp_path / "none.png", (0, 0, 0, 0))))
    pixels, ok, moved = load_batch_with_boxes(paths, (48, 80), augment=build_augment(AUGMENT, seed=3, bbox=True),
                                              boxes=np.array(boxes, dtype=np.float32))
    assert ok.all() and np.isnan(moved[-1]).all()
    changed = 0
    for image, box, original in zip(pixels[:-1], moved[:-1], boxes[:-1]):
        ys, xs = np.nonzero(image[..., 0] > 170)
        drawn = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        assert np.abs(box - drawn).max() <= 1.0, (box, drawn)
        changed += not np.allclose(box, original)
    assert changed > len(moved) // 2  # the augmentation really moved them


def test_feature_cache_keeps_augmented_boxes_and_plain_boxes(tmp_path):
    spec = BackboneSpec.from_config(deep_update(IMAGE_DEFAULTS, {"image": {"size": [32, 48], "weights": "none"}}))
    paths = [str(_scene(tmp_path / f"{n}.png", (4 + n, 4, 30 + n, 20), size=(32, 48))) for n in range(6)]
    boxes = np.array([(4 + n, 4, 30 + n, 20) for n in range(5)] + [(np.nan,) * 4], dtype=np.float32)
    cache = FeatureCache(tmp_path / "cache", chunk_size=4)
    plain = cache.features(spec, paths, boxes=boxes)
    assert np.array_equal(plain.boxes, boxes, equal_nan=True)
    augmented = cache.features(spec, paths, pass_index=1, augment=AUGMENT, boxes=boxes)
    assert augmented.boxes.shape == (6, 4) and np.isnan(augmented.boxes[5]).all()
    assert not np.allclose(augmented.boxes[:5], boxes[:5])
    again = FeatureCache(tmp_path / "cache", chunk_size=4).features(spec, paths, pass_index=1, augment=AUGMENT,
                                                                    boxes=boxes)
    assert again.hit and np.array_equal(again.boxes, augmented.boxes, equal_nan=True)
    # The box-aware pass is its own entry; the plain features are shared with box-less runs.
    assert augmented.directory != cache.features(spec, paths, pass_index=1, augment=AUGMENT).directory
    assert cache.features(spec, paths).hit and cache.features(spec, paths).boxes is None


def test_box_loss_in_fractions_keeps_the_class_accuracy():
    """A box output trained with weight 1 on fraction targets must not cost the classifier its accuracy."""
    import keras

    from podium.vision.boxes import from_fractions, to_fractions, with_box_output
    from podium.vision.heads import build_head

    rng = np.random.default_rng(0)
    n, size = 600, (224, 224)
    y = rng.integers(0, 4, size=n)
    centres = rng.normal(size=(4, 32))
    x = (centres[y] + 1.2 * rng.normal(size=(n, 32))).astype("float32")
    corner = rng.uniform(0, 150, size=(n, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(20, 70, size=(n, 2))], axis=1).astype("float32")
    assert np.allclose(from_fractions(to_fractions(boxes, size), size), boxes, atol=1e-3)
    train, valid = slice(0, 450), slice(450, n)
    config = {"kind": "gap", "units": 32, "dropout": 0.2, "input_bn": True}

    def accuracy(with_boxes: bool) -> float:
        keras.utils.set_random_seed(0)
        model = build_head((32,), 4, config)
        targets = {"class": np.eye(4)[y]}
        if with_boxes:
            model = with_box_output(model, size=size, mean_box=boxes[train].mean(axis=0))
            targets["bbox"] = to_fractions(boxes, size)
            model.compile(optimizer=keras.optimizers.Adam(3e-3), loss={"class": "categorical_crossentropy",
                                                                        "bbox": "mse"},
                          loss_weights={"class": 1.0, "bbox": 1.0})
            model.fit(x[train], {k: v[train] for k, v in targets.items()}, epochs=15, batch_size=32, verbose=0)
            predicted = model.predict(x[valid], verbose=0)["class"]
        else:
            model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="categorical_crossentropy")
            model.fit(x[train], targets["class"][train], epochs=15, batch_size=32, verbose=0)
            predicted = model.predict(x[valid], verbose=0)
        return float((predicted.argmax(axis=1) == y[valid]).mean())

    class_only, with_box = accuracy(False), accuracy(True)
    assert class_only > 0.6
    assert with_box >= class_only - 0.03
