"""Pseudo-labeling: train again on labelled rows plus test rows labelled by the current model.

Every training batch mixes labelled rows with a fixed fraction of pseudo-labelled test rows
(the course used about a quarter), so the labelled signal is never drowned out. Only test
rows are pseudo-labelled; validation rows are neither labelled by the model nor trained on,
so the validation score before and after stays honest.
"""
from __future__ import annotations

import keras
import numpy as np

from podium.core.stage import RunState, Stage, register_stage
from podium.errors import PodiumError
from podium.log import logger
from podium.vision.batches import RowSource, concatenate_parts, model_inputs
from podium.vision.data import augmented_passes
from podium.vision.learner import Learner


class MixedBatches(keras.utils.PyDataset):
    """Batches of `batch_size` rows, `fraction` of them drawn from `pseudo` sources, the rest from `labelled`.

    An epoch is one shuffled pass over the labelled rows; pseudo rows are drawn without
    replacement from a shuffled cycle that carries over between epochs, so every test row
    is used about equally. The last batch keeps the same mix in proportion.
    """

    def __init__(self, labelled, pseudo, *, batch_size: int = 64, fraction: float = 0.25, seed: int = 0):
        super().__init__()
        fraction = float(fraction)
        if not 0.0 < fraction < 1.0:
            raise PodiumError(f"pseudo.fraction must be between 0 and 1 (the share of each batch), got {fraction}")
        self.pseudo_per_batch = int(round(fraction * int(batch_size)))
        if not 1 <= self.pseudo_per_batch < int(batch_size):
            raise PodiumError(f"pseudo.fraction={fraction} with train.batch_size={batch_size} leaves "
                              f"{self.pseudo_per_batch} pseudo-labelled rows per batch; need 1 to {int(batch_size) - 1}")
        self.labelled = [s for s in labelled if len(s)]
        self.pseudo = [s for s in pseudo if len(s)]
        if not self.labelled or not self.pseudo:
            raise PodiumError("mixed batches need labelled rows and pseudo-labelled rows")
        self.sources = self.labelled + self.pseudo
        self.batch_size = int(batch_size)
        self.fraction = fraction
        self.labelled_per_batch = self.batch_size - self.pseudo_per_batch
        self._rng = np.random.default_rng(seed)
        self._labelled_index = _index(self.labelled, offset=0)
        self._pseudo_index = _index(self.pseudo, offset=len(self.labelled))
        self._pseudo_cycle = np.zeros((0, 2), dtype=np.int64)
        self._plan: list = []
        self._new_epoch()

    def __len__(self) -> int:
        return (len(self._labelled_index) + self.labelled_per_batch - 1) // self.labelled_per_batch

    def _new_epoch(self) -> None:
        labelled = self._labelled_index[self._rng.permutation(len(self._labelled_index))]
        self._plan = []
        for index in range(len(self)):
            chunk = labelled[index * self.labelled_per_batch:(index + 1) * self.labelled_per_batch]
            wanted = self.pseudo_per_batch if len(chunk) == self.labelled_per_batch else \
                max(1, int(round(len(chunk) * self.fraction / (1.0 - self.fraction))))
            self._plan.append(np.concatenate([chunk, self._draw_pseudo(wanted)]))

    def _draw_pseudo(self, count: int) -> np.ndarray:
        while len(self._pseudo_cycle) < count:
            shuffled = self._pseudo_index[self._rng.permutation(len(self._pseudo_index))]
            self._pseudo_cycle = np.concatenate([self._pseudo_cycle, shuffled])
        drawn, self._pseudo_cycle = self._pseudo_cycle[:count], self._pseudo_cycle[count:]
        return drawn

    def batch_plan(self, index: int) -> list[tuple[int, np.ndarray]]:
        """(source number in `sources`, positions in that source) making up batch `index`."""
        chunk = self._plan[index]
        return [(k, chunk[chunk[:, 0] == k, 1]) for k in np.unique(chunk[:, 0])]

    def is_pseudo(self, source_number: int) -> bool:
        return source_number >= len(self.labelled)

    def __getitem__(self, index):
        x, y = concatenate_parts([self.sources[k].take(positions) for k, positions in self.batch_plan(index)])
        return model_inputs(x), y

    def on_epoch_end(self) -> None:
        self._new_epoch()


def _index(sources, *, offset: int) -> np.ndarray:
    return np.concatenate([np.stack([np.full(len(s), offset + k), np.arange(len(s))], axis=1)
                           for k, s in enumerate(sources)]).astype(np.int64)


def balance_classes(probabilities: np.ndarray, prior=None, *, iterations: int = 50) -> np.ndarray:
    """Probabilities rescaled per class so the predicted class shares over all rows match `prior`
    (default: uniform), each row still summing to 1 (Sinkhorn scaling).

    A first model's test predictions lean to the classes it over-predicts; pseudo-labels taken as they
    are teach the second model that bias again. Rescaling each class's column until the predicted
    shares equal the labelled rows' class shares keeps every row's ranking of classes but moves the
    borderline rows to the under-predicted classes."""
    probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, None)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    classes = probabilities.shape[1]
    prior = np.full(classes, 1.0 / classes) if prior is None else np.asarray(prior, dtype=np.float64)
    prior = np.clip(prior, 1e-6, None) / np.clip(prior, 1e-6, None).sum()
    balanced = probabilities
    for _ in range(iterations):
        balanced = balanced * (prior / balanced.mean(axis=0))
        balanced = balanced / balanced.sum(axis=1, keepdims=True)
    return balanced


