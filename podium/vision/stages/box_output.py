"""Multi-output heads: the class softmax and the largest bounding box, trained jointly on cached features.

Switched on by `boxes.loss_weight > 0` for a plugin whose table has box columns (see `podium.core.annotations`).
The box output is a linear dense layer beside the classifier, on the same penultimate tensor,
regressing (x0, y0, x1, y1) as fractions of the input; its mean squared error is scaled by
`boxes.loss_weight` and added to the class cross-entropy. (The course regressed pixels with a
weight of 0.001; in pixels squared a weight of 1 swamped the classifier.) The dense
(flattening) head keeps where things are in the feature map; the gap head averages it away, so
boxes are learnt better with `head.kind=dense`. The fcn head has no dense layer and takes no box.

Box-aware augmentation happens where the features are made: an augmented feature pass moves each
row's box with its image and the cache keeps the moved boxes beside the features, so every pass
trains on targets that match what the backbone saw (the plain pass keeps the boxes as they are).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from podium.core.stage import RunState, Stage, register_stage
from podium.core.table import prepare_table
from podium.errors import PodiumError
from podium.files import atomic_write_text
from podium.log import logger
from podium.vision import boxes as box_utils
from podium.vision.data import BoxData, with_boxes
from podium.vision.heads import SCORE_HEADS

PNG_EXAMPLES = 12


@register_stage
class BoxTargets(Stage):
    """Give every labelled row its largest box as a second target, so the head learns class and box."""

    name = "boxes"
    order = 10
    reads = ("boxes", "head.kind")
    conflicts = {"finetune": "fine-tuning trains a single class output from images",
                 "pseudo_label": "test rows have no boxes to pseudo-label"}

    @classmethod
    def enabled(cls, config: dict) -> bool:
        return float(config["boxes"]["loss_weight"]) > 0

    @classmethod
    def check(cls, plugin, config: dict, data_dir=None) -> None:
        kind = config["head"]["kind"]
        if kind in SCORE_HEADS:
            raise PodiumError(f"boxes.loss_weight: head.kind={kind} ends in class maps with no dense layer to add a "
                              "box output to; use head.kind=gap or dense")
        # Before any feature is computed: a missing box file should not cost a backbone pass.
        if data_dir is not None and not box_utils.has_boxes(prepare_table(plugin, data_dir, config)):
            raise PodiumError(f"boxes.loss_weight > 0 but {plugin.name}'s table has no bounding boxes "
                              f"(columns {', '.join(box_utils.BOX_COLUMNS)}); for Fisheries, put the "
                              "*_labels.json box files in the data folder")

    def run(self, state: RunState) -> None:
        if state.config["head"]["kind"] == "gap" and len(state.data.feature_shape) == 3:
            logger.info("note: the gap head averages away where things are; boxes are learnt better with head.kind=dense")
        state.data = with_boxes(state.data)


@register_stage
class BoxReport(Stage):
    """Validation IoU of the predicted boxes and a PNG of true and predicted boxes (`boxes.png`)."""

    name = "box_report"
    order = 25
    reads = ("boxes",)
    requires = ("boxes",)

    @classmethod
    def enabled(cls, config: dict) -> bool:
        return BoxTargets.enabled(config)

    def run(self, state: RunState) -> None:
        predicted = box_utils.from_fractions(state.learner.predict("valid", output="bbox"), state.data.spec.size)
        state.metrics.update(box_metrics(state.data, predicted))
        if getattr(state, "record", "full") != "metrics":
            write_box_ious(state.data, predicted, state.run_dir / "valid_boxes.csv")
        draw_validation_boxes(state.data, predicted, state.learner.predict("valid"), state.run_dir / "boxes.png")


def box_metrics(data: BoxData, predicted: np.ndarray) -> dict:
    """Validation IoU between predicted and true boxes, over validation images that have a box."""
    truth = data.boxes[data.valid_rows]
    present = np.isfinite(truth).all(axis=1)
    if not present.any():
        return {"val_box_rows": 0}
    overlap = box_utils.iou(truth[present], predicted[present])
    return {"val_box_rows": int(present.sum()), "val_box_iou": float(overlap.mean()),
            "val_box_iou_over_half": float((overlap > 0.5).mean())}


def write_box_ious(data: BoxData, predicted: np.ndarray, out: Path) -> Path:
    """`valid_boxes.csv`: each validation image's IoU of predicted and true box (empty where it has no box),
    so a report draws the distribution from the run's files."""
    truth = data.boxes[data.valid_rows]
    present = np.isfinite(truth).all(axis=1)
    overlap = np.full(len(truth), np.nan)
    if present.any():
        overlap[present] = box_utils.iou(truth[present], predicted[present])
    frame = pd.DataFrame({"id": data.labelled.iloc[data.valid_rows]["id"].to_numpy(), "iou": overlap})
    atomic_write_text(out, frame.to_csv(index=False, float_format="%.4f"))
    return out


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
