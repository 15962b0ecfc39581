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
from podium.vision.batches import FeatureBatches, as_input, model_inputs
from podium.vision.cache import pool_moments
from podium.vision.heads import copy_weights
from podium.vision.training import fit, slice_rows, steps_per_epoch
from podium.vision.data import BoxData, ImageData, augmented_passes

__all__ = ["Learner"]


PREDICT_BATCH = 256
PREDICT_ROWS = 8192  # pooled rows per eager call
IN_MEMORY_BYTES = 512 * 2**20  # feature rows up to this size train from memory, not from batch-by-batch gathers


class Learner:
    """A Keras model with the data it trains and predicts on."""

    def __init__(self, data: ImageData, model, *, on_images: bool = False):
        self.data = data
        self.model = model
        self.on_images = on_images  # True: the model takes images (fine-tuned); False: cached features
        self._twin = None  # pooled twin of a gap head (built on first use), False when it has none
        self._predictions, self._predicted_with = {}, None  # (split, view, output) -> predictions; their weights

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
        from podium.files import atomic_save

        return atomic_save(Path(path), self.model.save)  # a reader never sees half a model

    def unfreeze(self, from_layer: str | None = None) -> "Learner":
        """The backbone with this head on top, trainable from `from_layer` (default `finetune.from_layer`:
        "" the last block, "all" the whole network); BatchNorm layers stay frozen (inference mode), as
        Keras advises for fine-tuning. Discriminative rates and gradual unfreezing: `podium.vision.finetuning`."""
        import keras

        from podium.vision.finetuning import set_trainable, trainable_groups

        if self.on_images:
            return self
        spec = self.data.spec
        backbone = spec.build()
        setting = self.data.config["finetune"]["from_layer"] if from_layer is None else from_layer
        first = "all" if setting == "all" else spec.finetune_from(backbone, setting)
        groups = trainable_groups(backbone, first)
        set_trainable(backbone, groups, len(groups))
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
    def fit(self, train_data, *, run_dir: Path | None, name: str, valid_data=None, epochs: int | None = None,
            lr: float | None = None, callbacks=(), verbose="auto", save: bool = True) -> dict:
        """Train on `train_data` through the one training loop; the best epoch's weights are kept.

        A head given feature batches (`FeatureBatches`) trains on their rows held in memory, a whole epoch per
        call of the compiled train function: a gap head on a feature map as its pooled twin on (N, 2C) pooled
        moments (`heads.PooledInputNorm`; the same function and weights, copied back into `model`), another head
        on the rows themselves when they fit in `IN_MEMORY_BYTES`. `run_dir=None` writes no file; `save=False` writes
        the history only (heads that may be thrown away, as fold heads before their step is judged).
        """
        import keras

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
        model, train, valid, options = self.model, train_data, valid_data, {}
        if not self.on_images and isinstance(train_data, FeatureBatches) and isinstance(valid_data, FeatureBatches):
            twin = None if self.has_boxes else self._pooled_twin()
            train_rows = rows_in_memory(train_data, pooled=twin is not None, data=self.data)
            # A fold head is monitored on its own training rows: one copy in memory serves both.
            in_memory = train_rows, (train_rows if same_rows(train_data, valid_data) else
                                     rows_in_memory(valid_data, pooled=twin is not None, data=self.data))
            if None not in in_memory:
                model = twin or self.model
                (train, batch_size), (valid, _) = in_memory
                options = {"batch_size": batch_size}
            if not isinstance(train, tuple) or not train_data.shuffle:
                train, valid, model, options = train_data, valid_data, self.model, {}
        if not self.on_images:
            options["steps_per_execution"] = steps_per_epoch(train, options.get("batch_size"))
        history = fit(model, train, valid, train_config=config["train"], run_dir=run_dir, name=name, epochs=epochs,
                      lr=lr, extra_callbacks=callbacks, verbose=verbose, checkpoint=save and model is self.model,
                      seed=int(config["seed"]), **options, **compile_args)
        if model is not self.model:
            copy_weights(model, self.model)  # the twin's weights are the head's
            if run_dir is not None and save:
                self.save(Path(run_dir) / f"{name}.keras")
        return history

    @classmethod
    def train_head(cls, data: ImageData, run_dir: Path | None, *, name: str = "head", batches=None, callbacks=(),
                   verbose="auto") -> "Learner":
        """A fresh head trained on the training rows (plain + augmented passes, or `batches`); its history and
        `<name>.keras` go to `run_dir` (`None`: no file, e.g. a tuning trial or a fold)."""
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

    def _pooled_twin(self):
        """The head's pooled twin (gap head on a feature map), holding the head's current weights; else None."""
        from podium.vision.heads import build_head, poolable

        data = self.data
        head_config = data.config["head"]
        if self.on_images or self.model is None or not poolable(data.feature_shape, head_config) \
                or self.model.name != "gap_head":
            return None
        if self._twin is None:
            try:
                twin = build_head(data.feature_shape, len(data.plugin.classes), head_config,
                                  metadata_dim=data.metadata_dim, weight_decay=float(data.config["train"]["weight_decay"]),
                                  pooled=True)
                self._twin = copy_weights(self.model, twin)
            except (ValueError, KeyError):  # a loaded head whose layers differ from the config's: none
                self._twin = False
                return None
            return self._twin
        return None if self._twin is False else copy_weights(self.model, self._twin)

    # -- predicting -----------------------------------------------------------------------------
    def predict(self, split: str, *, view: int = 0, output: str = "class") -> np.ndarray:
        """Predictions of `output` ("class" probabilities or "bbox") for every row of `split`, in row order.

        Kept until the weights change: a run's stages (neighbours, calibration, pseudo-labels, the submission)
        ask for the same validation views, and a tuning trial spent a tenth of its time predicting them again."""
        fingerprint = self._weights_fingerprint()
        if self._predicted_with != fingerprint:
            self._predictions, self._predicted_with = {}, fingerprint
        key = (split, int(view), output)
        if key not in self._predictions:
            self._predictions[key] = self._predict(split, view=int(view), output=output)
        return self._predictions[key].copy()

    def _weights_fingerprint(self) -> str:
        import hashlib

        digest = hashlib.blake2b(digest_size=16)
        for weights in self.model.get_weights():
            digest.update(np.ascontiguousarray(weights).view(np.uint8))
        return digest.hexdigest()

    def _predict(self, split: str, *, view: int, output: str) -> np.ndarray:
        rows = len(self.data.test) if split == "test" else len(
            self.data.train_rows if split == "train" else self.data.valid_rows)
        if rows == 0:
            return np.zeros((0, len(self.data.plugin.classes)), dtype=np.float32)
        if self.on_images:
            outputs = self.model.predict(self.dataset(split, view=view), verbose=0)
        else:
            # A head runs eagerly batch by batch (no predict function to trace per model); a gap head on
            # pooled moments held in memory.
            twin = None if self.has_boxes else self._pooled_twin()
            batches = self.dataset(split, view=view)
            inputs = rows_in_memory(batches, pooled=True, data=self.data) if twin is not None else None
            if inputs is not None:
                x = inputs[0][0]
                outputs = np.concatenate([np.asarray(twin(slice_rows(x, start, start + PREDICT_ROWS), training=False))
                                          for start in range(0, rows, PREDICT_ROWS)])
            else:
                outputs = _concatenate([self.model(batches[i][0], training=False) for i in range(len(batches))])
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


