"""The image-classification pipeline: table -> cached features -> head -> (fine-tune) -> TTA -> submission."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.vision.backbones import BackboneSpec
from podium.vision.cache import CachedFeatures, FeatureCache
from podium.vision.batches import FeatureBatches, RowSource, predict_rows
from podium.vision.metadata import fit_metadata
from podium.core.table import prepare_table


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
            self.labelled_passes[pass_index] = self._features(self.labelled, pass_index, "train+valid")
        return self.labelled_passes[pass_index]

    def test_features(self, pass_index: int) -> CachedFeatures:
        if pass_index not in self.test_passes:
            self.test_passes[pass_index] = self._features(self.test, pass_index, "test")
        return self.test_passes[pass_index]

    def _features(self, rows: pd.DataFrame, pass_index: int, label: str) -> CachedFeatures:
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
        cache=FeatureCache(Path(config["paths"]["cache"]) / plugin.name),
        labelled=labelled, test=test, y=plugin.label_indices(labelled["label"]),
        train_rows=np.flatnonzero((labelled["split"] == "train").to_numpy()),
        valid_rows=np.flatnonzero((labelled["split"] == "valid").to_numpy()),
    )
    if len(data.train_rows) == 0 or len(data.valid_rows) == 0:
        raise PodiumError(f"{plugin.name}: need both training and validation rows "
                          f"(got {len(data.train_rows)} and {len(data.valid_rows)})"
                          + ("; raise data.sample_train / data.sample_valid" if sample else ""))
    bad = data.labelled_features(0).bad_rows
    if len(bad):
        # Only reachable with data.skip_bad_images: drop unreadable labelled images, keep count.
        data.train_rows = np.setdiff1d(data.train_rows, bad)
        data.valid_rows = np.setdiff1d(data.valid_rows, bad)
        print(f"skipped {len(bad)} unreadable training/validation images")
    data.metadata = fit_metadata(plugin, config, labelled.iloc[data.train_rows])
    if len(test):
        test_bad = data.test_features(0).bad_rows
        if len(test_bad):
            print(f"{len(test_bad)} unreadable test images are predicted from a blank image")
        data.bad_images = len(bad) + len(test_bad)
    return data


def augmented_passes(config: dict) -> int:
    return int(config["augment"]["passes"])


def train_head(data: ImageData, run_dir: Path, *, extra_sources=(), name: str = "head", extra_callbacks=(),
               batches=None):
    """Train a fresh head on the train rows (plain + augmented passes, plus any extra sources)."""
    import keras

    from podium.vision.heads import build_head
    from podium.vision.training import fit

    config = data.config
    sources = [data.source("train", p) for p in range(augmented_passes(config) + 1)] + list(extra_sources)
    train_data = batches or FeatureBatches(sources, batch_size=int(config["train"]["batch_size"]), shuffle=True,
                                           seed=int(config["seed"]))
    valid_data = FeatureBatches([data.source("valid")], batch_size=256)
    # Seeded after the passes exist: computing a missing pass builds the backbone, which draws random numbers.
    keras.utils.set_random_seed(int(config["seed"]))
    model = build_head(data.feature_shape, len(data.plugin.classes), config["head"], metadata_dim=data.metadata_dim,
                       weight_decay=float(config["train"]["weight_decay"]))
    print(f"training {name}: {config['head']['kind']} head on {model.count_params():,} parameters, "
          f"{len(data.train_rows)} training rows x {augmented_passes(config) + 1} passes")
    fit(model, train_data, valid_data, train_config=config["train"], run_dir=run_dir, name=name,
        extra_callbacks=extra_callbacks)
    return model


def predict_views(model, data: ImageData, split: str, views: int) -> list[np.ndarray]:
    """Predictions for `split` on the plain features and on `views` augmented passes (TTA)."""
    return [class_output(predict_rows(model, data.source(split, p, with_targets=False))) for p in range(views + 1)]


def class_output(outputs):
    # A multi-output model (class + box) predicts a dict; the class probabilities are what is scored.
    return outputs["class"] if isinstance(outputs, dict) else outputs


def write_predictions(plugin, run_dir: Path, name: str, ids, predictions, labels=None) -> Path:
    from podium.files import atomic_write_text, unused_path

    frame = pd.DataFrame(np.asarray(predictions), columns=plugin.prediction_columns())
    if labels is not None:
        frame.insert(0, "label", list(labels))
    frame.insert(0, "id", list(ids))
    return atomic_write_text(unused_path(Path(run_dir) / name), frame.to_csv(index=False, float_format="%.6f"),
                             overwrite=False)


def finish(plugin, data: ImageData, run_dir: Path, valid_views, test_views, *, data_dir: Path,
           suffix: str = "") -> dict:
    """Metrics with and without TTA, clipping tuned on validation, prediction files and the submission."""
    from podium.files import unused_path
    from podium.evaluation.clipping import apply_clip, clip_for_run
    from podium.core.writer import write_submission

    config = data.config
    valid_labels = data.labelled["label"].to_numpy()[data.valid_rows]
    valid_ids = data.labelled["id"].to_numpy()[data.valid_rows]
    plain = plugin.evaluate(valid_labels, valid_views[0])
    metrics = dict(plain)
    valid_pred, test_pred = np.mean(valid_views, axis=0), np.mean(test_views, axis=0) if test_views else None
    if len(valid_views) > 1:
        with_tta = plugin.evaluate(valid_labels, valid_pred)
        metrics.update({"tta_views": len(valid_views) - 1, "val_log_loss_no_tta": plain["val_log_loss"],
                        "val_accuracy_no_tta": plain["val_accuracy"], **with_tta})
    clip = clip_for_run(config["submission"]["clip"], plugin.label_indices(valid_labels), valid_pred)
    metrics.update({"val_log_loss_clipped": clip["log_loss_after"], "clip": [clip["lo"], clip["hi"]]})
    write_predictions(plugin, run_dir, f"valid_predictions{suffix}.csv", valid_ids, valid_pred, valid_labels)
    if test_pred is not None and len(data.test):
        write_predictions(plugin, run_dir, f"test_predictions{suffix}.csv", data.test["id"], test_pred)
        frame = plugin.submission_frame(data.test["id"].tolist(), apply_clip(test_pred, clip["lo"], clip["hi"]))
        path = write_submission(plugin, frame, unused_path(Path(run_dir) / f"submission{suffix}.csv"),
                                data_dir=data_dir)
        metrics["submission"] = str(path)
    return metrics


def check(plugin, config: dict) -> None:
    """Refusals of the stages' settings, before any run directory or feature exists."""


