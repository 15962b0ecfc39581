"""Fine-tuning the fast.ai way: head first, then unfreeze, with discriminative learning rates.

- Head first: the head stage has already trained the head on cached features (the cheap equivalent
  of fast.ai's frozen epoch); fine-tuning starts from it.
- Layer groups: the backbone's blocks (`block1..block7` for EfficientNet/Lite0, `block1..block5`
  for VGG16, `conv1..conv5` for ResNet), then the head. `finetune.from_layer` names the first layer
  trained ("" the last block, "all" the whole network).
- Discriminative learning rates: the head trains at `finetune.lr`, the deepest trained block at
  lr / `finetune.lr_ratio`, the blocks between spread geometrically (fast.ai's `slice(lr/ratio, lr)`).
  Keras has one learning rate per optimizer, so `DiscriminativeAdam` scales Adam's step per variable.
- Gradual unfreezing (`finetune.unfreeze=gradual`): epoch 1 trains the head and the last block, each
  later epoch unfreezes one more block, down to `from_layer`; `all`: every chosen block from the start.
- Resumable per epoch: after each epoch the weights and the epoch reached are written to
  `<run>/finetune_checkpoint.weights.h5` and `finetune_progress.json`; a fine-tune started again in the
  same run folder continues from the next epoch.
BatchNorm layers stay frozen (inference mode), as Keras advises for fine-tuning.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import keras
import numpy as np

from podium.files import atomic_save, atomic_write_text
from podium.log import logger

__all__ = ["DiscriminativeAdam", "fine_tune", "layer_groups", "lr_multipliers", "set_trainable", "trainable_groups"]

_BLOCK = re.compile(r"^(block\d+|conv\d+|stage_?\d+|convnext_tiny_stage_\d+)")


@keras.saving.register_keras_serializable(package="podium")
class DiscriminativeAdam(keras.optimizers.Adam):
    """Adam whose learning rate is multiplied, per variable, by `multipliers[variable.path]` (default 1)."""

    def __init__(self, multipliers=None, **kwargs):
        super().__init__(**kwargs)
        self.multipliers = dict(multipliers or {})

    def build(self, variables):
        super().build(variables)
        self._scales = [float(self.multipliers.get(variable.path, 1.0)) for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        # The backend may hand over its own variable object: look the Keras variable up by index.
        scale = self._scales[self._get_variable_index(variable)]
        if scale != 1.0:
            learning_rate = keras.ops.cast(learning_rate, variable.dtype) * scale
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "multipliers": self.multipliers}


def layer_groups(backbone) -> list[list]:
    """The backbone's layers in groups: the stem (everything before the first block), then one group per block."""
    groups: list[list] = []
    keys: list[str] = []
    for layer in backbone.layers:
        match = _BLOCK.match(layer.name)
        # Layers outside any block (the input and stem; EfficientNet's top conv) join the group before them.
        key = match.group(1) if match else (keys[-1] if keys else "stem")
        if not keys or key != keys[-1]:
            groups.append([])
            keys.append(key)
        groups[-1].append(layer)
    return groups


def trainable_groups(backbone, from_layer: str) -> list[list]:
    """The groups from the one holding `from_layer` to the last ("all": every group)."""
    groups = layer_groups(backbone)
    if from_layer == "all":
        return groups
    for index, group in enumerate(groups):
        if any(layer.name == from_layer for layer in group):
            # A from_layer in the middle of a group trains that group from it on.
            first = [layer for layer in group[[layer.name for layer in group].index(from_layer):]]
            return [first] + groups[index + 1:]
    return groups[-1:]


def lr_multipliers(groups: list[list], ratio: float) -> list[float]:
    """One multiplier per backbone group (deepest trained first ... last block), geometric from 1/ratio towards 1;
    the head (not listed) trains at 1."""
    count = len(groups)
    return [float(ratio) ** (-(count - index) / count) for index in range(count)]


def set_trainable(backbone, groups: list[list], unfrozen: int) -> None:
    """Freeze the backbone except the last `unfrozen` of `groups`; BatchNorm stays frozen."""
    backbone.trainable = True
    for layer in backbone.layers:
        layer.trainable = False
    for group in groups[len(groups) - unfrozen:]:
        for layer in group:
            layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)


