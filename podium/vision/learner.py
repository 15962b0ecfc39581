"""The image learner: one model, one way to fit it, one way to predict with it, TTA as a method.

A learner starts as a head on cached features (fast: the backbone never runs while it trains) and
becomes a whole network over images when fine-tuned (`unfreeze`). Either way `fit` goes through the
one training loop (`training.fit`) and `predict` through one prediction path: a PyDataset of the
split's rows for one view (view 0 is the plain image, view k > 0 the k-th seeded augmentation) and
`model.predict`. Runs, cv folds, tuning trials, augmentation tuning and `podium predict` all use it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from podium.errors import PodiumError
from podium.log import logger
from podium.vision.batches import FeatureBatches
from podium.vision.data import BoxData, ImageData, augmented_passes

__all__ = ["Learner"]


PREDICT_BATCH = 256


class Learner:
    """A Keras model with the data it trains and predicts on."""

    def __init__(self, data: ImageData, model, *, on_images: bool = False):
        self.data = data
        self.model = model
        self.on_images = on_images  # True: the model takes images (fine-tuned); False: cached features

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def head(cls, data: ImageData) -> "Learner":
        """A fresh head of `head.kind` on the cached features (with a box output when `data` has boxes)."""
        from podium.vision.boxes import with_box_output
        from podium.vision.heads import build_head

        config = data.config
        model = build_head(data.feature_shape, len(data.plugin.classes), config["head"], metadata_dim=data.metadata_dim,
                           weight_decay=float(config["train"]["weight_decay"]))
        if isinstance(data, BoxData):
            model = with_box_output(model, size=data.spec.size, mean_box=data.mean_train_box())
        return cls(data, model)

    @classmethod
    def load(cls, data: ImageData, path: Path) -> "Learner":
        import keras

        path = Path(path)
        try:
            model = keras.saving.load_model(path, compile=False)
        except (OSError, ValueError) as exc:
            raise PodiumError(f"cannot load the model {path}: {str(exc).splitlines()[0]}") from None
        return cls(data, model, on_images=_takes_images(model))

    def save(self, path: Path) -> Path:
        self.model.save(Path(path))
        return Path(path)

    def unfreeze(self) -> "Learner":
        """The backbone with this head on top, trainable from `finetune.from_layer` (default: its last block);
        BatchNorm layers stay frozen (inference mode), as Keras advises for fine-tuning."""
        import keras

        if self.on_images:
            return self
        spec = self.data.spec
        backbone = spec.build()
        first = spec.finetune_from(backbone, self.data.config["finetune"]["from_layer"])
        backbone.trainable = True
        unfrozen = False
        for layer in backbone.layers:
            unfrozen = unfrozen or layer.name == first
            layer.trainable = unfrozen and not isinstance(layer, keras.layers.BatchNormalization)
        inputs = keras.Input(shape=(*spec.size, 3), name="image")
        model = keras.Model(inputs, self.model(backbone(inputs, training=False)), name="finetuned")
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        logger.info("fine-tuning from layer %s: %s trainable parameters", first, f"{trainable:,}")
        return Learner(self.data, model, on_images=True)

    @property
    def has_boxes(self) -> bool:
        return isinstance(self.model.output, dict) and "bbox" in self.model.output

    # -- data -----------------------------------------------------------------------------------
    def dataset(self, split: str, *, view: int = 0, targets: bool = False, shuffle: bool = False,
                batch_size: int | None = None, seed: int | None = None):
        """A PyDataset over `split` ("train", "valid" or "test") as view `view` sees it."""
        data, config = self.data, self.data.config
        seed = int(config["seed"]) if seed is None else seed
        if not self.on_images:
            return FeatureBatches([data.source(split, view, with_targets=targets)],
                                  batch_size=batch_size or PREDICT_BATCH, shuffle=shuffle, seed=seed)
        from podium.vision.augment import build_augment
        from podium.vision.images import ImageDataset

        if split == "test":
            paths, labels = data.test["path"].tolist(), None
        else:
            rows = data.train_rows if split == "train" else data.valid_rows
            paths, labels = data.labelled["path"].to_numpy()[rows].tolist(), data.y[rows]
        augment = build_augment(config["augment"]["transforms"], seed=seed + view) if view else None
        return ImageDataset(paths, size=data.spec.size, preprocess=data.spec.preprocess,
                            labels=labels if targets else None, num_classes=len(data.plugin.classes),
                            augment=augment, batch_size=batch_size or int(config["finetune"]["batch_size"]),
                            shuffle=shuffle, seed=seed, skip_bad_images=bool(config["data"]["skip_bad_images"]),
                            workers=int(config["image"]["workers"]))

    def train_batches(self, *, extra_sources=()):
        """Shuffled training batches: the plain pass and every augmented pass (features), or augmented
        images drawn afresh every epoch (after fine-tuning)."""
        data, config = self.data, self.data.config
        if self.on_images:
            return self.dataset("train", view=1, targets=True, shuffle=True)
        sources = [data.source("train", p) for p in range(augmented_passes(config) + 1)] + list(extra_sources)
        return FeatureBatches(sources, batch_size=int(config["train"]["batch_size"]), shuffle=True,
                              seed=int(config["seed"]))

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, train_data, *, run_dir: Path, name: str, valid_data=None, epochs: int | None = None,
            lr: float | None = None, callbacks=(), verbose="auto") -> dict:
        """Train on `train_data` through the one training loop; the best epoch's weights are kept."""
        import keras

        from podium.vision.training import fit

        config = self.data.config
        valid_data = valid_data if valid_data is not None else self.dataset("valid", targets=True)
        compile_args = {}
        if self.has_boxes:
            compile_args = {
                "loss": {"class": keras.losses.CategoricalCrossentropy(
                            label_smoothing=config["train"]["label_smoothing"]),
                         "bbox": keras.losses.MeanSquaredError()},
                "loss_weights": {"class": 1.0, "bbox": float(config["boxes"]["loss_weight"])},
                "metrics": {"class": ["accuracy"]}}
        return fit(self.model, train_data, valid_data, train_config=config["train"], run_dir=run_dir, name=name,
                   epochs=epochs, lr=lr, extra_callbacks=callbacks, verbose=verbose, **compile_args)

    @classmethod
    def train_head(cls, data: ImageData, run_dir: Path, *, name: str = "head", batches=None, callbacks=(),
                   verbose="auto") -> "Learner":
        """A fresh head trained on the training rows (plain + augmented passes, or `batches`)."""
        import keras

        config = data.config
        batches = batches if batches is not None else cls(data, None).train_batches()
        # Seeded after the passes exist: computing a missing pass builds the backbone, which draws random numbers.
        keras.utils.set_random_seed(int(config["seed"]))
        learner = cls.head(data)
        logger.info("training %s: %s head%s on %s parameters, %d training rows x %d passes", name,
                    config["head"]["kind"], " + box output" if learner.has_boxes else "",
                    f"{learner.model.count_params():,}", len(data.train_rows), augmented_passes(config) + 1)
        learner.fit(batches, run_dir=run_dir, name=name, callbacks=callbacks, verbose=verbose)
        return learner

    # -- predicting -----------------------------------------------------------------------------
    def predict(self, split: str, *, view: int = 0, output: str = "class") -> np.ndarray:
        """Predictions of `output` ("class" probabilities or "bbox") for every row of `split`, in row order."""
        rows = len(self.data.test) if split == "test" else len(
            self.data.train_rows if split == "train" else self.data.valid_rows)
        if rows == 0:
            return np.zeros((0, len(self.data.plugin.classes)), dtype=np.float32)
        outputs = self.model.predict(self.dataset(split, view=view), verbose=0)
        if isinstance(outputs, dict):
            return np.asarray(outputs[output])
        if output != "class":
            raise PodiumError(f"this model has no {output!r} output")
        return np.asarray(outputs)

    def tta(self, split: str, views: int) -> list[np.ndarray]:
        """Test-time augmentation: the class predictions of the plain view and of `views` augmented views."""
        return [self.predict(split, view=view) for view in range(int(views) + 1)]


def _takes_images(model) -> bool:
    # A fine-tuned model's first input is the image (named "image"); a head's is "features".
    return model.inputs[0].name.split(":")[0].startswith("image")