def pseudo_targets(probabilities: np.ndarray, *, soft: bool, threshold: float, balance: bool = False,
                   prior=None) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the test rows kept, their targets): rows at least `threshold` confident,
    with the predicted distribution (soft) or its arg-max as one-hot (hard). `balance`: the
    probabilities are first rescaled so the predicted class shares match `prior` (see `balance_classes`)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    if balance:
        probabilities = balance_classes(probabilities, prior)
    confidence = probabilities.max(axis=1)
    kept = np.flatnonzero(confidence >= float(threshold))
    if len(kept) == 0:
        raise PodiumError(f"pseudo.threshold={threshold} keeps no test row (the most confident prediction is "
                          f"{confidence.max():.3f}); lower it")
    if soft:
        targets = probabilities[kept]
    else:
        targets = np.eye(probabilities.shape[1])[probabilities[kept].argmax(axis=1)]
    return kept, targets.astype(np.float32)


def class_prior(data) -> np.ndarray:
    """The class shares of the training rows."""
    counts = np.bincount(data.y[data.train_rows], minlength=len(data.plugin.classes)).astype(np.float64)
    return counts / counts.sum()


def mixed_batches(data, test_probabilities: np.ndarray, *, seed: int) -> tuple[MixedBatches, int]:
    """Mixed batches over the training passes and the same passes of the pseudo-labelled test rows."""
    config, pseudo = data.config, data.config["pseudo"]
    kept, targets = pseudo_targets(test_probabilities, soft=bool(pseudo["soft"]), threshold=float(pseudo["threshold"]),
                                   balance=bool(pseudo["balance"]), prior=class_prior(data))
    passes = range(augmented_passes(config) + 1)
    pseudo_sources = []
    for p in passes:
        test = data.source("test", p, with_targets=False)
        pseudo_sources.append(RowSource(test.inputs, test.rows[kept], targets, name=f"pseudo/p{p}"))
    batches = MixedBatches([data.source("train", p) for p in passes], pseudo_sources,
                           batch_size=int(config["train"]["batch_size"]), fraction=float(pseudo["fraction"]), seed=seed)
    return batches, len(kept)


@register_stage
class PseudoLabel(Stage):
    """`pseudo.rounds` rounds of: label the test rows with the current learner (TTA-averaged), train a fresh
    head on mixed batches. Validation rows are never pseudo-labelled, so the score before and after is honest."""

    name = "pseudo_label"
    order = 30
    reads = ("pseudo", "train", "tta")
    leaves = ("head.keras",)  # the retrained head replaces the first one

    @classmethod
    def enabled(cls, config: dict) -> bool:
        return bool(config["pseudo"]["enabled"])

    @classmethod
    def check(cls, plugin, config: dict, data_dir=None) -> None:
        pseudo = config["pseudo"]
        if int(pseudo["rounds"]) < 1:
            raise PodiumError(f"pseudo.rounds must be at least 1, got {pseudo['rounds']}")
        if not 0.0 <= float(pseudo["threshold"]) < 1.0:
            raise PodiumError(f"pseudo.threshold must be in [0, 1), got {pseudo['threshold']}")

    def run(self, state: RunState) -> None:
        data, config, plugin = state.data, state.config, state.plugin
        if not len(data.test):
            raise PodiumError("pseudo-labeling needs test images, and this data set has none")
        views = int(config["tta"]["views"])
        before = plugin.evaluate(data.valid_labels, np.mean(state.learner.tta("valid", views), axis=0))
        metrics = {"val_log_loss_before_pseudo": before["val_log_loss"],
                   "val_accuracy_before_pseudo": before["val_accuracy"], "pseudo_rounds": []}
        if (state.run_dir / "head.keras").is_file():
            (state.run_dir / "head.keras").replace(state.run_dir / "head_before_pseudo.keras")
        learner = state.learner
        for round_number in range(1, int(config["pseudo"]["rounds"]) + 1):
            test_probabilities = np.mean(learner.tta("test", views), axis=0)
            state.pseudo_test_probabilities = test_probabilities  # the oof stage's fold heads use the same labels
            batches, rows = mixed_batches(data, test_probabilities, seed=int(config["seed"]) + round_number)
            logger.info("pseudo-labeling round %d: %d of %d test rows, %d of every %d rows in a batch", round_number,
                        rows, len(data.test), batches.pseudo_per_batch, batches.batch_size)
            learner = Learner.train_head(data, state.run_dir, name=f"pseudo{round_number}", batches=batches)
            after = plugin.evaluate(data.valid_labels, np.mean(learner.tta("valid", views), axis=0))
            # Per class (the arg-max of each kept row's target): what the first model taught the second.
            taught = np.bincount(np.concatenate([source.targets.argmax(axis=1) for source in batches.pseudo[:1]]),
                                 minlength=len(plugin.classes))
            metrics["pseudo_rounds"].append({"round": round_number, "pseudo_rows": rows, **after,
                                             "by_class": dict(zip(plugin.classes, taught.tolist()))})
            logger.info("  validation log loss %.4f before pseudo-labeling, %.4f after round %d",
                        metrics["val_log_loss_before_pseudo"], after["val_log_loss"], round_number)
        metrics.update({"val_log_loss_after_pseudo": after["val_log_loss"],
                        "val_accuracy_after_pseudo": after["val_accuracy"]})
        learner.save(state.run_dir / "head.keras")  # what `podium predict` reloads
        state.learner = learner
        state.metrics.update(metrics)
