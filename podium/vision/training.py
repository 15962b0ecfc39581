"""Training a head: warm-up then annealing, early stopping, best checkpoint, history and learning curve."""
from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="podium")
class WarmupAnneal(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from `lr * warmup_start` ("start low to get out of the hole"), then cosine annealing."""

    def __init__(self, lr: float, warmup_steps: int, total_steps: int, warmup_start: float = 0.1,
                 anneal: str = "cosine"):
        self.lr = float(lr)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = max(int(total_steps), 1)
        self.warmup_start = float(warmup_start)
        self.anneal = anneal

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = max(self.warmup_steps, 1)
        warmup = self.lr * (self.warmup_start + (1.0 - self.warmup_start) * step / warm)
        if self.anneal == "cosine":
            progress = keras.ops.clip((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0, 1)
            after = self.lr * 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
        else:
            after = keras.ops.full_like(step, self.lr)
        return keras.ops.where(step < self.warmup_steps, warmup, after)

    def get_config(self):
        return {"lr": self.lr, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "warmup_start": self.warmup_start, "anneal": self.anneal}


def compile_model(model, train_config: dict, *, steps_per_epoch: int, epochs: int, lr: float | None = None,
                  loss=None, loss_weights=None, metrics=None, steps_per_execution: int = 1):
    lr = float(lr if lr is not None else train_config["lr"])
    schedule = WarmupAnneal(lr, warmup_steps=int(train_config["warmup_epochs"] * steps_per_epoch),
                            total_steps=epochs * steps_per_epoch, warmup_start=train_config["warmup_start"],
                            anneal=train_config["anneal"])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule),
        loss=loss or keras.losses.CategoricalCrossentropy(label_smoothing=train_config["label_smoothing"]),
        loss_weights=loss_weights,
        metrics=metrics if metrics is not None else ["accuracy"],
        steps_per_execution=max(int(steps_per_execution), 1),
    )
    return model


class BestCheckpoint(keras.callbacks.Callback):
    """Writes the model once training ends, after early stopping has put the best epoch's weights back:
    one save per fit instead of one per improving epoch (the best weights are held in memory meanwhile)."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)

    def on_train_end(self, logs=None):
        self.model.save(self.path)


def callbacks(run_dir: Path | None, name: str, *, patience: int, extra=(), checkpoint: bool = True) -> list:
    """Named, ordered callbacks: stop early (the best epoch's weights kept in memory and put back at the end),
    log every epoch and write the best model (only with a `run_dir`), then any extras."""
    ordered = [("early_stopping", keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                                restore_best_weights=True))]
    if run_dir is not None:
        run_dir = Path(run_dir)
        ordered.append(("history", keras.callbacks.CSVLogger(str(run_dir / f"history_{name}.csv"))))
        if checkpoint:
            ordered.append(("best_checkpoint", BestCheckpoint(run_dir / f"{name}.keras")))
    return [callback for _, callback in ordered] + list(extra)


def fit(model, train_data, valid_data, *, train_config: dict, run_dir: Path | None, name: str = "head",
        epochs: int | None = None, lr: float | None = None, extra_callbacks=(), verbose="auto",
        steps_per_execution: int = 1, batch_size: int | None = None, checkpoint: bool = True, **compile_args):
    """Compile and train `model`; the best epoch's weights are kept (in memory, and in `<name>.keras` with
    its `history_<name>.csv` when `run_dir` is given, the model unless `checkpoint=False`; `run_dir=None` writes
    nothing, e.g. a tuning trial).

    `train_data` is a PyDataset, or `(x, y)` arrays in memory (shuffled every epoch in batches of
    `batch_size`, or of `train.batch_size`); `valid_data` likewise. `steps_per_execution` > 1 runs that many
    steps per call of the compiled train function (per-step Python overhead gone; callbacks see epochs alike).
    """
    epochs = int(epochs if epochs is not None else train_config["epochs"])
    in_memory = isinstance(train_data, tuple)
    batch_size = int(batch_size or train_config["batch_size"])
    if in_memory:
        rows = len(train_data[1]) if not isinstance(train_data[1], dict) else len(next(iter(train_data[1].values())))
        steps_per_epoch = max((rows + batch_size - 1) // batch_size, 1)
    else:
        steps_per_epoch = len(train_data)
    compile_model(model, train_config, steps_per_epoch=steps_per_epoch, epochs=epochs, lr=lr,
                  steps_per_execution=min(int(steps_per_execution), steps_per_epoch), **compile_args)
    cbs = callbacks(run_dir, name, patience=int(train_config["patience"]), extra=extra_callbacks,
                    checkpoint=checkpoint)
    if in_memory:
        x, y = train_data
        history = model.fit(x, y, batch_size=batch_size, shuffle=True, validation_data=valid_data,
                            validation_batch_size=max(batch_size, 256), epochs=epochs, verbose=verbose,
                            callbacks=cbs)
    else:
        history = model.fit(train_data, validation_data=valid_data, epochs=epochs, verbose=verbose, callbacks=cbs)
    return history.history


def plot_learning_curve(history_files: list[Path], out: Path) -> Path:
    """Loss (and accuracy when logged) per epoch for train and validation, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frames = [(Path(f).stem.replace("history_", ""), pd.read_csv(f)) for f in history_files if Path(f).is_file()]
    has_accuracy = any("accuracy" in frame.columns for _, frame in frames)
    fig, axes = plt.subplots(1, 2 if has_accuracy else 1, figsize=(11 if has_accuracy else 6, 4), squeeze=False)
    offset = 0
    for stage, frame in frames:
        epochs = np.arange(offset + 1, offset + len(frame) + 1)
        for ax, metric in zip(axes[0], ["loss", "accuracy"]):
            if metric in frame:
                ax.plot(epochs, frame[metric], "-o", ms=3, label=f"{stage} train")
                ax.plot(epochs, frame[f"val_{metric}"], "-s", ms=3, label=f"{stage} valid")
                ax.set_xlabel("epoch")
                ax.set_ylabel(metric)
                ax.legend()
        offset += len(frame)
    fig.suptitle("learning curve")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