def fine_tune(learner, run_dir: Path, *, epochs: int, lr: float, ratio: float, unfreeze: str, from_layer: str,
              name: str = "finetune", valid_data=None) -> dict:
    """Fine-tune `learner` (a head on cached features) end to end from augmented images; return the
    learner on images and a report with seconds per epoch and the validation loss after each epoch."""
    from podium.vision.training import WarmupAnneal

    run_dir = Path(run_dir)
    data = learner.data
    config = data.config
    backbone = data.spec.build()
    first = "all" if from_layer == "all" else data.spec.finetune_from(backbone, from_layer)
    groups = trainable_groups(backbone, first)
    head = learner.model
    inputs = keras.Input(shape=(*data.spec.size, 3), name="image")
    model = keras.Model(inputs, head(backbone(inputs, training=False)), name="finetuned")
    tuned = type(learner)(data, model, on_images=True)
    train = tuned.dataset("train", view=1, targets=True, shuffle=True)
    valid_data = valid_data if valid_data is not None else tuned.dataset("valid", targets=True)
    multipliers = lr_multipliers(groups, ratio)
    per_variable = {}
    for group, scale in zip(groups, multipliers):
        for layer in group:
            for weight in layer.weights:
                per_variable[weight.path] = scale
    schedule = WarmupAnneal(lr, warmup_steps=len(train) // 2, total_steps=epochs * len(train),
                            warmup_start=float(config["train"]["warmup_start"]), anneal=config["train"]["anneal"])
    progress_path, weights_path = run_dir / f"{name}_progress.json", run_dir / f"{name}_checkpoint.weights.h5"
    start, report = 0, {"epochs": [], "groups": len(groups), "lr_multipliers": multipliers}
    if progress_path.is_file() and weights_path.is_file():
        saved = json.loads(progress_path.read_text())
        start, report = int(saved["next_epoch"]), saved["report"]
        logger.info("fine-tuning resumes at epoch %d of %d", start + 1, epochs)
    unfrozen_now = None
    for epoch in range(start, epochs):
        unfrozen = min(epoch + 1, len(groups)) if unfreeze == "gradual" else len(groups)
        if unfrozen != unfrozen_now:
            set_trainable(backbone, groups, unfrozen)
            optimizer = DiscriminativeAdam(multipliers=per_variable, learning_rate=schedule)
            model.compile(optimizer=optimizer, loss=keras.losses.CategoricalCrossentropy(
                label_smoothing=float(config["train"]["label_smoothing"])), metrics=["accuracy"])
            if epoch == start and weights_path.is_file() and start > 0:
                model.load_weights(weights_path)
            optimizer.iterations.assign(epoch * len(train))
            unfrozen_now = unfrozen
            trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
            logger.info("fine-tuning epoch %d: head + last %d of %d blocks trainable (%s parameters)", epoch + 1,
                        unfrozen, len(groups), f"{trainable:,}")
        started = time.perf_counter()
        history = model.fit(train, validation_data=valid_data, epochs=epoch + 1, initial_epoch=epoch, verbose="auto",
                            callbacks=[keras.callbacks.CSVLogger(str(run_dir / f"history_{name}.csv"),
                                                                 append=epoch > 0)])
        seconds = time.perf_counter() - started
        report["epochs"].append({"epoch": epoch + 1, "seconds": seconds, "unfrozen_blocks": unfrozen,
                                 "val_loss": float(history.history["val_loss"][-1])})
        logger.info("fine-tuning epoch %d: %.0f s, validation loss %.4f", epoch + 1, seconds,
                    report["epochs"][-1]["val_loss"])
        # The weights first, then the epoch they belong to, each whole: a resume never reads half a checkpoint.
        atomic_save(weights_path, model.save_weights)
        atomic_write_text(progress_path, json.dumps({"next_epoch": epoch + 1, "report": report}))
    report["seconds_per_epoch"] = float(np.mean([e["seconds"] for e in report["epochs"]])) if report["epochs"] else 0.0
    return {"learner": tuned, "report": report}
