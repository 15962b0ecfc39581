"""The rows, labels and cached features an image model trains and predicts on.

`ImageData` holds the labelled and test rows with their split and reads the backbone's features of
each pass from the cache, computing a missing pass once; `BoxData` adds each labelled row's largest
box as a second target (box-aware augmented passes move the box with the image).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from podium.core.imagefiles import image_sizes
from podium.core.table import prepare_table
from podium.errors import PodiumError
from podium.log import logger
from podium.vision import boxes as box_utils
from podium.vision.backbones import BackboneSpec
from podium.vision.batches import RowSource
from podium.vision.cache import CachedFeatures, FeatureCache
from podium.vision.metadata import fit_metadata


@dataclass
class ImageData:
    """Everything a head trains and predicts on: the rows, their labels and their cached features."""

    plugin: object
    config: dict
    spec: BackboneSpec
    cache: FeatureCache
    labelled: pd.DataFrame  # train + valid rows, in cache order
    test: pd.DataFrame
    y: np.ndarray  # class index of each labelled row
    train_rows: np.ndarray  # positions in `labelled`
    valid_rows: np.ndarray
    labelled_passes: dict = field(default_factory=dict)  # pass -> CachedFeatures
    test_passes: dict = field(default_factory=dict)
    bad_images: int = 0
    metadata: object = None  # MetadataEncoder fitted on the train rows, when the model takes metadata

    def labelled_features(self, pass_index: int) -> CachedFeatures:
        if pass_index not in self.labelled_passes:
            self.labelled_passes[pass_index] = self.features(self.labelled, pass_index, "train+valid")
        return self.labelled_passes[pass_index]

    def test_features(self, pass_index: int) -> CachedFeatures:
        if pass_index not in self.test_passes:
            self.test_passes[pass_index] = self.features(self.test, pass_index, "test")
        return self.test_passes[pass_index]

    def features(self, rows: pd.DataFrame, pass_index: int, label: str) -> CachedFeatures:
        image, augment = self.config["image"], self.config["augment"]["transforms"]
        return self.cache.features(self.spec, rows["path"].tolist(), pass_index=pass_index,
                                   augment=augment if pass_index else None, batch_size=int(image["batch_size"]),
                                   skip_bad_images=bool(self.config["data"]["skip_bad_images"]), label=label)

    def inputs(self, features: CachedFeatures, rows: pd.DataFrame) -> dict:
        """Model inputs by name for `rows` (features; plugins with metadata add theirs)."""
        if self.metadata is None:
            return {"features": features.array}
        return {"features": features.array, "metadata": self.metadata.transform(rows)}

    def source(self, split: str, pass_index: int = 0, *, with_targets: bool = True) -> RowSource:
        if split == "test":
            features = self.test_features(pass_index)
            return RowSource(self.inputs(features, self.test), np.arange(len(self.test)), name=f"test/p{pass_index}")
        rows = self.train_rows if split == "train" else self.valid_rows
        features = self.labelled_features(pass_index)
        targets = self.one_hot(self.y[rows]) if with_targets else None
        return RowSource(self.inputs(features, self.labelled), rows, targets, name=f"{split}/p{pass_index}")

    def one_hot(self, indices: np.ndarray) -> np.ndarray:
        return np.eye(len(self.plugin.classes), dtype=np.float32)[indices]

    @property
    def valid_labels(self) -> np.ndarray:
        return self.labelled["label"].to_numpy()[self.valid_rows]

    @property
    def valid_ids(self) -> np.ndarray:
        return self.labelled["id"].to_numpy()[self.valid_rows]

    @property
    def feature_shape(self) -> tuple:
        return tuple(self.labelled_features(0).array.shape[1:])

    @property
    def metadata_dim(self) -> int:
        return self.metadata.dim if self.metadata is not None else 0


def load_image_data(plugin, data_dir: Path, config: dict, *, sample: bool, with_test: bool = True) -> ImageData:
    """The table, the split, and the plain (pass 0) features of every labelled and test row.

    `with_test=False` leaves the test images out (and never computes their features), e.g. to tune on the sample.
    """
    table = prepare_table(plugin, data_dir, config)
    labelled = table[table["split"].isin(["train", "valid"])]
    if sample:
        labelled = labelled[labelled["sample"]]
    labelled = labelled.reset_index(drop=True)
    test = table[(table["split"] == "test") & with_test].reset_index(drop=True)
    data = ImageData(
        plugin=plugin, config=config, spec=BackboneSpec.from_config(config),
        cache=FeatureCache(Path(config["paths"]["cache"]) / plugin.name, storage=str(config["image"]["cache_dtype"])),
        labelled=labelled, test=test, y=plugin.label_indices(labelled["label"]),
        train_rows=np.flatnonzero((labelled["split"] == "train").to_numpy()),
        valid_rows=np.flatnonzero((labelled["split"] == "valid").to_numpy()),
    )
    if len(data.train_rows) == 0 or len(data.valid_rows) == 0:
        raise PodiumError(f"{plugin.name}: need both training and validation rows "
                          f"(got {len(data.train_rows)} and {len(data.valid_rows)})"
                          + ("; raise data.sample_train / data.sample_valid" if sample else ""))
    _refuse_classes_without_training_rows(plugin, labelled.iloc[data.train_rows], sample=sample)
    check_before_precompute(data, config, labelled, test)
    bad = data.labelled_features(0).bad_rows
    if len(bad):
        # Only reachable with data.skip_bad_images: drop unreadable labelled images, keep count.
        data.train_rows = np.setdiff1d(data.train_rows, bad)
        data.valid_rows = np.setdiff1d(data.valid_rows, bad)
        logger.info("skipped %d unreadable training/validation images", len(bad))
    data.metadata = fit_metadata(plugin, config, labelled.iloc[data.train_rows])
    if len(test):
        test_bad = data.test_features(0).bad_rows
        if len(test_bad):
            logger.info("%d unreadable test images are predicted from a blank image", len(test_bad))
        data.bad_images = len(bad) + len(test_bad)
    return data


def check_before_precompute(data: ImageData, config: dict, labelled: pd.DataFrame, test: pd.DataFrame) -> None:
    """Before the first image of a precompute is read: the disk every pass of the run will cache (printed, refused
    in one line when short), and, unless `data.skip_bad_images`, every pending image's header (a file that cannot be
    read is one line naming it now, not after an hour of precompute; with the option such files are skipped and
    counted as the precompute meets them)."""
    views = int(config["tta"]["views"])
    transforms = config["augment"]["transforms"]
    entries = [(part["path"].tolist(), p, transforms if p else None)
               for part, passes in ((labelled, max(augmented_passes(config), views)), (test, views))
               if len(part) for p in range(passes + 1)]
    pending = data.cache.pending(data.spec, entries)
    if not pending:
        return
    data.cache.ensure_space(data.spec, [entry[:3] for entry in pending],
                            what=f"{len(labelled):,} labelled + {len(test):,} test images")
    if not config["data"]["skip_bad_images"]:
        paths = list(dict.fromkeys(path for entry in pending for path in entry[0]))
        started = time.perf_counter()
        image_sizes(paths)  # BadImageError naming the first unreadable file
        logger.info("checked the headers of %d images in %.1f s", len(paths), time.perf_counter() - started)


def augmented_passes(config: dict) -> int:
    return int(config["augment"]["passes"])


@dataclass
class BoxData(ImageData):
    """ImageData whose labelled rows also have a box target (kept in network-input pixels, NaN: none; the
    model's targets are fractions of the input)."""

    boxes: np.ndarray | None = None  # one per labelled row

    def features(self, rows, pass_index: int, label: str):
        if rows is not self.labelled:
            return super().features(rows, pass_index, label)
        image, augment = self.config["image"], self.config["augment"]["transforms"]
        return self.cache.features(self.spec, rows["path"].tolist(), pass_index=pass_index,
                                   augment=augment if pass_index else None, batch_size=int(image["batch_size"]),
                                   skip_bad_images=bool(self.config["data"]["skip_bad_images"]), label=label,
                                   boxes=self.boxes)

    def mean_train_box(self) -> np.ndarray:
        """The average box target (network-input pixels) of the training rows."""
        return box_utils.targets(self.boxes[self.train_rows]).mean(axis=0)

    def moved_boxes(self, pass_index: int) -> np.ndarray:
        """Each labelled row's box as pass `pass_index` shows it (the plain pass: as given)."""
        moved = self.labelled_features(pass_index).boxes
        return self.boxes if moved is None else moved

    def source(self, split: str, pass_index: int = 0, *, with_targets: bool = True):
        source = super().source(split, pass_index, with_targets=with_targets)
        if split != "test" and with_targets:
            # The model learns boxes as fractions of the input: a loss on the class loss's scale.
            source.targets = {"class": source.targets, "bbox": box_utils.targets(
                box_utils.to_fractions(self.moved_boxes(pass_index)[source.rows], self.spec.size))}
        return source


def with_boxes(data: ImageData) -> BoxData:
    """`data` with the box targets of its labelled rows; one clear error when the table has none."""
    if not box_utils.has_boxes(data.labelled):
        raise PodiumError(f"{data.plugin.name}: no labelled row of this run has a bounding box")
    values = {f.name: getattr(data, f.name) for f in fields(ImageData)}
    # Pass 0 features of the plain ImageData are reused; augmented passes are made box-aware.
    values["labelled_passes"] = {0: data.labelled_features(0)}
    return BoxData(**values, boxes=box_utils.input_boxes(data.labelled, data.spec.size))


def plain_data(data: ImageData, **changes) -> ImageData:
    """A plain ImageData (no box targets) from `data`, with `changes`."""
    values = {f.name: getattr(data, f.name) for f in fields(ImageData)}
    return ImageData(**{**values, **changes})




def _refuse_classes_without_training_rows(plugin, train, *, sample: bool) -> None:
    """A class no training row shows cannot be learnt: its validation rows would be scored as impossible and
    its test rows never predicted (with every dog left out, Dogs vs. Cats went through at accuracy 1.0)."""
    counts = train["label"].value_counts()
    missing = [label for label in plugin.classes if counts.get(label, 0) == 0]
    if missing:
        where = "the sample set's training rows" if sample else "the training rows"
        raise PodiumError(f"{plugin.name}: class {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                          else "") + f" has no row in {where} ({len(train)} rows of other classes): add its "
                          "images" + ("; or raise data.sample_train" if sample else ""))
