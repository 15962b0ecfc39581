"""Multi-output heads: the class softmax and the largest bounding box, trained jointly on cached features.

Switched on by `boxes.loss_weight > 0` for a plugin whose table has box columns (see `boxes.py`).
The box output is a linear dense layer beside the classifier, on the same penultimate tensor,
regressing (x0, y0, x1, y1) in network-input pixels; its mean squared error is scaled by
`boxes.loss_weight` (the course used 0.001) and added to the class cross-entropy. The dense
(flattening) head keeps where things are in the feature map; the gap head averages it away, so
boxes are learnt better with `head.kind=dense`. The fcn head has no dense layer and takes no box.

Box-aware augmentation happens where the features are made: an augmented feature pass moves each
row's box with its image and the cache keeps the moved boxes beside the features, so every pass
trains on targets that match what the backbone saw (the plain pass keeps the boxes as they are).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from podium.errors import PodiumError
from podium.vision import boxes as box_utils
from podium.vision.batches import FeatureBatches, RowSource, predict_rows
from podium.vision.pipeline import ImageData, augmented_passes, finish, load_image_data, predict_views
from podium.core.table import prepare_table

PNG_EXAMPLES = 12


@dataclass
class BoxData(ImageData):
    """ImageData whose labelled rows also have a box target (network-input pixels, NaN: none)."""

    boxes: np.ndarray | None = None  # one per labelled row

    def _features(self, rows, pass_index: int, label: str):
        if rows is not self.labelled:
            return super()._features(rows, pass_index, label)
        image, augment = self.config["image"], self.config["augment"]["transforms"]
        return self.cache.features(self.spec, rows["path"].tolist(), pass_index=pass_index,
                                   augment=augment if pass_index else None, batch_size=int(image["batch_size"]),
                                   skip_bad_images=bool(self.config["data"]["skip_bad_images"]), label=label,
                                   boxes=self.boxes)

    def moved_boxes(self, pass_index: int) -> np.ndarray:
        """Each labelled row's box as pass `pass_index` shows it (the plain pass: as given)."""
        moved = self.labelled_features(pass_index).boxes
        return self.boxes if moved is None else moved

    def source(self, split: str, pass_index: int = 0, *, with_targets: bool = True):
        source = super().source(split, pass_index, with_targets=with_targets)
        if split != "test" and with_targets:
            source.targets = {"class": source.targets,
                              "bbox": box_utils.targets(self.moved_boxes(pass_index)[source.rows])}
        return source


def check_boxes(plugin, table) -> None:
    if not box_utils.has_boxes(table):
        raise PodiumError(f"boxes.loss_weight > 0 but {plugin.name}'s table has no bounding boxes "
                          f"(columns {', '.join(box_utils.BOX_COLUMNS)}); for Fisheries, put the "
                          "*_labels.json box files in the data folder")


def with_boxes(data: ImageData) -> BoxData:
    """`data` with the box targets of its labelled rows; one clear error when the table has none."""
    check_boxes(data.plugin, data.labelled)
    values = {f.name: getattr(data, f.name) for f in fields(ImageData)}
    # Pass 0 features of the plain ImageData are reused; augmented passes are made box-aware.
    values["labelled_passes"] = {0: data.labelled_features(0)}
    return BoxData(**values, boxes=box_utils.input_boxes(data.labelled, data.spec.size))


def plain_data(data: ImageData, **changes) -> ImageData:
    """A plain ImageData (no box targets) from `data`, with `changes`."""
    values = {f.name: getattr(data, f.name) for f in fields(ImageData)}
    return ImageData(**{**values, **changes})


def build_multi_output(data: BoxData):
    """The configured head with a second, box output: a Keras model with outputs {"class", "bbox"}."""
    import keras
    from keras import layers

    from podium.vision.heads import SCORE_HEADS, build_head

    config = data.config
    kind = config["head"]["kind"]
    if kind in SCORE_HEADS:
        raise PodiumError(f"boxes.loss_weight: head.kind={kind} ends in class maps with no dense layer to add a "
                          "box output to; use head.kind=gap or dense")
    head = build_head(data.feature_shape, len(data.plugin.classes), config["head"], metadata_dim=data.metadata_dim,
                      weight_decay=float(config["train"]["weight_decay"]))
    classifier = head.get_layer("class")
    # The dense layer predicts fractions of the input and a fixed rescaling turns them into pixels, so
    # its steps are in proportion to the image; it starts at the average training box.
    height, width = (float(v) for v in data.spec.size)
    scale = np.array([width, height, width, height])
    mean_box = box_utils.targets(data.boxes[data.train_rows]).mean(axis=0) / scale
    fraction = layers.Dense(4, kernel_initializer="zeros", name="bbox_fraction", dtype="float32",
                            bias_initializer=keras.initializers.Constant(mean_box.tolist()))(classifier.input)
    bbox = layers.Rescaling(scale.tolist(), name="bbox", dtype="float32")(fraction)
    inputs = head.inputs if len(head.inputs) > 1 else head.inputs[0]
    return keras.Model(inputs, {"class": classifier.output, "bbox": bbox}, name=f"{kind}_bbox_head")


