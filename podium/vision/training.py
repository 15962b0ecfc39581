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
        from podium.files import atomic_save

        atomic_save(self.path, self.model.save)


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
        steps_per_execution: int = 1, batch_size: int | None = None, checkpoint: bool = True, seed: int = 0,
        **compile_args):
    """Compile and train `model`; the best epoch's weights are kept (in memory, and in `<name>.keras` with
    its `history_<name>.csv` when `run_dir` is given, the model unless `checkpoint=False`; `run_dir=None` writes
    nothing, e.g. a tuning trial).

    `train_data` is a PyDataset, or `(x, y)` arrays in memory (shuffled every epoch with `seed`, in batches of
    `batch_size`, or of `train.batch_size`); `valid_data` likewise. In-memory rows train through
    `fit_in_memory` (a whole epoch per compiled call); a PyDataset through `model.fit`, `steps_per_execution`
    steps per call of its compiled train function.
    """
    epochs = int(epochs if epochs is not None else train_config["epochs"])
    in_memory = isinstance(train_data, tuple)
    batch_size = int(batch_size or train_config["batch_size"])
    steps = steps_per_epoch(train_data, batch_size)
    compile_model(model, train_config, steps_per_epoch=steps, epochs=epochs, lr=lr,
                  steps_per_execution=min(int(steps_per_execution), steps), **compile_args)
    cbs = callbacks(run_dir, name, patience=int(train_config["patience"]), extra=extra_callbacks,
                    checkpoint=checkpoint)
    if in_memory and isinstance(valid_data, tuple) and keras.backend.backend() == "tensorflow":
        return fit_in_memory(model, train_data, valid_data, batch_size=batch_size, epochs=epochs, callbacks=cbs,
                             verbose=verbose, seed=seed)
    if in_memory:
        x, y = train_data
        history = model.fit(x, y, batch_size=batch_size, shuffle=True, validation_data=valid_data,
                            validation_batch_size=max(batch_size, 256), epochs=epochs, verbose=verbose,
                            callbacks=cbs)
    else:
        history = model.fit(train_data, validation_data=valid_data, epochs=epochs, verbose=verbose, callbacks=cbs)
    return history.history


VALID_CHUNK = 4096  # validation rows per compiled test step


def fit_in_memory(model, train_data: tuple, valid_data: tuple, *, batch_size: int, epochs: int, callbacks: list,
                  verbose="auto", seed: int = 0, shuffle: bool = True) -> dict:
    """Train a compiled `model` on `(x, y)` rows held in memory, a whole epoch (every batch of a seeded
    permutation) per call of one compiled function: `model.fit`'s per-epoch set-up (input pipeline, iterator,
    evaluation loop) made a head fit about a third slower (20 epochs of 4,800 pooled rows: 7.2 s against
    5.4 s, the rest being the head's arithmetic). The epoch is Keras's own `train_step` in a
    graph loop, so losses, metrics, regularizers and the learning-rate schedule are those of `model.fit`; the
    callbacks (early stopping, logging, checkpoint, pruning) see the same epochs and logs. TensorFlow only
    (the JAX backend goes through `model.fit`, already compiled end to end)."""
    import tensorflow as tf

    x, y = (keras.tree.map_structure(tf.convert_to_tensor, part) for part in train_data)
    # Monitored on its own training rows (fold heads): the same tensors, not a second copy.
    xv, yv = (x, y) if valid_data is train_data else \
        (keras.tree.map_structure(tf.convert_to_tensor, part) for part in valid_data)
    rows, valid_rows = _rows(train_data[1]), _rows(valid_data[1])
    steps = steps_per_epoch(train_data, batch_size)
    model._symbolic_build(data_batch=(_take(x, tf.range(min(rows, batch_size))),
                                      _take(y, tf.range(min(rows, batch_size)))))

    # The rows are arguments, not captured by the traced functions: captured, every fit's rows stayed in
    # memory after it (650 MB a fold head on Dogs vs. Cats at Kaggle's size).
    @tf.function(reduce_retracing=True)
    def train_epoch(x, y, order):
        # One traced train_step (the loop body); the epoch's logs are read from the metrics after the loop.
        for step in tf.range(steps):
            batch = order[step * batch_size:(step + 1) * batch_size]
            model.train_step((_take(x, batch), _take(y, batch)))
        return model.get_metrics_result()

    @tf.function(reduce_retracing=True)
    def evaluate(xv, yv):
        logs = model.test_step((slice_rows(xv, 0, VALID_CHUNK), slice_rows(yv, 0, VALID_CHUNK)))
        for start in range(VALID_CHUNK, valid_rows, VALID_CHUNK):  # a few chunks: unrolled
            logs = model.test_step((slice_rows(xv, start, start + VALID_CHUNK),
                                    slice_rows(yv, start, start + VALID_CHUNK)))
        return logs

    callback_list = keras.callbacks.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                                                 model=model, verbose=1 if verbose == "auto" else verbose,
                                                 epochs=epochs, steps=steps)
    rng = np.random.default_rng(seed)
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(epochs):
        callback_list.on_epoch_begin(epoch)
        model.reset_metrics()
        order = rng.permutation(rows) if shuffle else np.arange(rows)
        logs = _numbers(train_epoch(x, y, tf.constant(order, dtype=tf.int32)))
        model.reset_metrics()
        logs.update({f"val_{key}": value for key, value in _numbers(evaluate(xv, yv)).items()})
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return model.history.history


def steps_per_epoch(train, batch_size: int) -> int:
    """Steps in one epoch of `train`: a PyDataset, or `(x, y)` rows in memory in batches of `batch_size`."""
    if not isinstance(train, tuple):
        return max(len(train), 1)
    return max((_rows(train[1]) + int(batch_size) - 1) // int(batch_size), 1)


def slice_rows(part, start, stop):
    """Rows `start:stop` of an array, or of every array of a dict of inputs or targets."""
    return keras.tree.map_structure(lambda array: array[start:stop], part)


def _rows(y) -> int:
    return len(next(iter(y.values()))) if isinstance(y, dict) else len(y)


def _take(part, rows):
    import tensorflow as tf

    return keras.tree.map_structure(lambda array: tf.gather(array, rows), part)


def _numbers(logs: dict) -> dict:
    return {key: float(value) for key, value in logs.items()}


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