def _pooled_rows(array, rows: np.ndarray, data) -> np.ndarray:
    """Pooled moments (`CachedFeatures.pooled`) of `rows` of a cached feature map, or pooled now."""
    if data is not None:
        for cached in [*data.labelled_passes.values(), *data.test_passes.values()]:
            if cached.array is array:
                return cached.pooled()[rows]
    order = np.argsort(rows, kind="stable")
    pooled = np.empty((len(rows), 2 * array.shape[-1]), dtype=np.float32)
    for start in range(0, len(rows), 256):
        take = order[start:start + 256]
        pooled[take] = pool_moments(array[rows[take]])
    return pooled


def rows_in_memory(batches: FeatureBatches, *, pooled: bool, data=None):
    """((x, y), batch size) of every row of `batches` in memory, in its row order (sources one after the other);
    `pooled`: pooled moments for the features (halved to the means when the head has no input BatchNorm).
    None when the rows would take more than `IN_MEMORY_BYTES`."""
    xs, ys = [], []
    if not pooled:
        size = sum(len(s) * sum(int(np.prod(a.shape[1:])) * 4 for a in s.inputs.values()) for s in batches.sources)
        if size > IN_MEMORY_BYTES:
            return None
    width = None
    if pooled and data is not None and not data.config["head"]["input_bn"]:
        width = data.feature_shape[-1]
    for source in batches.sources:
        x = {}
        for name, array in source.inputs.items():
            if name == "features" and pooled:
                x[name] = _pooled_rows(array, source.rows, data)[:, :width]
            else:  # read in file order, put back in row order while still in the cache's dtype, then widened
                order = np.argsort(np.argsort(source.rows, kind="stable"), kind="stable")
                x[name] = as_input(array[np.sort(source.rows)][order])
        xs.append(x)
        ys.append(source.targets)
    if not xs:
        return None
    x = {name: _joined([part[name] for part in xs]) for name in xs[0]}
    y = None
    if ys[0] is not None:
        y = ({k: _joined([np.asarray(part[k]) for part in ys]) for k in ys[0]} if isinstance(ys[0], dict)
             else _joined([np.asarray(part) for part in ys]))
    return ((model_inputs(x), y) if y is not None else (model_inputs(x),)), batches.batch_size


def same_rows(first: FeatureBatches, second: FeatureBatches) -> bool:
    """Whether two batch sets read the same rows of the same sources (in any order)."""
    return len(first.sources) == len(second.sources) and all(
        a.name == b.name and a.inputs.keys() == b.inputs.keys() and np.array_equal(a.rows, b.rows)
        for a, b in zip(first.sources, second.sources))


def _joined(parts: list) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)  # one part: no copy of every row


def _concatenate(outputs):
    if outputs and isinstance(outputs[0], dict):
        return {k: np.concatenate([np.asarray(o[k]) for o in outputs]) for k in outputs[0]}
    return np.concatenate([np.asarray(o) for o in outputs])