def train_multi_output(data: BoxData, run_dir: Path, *, name: str = "head", extra_callbacks=()):
    """Train the class + box head on the train rows (plain and box-aware augmented passes)."""
    import keras

    from podium.vision.training import fit

    config = data.config
    keras.utils.set_random_seed(int(config["seed"]))
    passes = augmented_passes(config) + 1
    train_data = FeatureBatches([data.source("train", p) for p in range(passes)],
                                batch_size=int(config["train"]["batch_size"]), shuffle=True, seed=int(config["seed"]))
    valid_data = FeatureBatches([data.source("valid")], batch_size=256)
    model = build_multi_output(data)
    weight = float(config["boxes"]["loss_weight"])
    print(f"training {name}: {config['head']['kind']} head + box output on {model.count_params():,} parameters, "
          f"{len(data.train_rows)} training rows x {passes} passes, box loss weight {weight:g}")
    if config["head"]["kind"] == "gap" and len(data.feature_shape) == 3:
        print("note: the gap head averages away where things are; boxes are learnt better with head.kind=dense")
    fit(model, train_data, valid_data, train_config=config["train"], run_dir=run_dir, name=name,
        extra_callbacks=extra_callbacks,
        loss={"class": keras.losses.CategoricalCrossentropy(label_smoothing=config["train"]["label_smoothing"]),
              "bbox": keras.losses.MeanSquaredError()},
        loss_weights={"class": 1.0, "bbox": weight}, metrics={"class": ["accuracy"]})
    return model


def predict_boxes(model, data: ImageData, split: str) -> np.ndarray:
    """Predicted boxes (network-input pixels) of the plain pass, in row order; `split` "labelled" is
    every train and valid row, in table order."""
    if split == "labelled":
        source = RowSource(data.inputs(data.labelled_features(0), data.labelled), np.arange(len(data.labelled)))
    else:
        source = data.source(split, 0, with_targets=False)
    return np.asarray(predict_rows(model, source)["bbox"])


def box_metrics(data: BoxData, predicted: np.ndarray) -> dict:
    """Validation IoU between predicted and true boxes, over validation images that have a box."""
    truth = data.boxes[data.valid_rows]
    present = np.isfinite(truth).all(axis=1)
    if not present.any():
        return {"val_box_rows": 0}
    overlap = box_utils.iou(truth[present], predicted[present])
    return {"val_box_rows": int(present.sum()), "val_box_iou": float(overlap.mean()),
            "val_box_iou_over_half": float((overlap > 0.5).mean())}


def draw_validation_boxes(data: BoxData, predicted: np.ndarray, class_predictions: np.ndarray, out: Path) -> Path:
    """A PNG of validation images, spread over the rows with a true box, plus two without: true and predicted
    boxes, true and predicted class."""
    rows = data.valid_rows
    with_box = np.isfinite(data.boxes[rows]).all(axis=1)
    boxed, unboxed = np.flatnonzero(with_box), np.flatnonzero(~with_box)[:2]
    spread = boxed[np.unique(np.linspace(0, len(boxed) - 1, PNG_EXAMPLES - len(unboxed)).astype(int))] \
        if len(boxed) else boxed
    chosen = np.concatenate([spread, unboxed])
    frame = data.labelled.iloc[rows[chosen]]
    sizes = box_utils.table_sizes(frame)
    truth = box_utils.to_image_pixels(data.boxes[rows[chosen]], sizes, data.spec.size)
    guess = box_utils.to_image_pixels(predicted[chosen], sizes, data.spec.size)
    classes = data.plugin.classes
    titles = [f"{row['id']}: {row['label']} / predicted {classes[int(p.argmax())]}"
              for (_, row), p in zip(frame.iterrows(), class_predictions[chosen])]
    return box_utils.draw_boxes(frame["path"].tolist(), truth, guess, titles, out)


def run_multi_output(plugin, data_dir: Path, config: dict, run_dir: Path, *, sample: bool, callbacks=()) -> dict:
    """The image pipeline with a box output: train, predict (TTA on the class output), boxes PNG, submission;
    then, with `boxes.crop_classify`, the crop-then-classify second stage, compared on validation."""
    from podium.vision.training import plot_learning_curve

    for section, why in (("finetune", "fine-tuning trains a single class output from images"),
                         ("pseudo", "test rows have no boxes to pseudo-label")):
        if config[section]["enabled"]:
            raise PodiumError(f"{section}.enabled with boxes.loss_weight > 0 is not supported: {why}")
    # Before any feature is computed: a missing box file should not cost a backbone pass.
    check_boxes(plugin, prepare_table(plugin, data_dir, config))
    data = with_boxes(load_image_data(plugin, data_dir, config, sample=sample))
    views = int(config["tta"]["views"])
    model = train_multi_output(data, run_dir, extra_callbacks=callbacks)
    model.save(run_dir / "head.keras")
    valid_views = predict_views(model, data, "valid", views)
    test_views = predict_views(model, data, "test", views) if len(data.test) else []
    valid_boxes = predict_boxes(model, data, "valid")
    metrics = {"feature_cache_hit": bool(data.labelled_features(0).hit), "bad_images": data.bad_images,
               "train_rows": int(len(data.train_rows)), "valid_rows": int(len(data.valid_rows)),
               **box_metrics(data, valid_boxes)}
    draw_validation_boxes(data, valid_boxes, valid_views[0], run_dir / "boxes.png")
    metrics.update(finish(plugin, data, run_dir, valid_views, test_views, data_dir=data_dir))
    if config["boxes"]["crop_classify"]:
        from podium.vision.stages.crop_classify import crop_and_classify

        metrics.update(crop_and_classify(data, model, run_dir, views=views, data_dir=data_dir,
                                         single_stage=metrics))
    histories = sorted(Path(run_dir).glob("history_*.csv"), key=lambda p: p.stat().st_mtime)
    plot_learning_curve(histories, run_dir / "learning_curve.png")
    return metrics