def run(plugin, data_dir: Path, config: dict, run_dir: Path, *, sample: bool,
                             callbacks=()) -> dict:
    from podium.vision.training import plot_learning_curve

    if float(config["boxes"]["loss_weight"]) > 0:
        from podium.vision.stages.box_output import run_multi_output

        return run_multi_output(plugin, data_dir, config, run_dir, sample=sample, callbacks=callbacks)
    data = load_image_data(plugin, data_dir, config, sample=sample)
    views = int(config["tta"]["views"])
    model = train_head(data, run_dir, extra_callbacks=callbacks)
    model.save(run_dir / "head.keras")
    valid_views = predict_views(model, data, "valid", views)
    test_views = predict_views(model, data, "test", views) if len(data.test) else []
    metrics = {"feature_cache_hit": bool(data.labelled_features(0).hit), "bad_images": data.bad_images,
               "train_rows": int(len(data.train_rows)), "valid_rows": int(len(data.valid_rows))}
    if config["pseudo"]["enabled"]:
        from podium.vision.stages.pseudo_label import pseudo_label

        model, valid_views, test_views, pseudo_metrics = pseudo_label(data, model, run_dir, valid_views, test_views,
                                                                      views=views)
        metrics.update(pseudo_metrics)
    if config["finetune"]["enabled"]:
        from podium.vision.stages.finetune import finetune

        metrics["val_log_loss_before_finetune"] = plugin.evaluate(
            data.labelled["label"].to_numpy()[data.valid_rows], np.mean(valid_views, axis=0))["val_log_loss"]
        valid_views, test_views = finetune(data, model, run_dir, views=views)
    metrics.update(finish(plugin, data, run_dir, valid_views, test_views, data_dir=data_dir))
    histories = sorted(Path(run_dir).glob("history_*.csv"), key=lambda p: p.stat().st_mtime)
    plot_learning_curve(histories, run_dir / "learning_curve.png")
    return metrics


def predict_again(run_dir: Path, *, tta: int | None = None, pairs=None, out=None) -> dict:
    """Re-predict a finished run, e.g. with more TTA views, into new files beside the old ones."""
    import keras

    from podium.competitions import get
    from podium.files import read_json
    from podium.core.rundir import load_run

    if pairs is not None:
        raise PodiumError("--pairs is for rating competitions; image runs predict their test folder")
    run_dir = Path(run_dir)
    config, _ = load_run(run_dir)
    record = read_json(run_dir / "run.json")
    plugin = get(record["competition"])
    if tta is not None:
        config["tta"]["views"] = int(tta)
    views = int(config["tta"]["views"])
    data = load_image_data(plugin, Path(record["data_dir"]), config, sample=bool(record["sample"]))
    if (run_dir / "model.keras").is_file():
        from podium.vision.stages.finetune import predict_images

        model = keras.saving.load_model(run_dir / "model.keras", compile=False)
        valid_views = predict_images(model, data, "valid", views)
        test_views = predict_images(model, data, "test", views)
    else:
        model = keras.saving.load_model(run_dir / "head.keras", compile=False)
        valid_views = predict_views(model, data, "valid", views)
        test_views = predict_views(model, data, "test", views) if len(data.test) else []
    metrics = finish(plugin, data, run_dir, valid_views, test_views, data_dir=Path(record["data_dir"]),
                     suffix=f"_tta{views}")
    if out is not None and metrics.get("submission"):
        from podium.files import atomic_write_bytes

        atomic_write_bytes(Path(out), Path(metrics["submission"]).read_bytes(), overwrite=False)
        metrics["submission"] = str(out)
    from podium.files import unused_path, write_json

    write_json(unused_path(run_dir / f"predict_tta{views}.json"), metrics)
    return metrics
