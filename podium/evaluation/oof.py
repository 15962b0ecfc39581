"""Out-of-fold estimates and bagging: k heads over every labelled row, on cached features.

A 400-row hold-out is too noisy to choose a model on or to fit a calibration to (on real Dogs vs.
Cats, the tuning trial with the best hold-out log loss had the worst test log loss but one). This
stage splits ALL labelled rows (train + valid) into `oof.folds` folds with the run's split strategy
(`data.split=group` keeps each group, e.g. a driver, inside one fold), trains one head per fold on
the other folds' rows (plain + augmented passes, as the main head), and predicts the held-out fold
with the run's TTA views. Every labelled row is predicted exactly once, by the one model that never
saw it: `oof_predictions.csv`, `oof_log_loss` and `oof_accuracy` beside the hold-out's `val_log_loss`.

No fold model sees its own fold, not even for early stopping: a fold head is monitored on its own
training rows (the schedule anneals to zero, so the last epochs are the best ones anyway).

With `oof.bag` the test prediction is the mean of the fold heads (plus, with `oof.refit`, a head
trained on every labelled row), so every labelled row trains the submission; the hold-out metrics
stay those of the main head, which never saw the validation rows.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from podium.core.split import fold_indices
from podium.core.stage import RunState, Stage, register_stage
from podium.errors import PodiumError
from podium.log import logger

__all__ = ["Bag", "OutOfFold", "oof_folds", "fold_data"]


class Bag:
    """Several learners on the same rows, predicting as one: the mean of their (TTA) predictions."""

    def __init__(self, learners, data):
        if not learners:
            raise PodiumError("a bag needs at least one learner")
        self.learners = list(learners)
        self.data = data

    def tta(self, split: str, views: int) -> list[np.ndarray]:
        per_view = [learner.tta(split, views) for learner in self.learners]
        return [np.mean([member[view] for member in per_view], axis=0) for view in range(int(views) + 1)]

    def predict(self, split: str, *, view: int = 0, output: str = "class") -> np.ndarray:
        return np.mean([learner.predict(split, view=view, output=output) for learner in self.learners], axis=0)

    def fold_predictions(self, split: str, views: int) -> list[np.ndarray]:
        """Each member's own (TTA-averaged) prediction: what the bag averages, equally weighted."""
        return [np.mean(learner.tta(split, views), axis=0) for learner in self.learners]


def oof_folds(labels, groups, *, strategy: str, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train positions, held-out positions) of each fold over every labelled row.

    Grouped folds never split a group; a stratified split with too few rows of some class falls back
    to a random k-fold rather than refusing a run."""
    labels = np.asarray(labels).astype(str)
    groups = np.asarray(groups).astype(str)
    if strategy == "stratified" and np.unique(labels, return_counts=True)[1].min() < folds:
        strategy = "random"
    return [(np.sort(train), np.sort(held)) for train, held in
            fold_indices(labels, groups, strategy=strategy, folds=folds, seed=seed, setting="oof.folds")]


def fold_data(data, train_rows: np.ndarray, valid_rows: np.ndarray):
    """`data` restricted to one fold: the same rows and cached features, another split.

    The feature caches are shared (no pass is computed twice); the metadata encoder, when the plugin
    has one, is refitted on the fold's training rows."""
    from podium.vision.metadata import fit_metadata

    fold = dataclasses.replace(data, train_rows=np.asarray(train_rows), valid_rows=np.asarray(valid_rows))
    if data.metadata is not None:
        fold.metadata = fit_metadata(data.plugin, data.config, data.labelled.iloc[fold.train_rows])
    return fold


def train_fold_head(data, run_dir: Path | None, *, name: str, seed: int, pseudo_probabilities=None,
                    save: bool = True):
    """A fresh head on `data`'s training rows, monitored on those training rows only (never the held-out);
    `<run_dir>/<name>.keras` (unless `save=False`) and its history are written unless `run_dir` is None.

    With the run's pseudo-labels (`pseudo_probabilities`, the test rows' predicted probabilities) the batches mix
    them in as the main model's pseudo-labeling round does (`pseudo.fraction` of every batch): an epoch is one
    pass over the fold's labelled rows, however many test rows there are (State Farm has 3.6 times more test
    than labelled photos)."""
    import keras

    from podium.vision.batches import FeatureBatches
    from podium.vision.data import augmented_passes
    from podium.vision.learner import PREDICT_BATCH, Learner
    from podium.vision.stages.pseudo_label import mixed_batches

    config = data.config
    if pseudo_probabilities is not None:
        batches, _ = mixed_batches(data, pseudo_probabilities, seed=seed)
    else:
        batches = FeatureBatches([data.source("train", p) for p in range(augmented_passes(config) + 1)],
                                 batch_size=int(config["train"]["batch_size"]), shuffle=True, seed=seed)
    monitor = FeatureBatches([data.source("train", 0)], batch_size=PREDICT_BATCH, shuffle=False, seed=seed)
    keras.utils.set_random_seed(seed)
    learner = Learner.head(data)
    learner.fit(batches, valid_data=monitor, run_dir=run_dir, name=name, verbose=0, save=save)
    return learner


@register_stage
class OutOfFold(Stage):
    """k heads over all labelled rows: out-of-fold predictions and scores; their mean predicts the test set."""

    name = "oof"
    order = 60
    reads = ("oof", "data.split", "tta")
    on_predict = True  # `podium predict` reloads the bag (oof/fold*.keras) so the test prediction is the same
    leaves = ("oof/*.keras",)

    @classmethod
    def enabled(cls, config: dict) -> bool:
        # A cross-validation run (`podium cv`, data.folds >= 2) is already out-of-fold over its folds.
        return int(config.get("oof", {}).get("folds", 0)) >= 2 and int(config["data"]["folds"]) < 2

    @classmethod
    def check(cls, plugin, config: dict, data_dir=None) -> None:
        folds = int(config["oof"]["folds"])
        if folds < 2:
            raise PodiumError(f"oof.folds must be 0 (off) or at least 2, got {folds}")

    def run(self, state: RunState) -> None:
        from podium.vision.learner import Learner

        data, config, plugin = state.data, state.config, state.plugin
        if "data" not in state.completed:  # predicting again: the saved fold heads, when the run bagged them
            saved = state.left_by(self.name)  # the heads the run's manifest records, no more, no fewer
            if saved and bool(config["oof"]["bag"]) and not getattr(state.learner, "on_images", False):
                state.bag = Bag([Learner.load(self._head_data(data, config, path), path) for path in saved], data)
            return
        if state.learner is not None and getattr(state.learner, "on_images", False):
            logger.info("oof: the main model is fine-tuned; out-of-fold heads estimate the head recipe and "
                        "are not bagged into its submission")
        views = int(config["tta"]["views"])
        rows, labels, folds = self._folds(data, config)
        files = getattr(state, "record", "full") != "metrics"  # a tuning trial records metrics only
        out_dir = Path(state.run_dir) / "oof" if files else None
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        pseudo = getattr(state, "pseudo_test_probabilities", None)
        # With pseudo-labels, both sets of fold heads keep their histories, and the one judged better its models.
        oof, learners = fold_heads(data, rows, folds, out_dir=out_dir, views=views, pseudo=pseudo, label="oof",
                                   save=pseudo is None)
        if pseudo is not None:  # pseudo-labels are a step like any other: kept only beyond their noise
            oof, learners = _judge_pseudo_labels(state, data, rows, folds, views, oof, learners, out_dir=out_dir)
            for number, learner in enumerate(learners):
                if out_dir is not None:
                    learner.save(out_dir / f"fold{number}.keras")
        if bool(config["oof"]["refit"]):
            everything = fold_data(data, rows, data.valid_rows)
            pseudo = getattr(state, "pseudo_test_probabilities", None)
            learners.append(train_fold_head(everything, out_dir, name="refit", seed=int(config["seed"]) + len(folds),
                                            pseudo_probabilities=pseudo))
        scores = plugin.evaluate(labels, oof)
        state.oof = {"rows": rows, "ids": data.labelled["id"].to_numpy()[rows], "labels": labels, "pred": oof,
                     "folds": folds}
        state.metrics.update({"oof_folds": len(folds), "oof_rows": int(len(rows)),
                              "oof_log_loss": scores["val_log_loss"], "oof_accuracy": scores["val_accuracy"]})
        bag = bool(config["oof"]["bag"]) and not getattr(state.learner, "on_images", False)
        if bag:
            state.bag = Bag(learners, data)
            state.metrics["bagged_models"] = len(learners)
        logger.info("out-of-fold over %d labelled rows (%d folds): log loss %.4f, accuracy %.4f%s", len(rows),
                    len(folds), scores["val_log_loss"], scores["val_accuracy"],
                    f"; the test prediction is the mean of {len(learners)} heads" if bag else "")
        if files:
            _write_oof(plugin, Path(state.run_dir) / "oof_predictions.csv", state.oof["ids"], oof, labels)


    @staticmethod
    def _folds(data, config: dict):
        """Every labelled row, its label, and the folds over them (the same on every call for the same data)."""
        rows = np.union1d(data.train_rows, data.valid_rows)  # unreadable rows were dropped from both
        labels = data.labelled["label"].to_numpy()[rows]
        groups = data.labelled["group"].to_numpy()[rows]
        folds = oof_folds(labels, groups, strategy=config["data"]["split"], folds=int(config["oof"]["folds"]),
                          seed=int(config["seed"]))
        return rows, labels, folds

    def _head_data(self, data, config: dict, path: Path):
        """The rows a saved fold head (`fold<n>.keras`, `refit.keras`) was trained on, so it predicts with the
        same metadata encoder as in the run."""
        rows, _, folds = self._folds(data, config)
        if path.stem == "refit":
            return fold_data(data, rows, data.valid_rows)
        number = path.stem.removeprefix("fold")
        if not path.stem.startswith("fold") or not number.isascii() or not number.isdigit() or int(number) >= len(folds):
            raise PodiumError(f"{path} is not a fold head of this run's {len(folds)} folds")
        train, held = folds[int(number)]
        return fold_data(data, rows[train], rows[held])


def fold_heads(data, rows, folds, *, out_dir: Path | None, views: int, pseudo=None, label: str = "oof",
               prefix: str = "fold", save: bool = True):
    """One head per fold of `data.config`'s head, trained on the other folds' rows: (out-of-fold predictions of
    `rows` with `views` TTA views, the fold heads); `<out_dir>/history_<prefix><n>.csv` and (with `save`)
    `<out_dir>/<prefix><n>.keras` written unless out_dir is None."""
    plugin, seed = data.plugin, int(data.config["seed"])
    labels = data.labelled["label"].to_numpy()[rows]
    oof = np.full((len(rows), len(plugin.classes)), np.nan)
    learners = []
    for number, (train, held) in enumerate(folds):
        fold = fold_data(data, rows[train], rows[held])
        learner = train_fold_head(fold, out_dir, name=f"{prefix}{number}", seed=seed + number,
                                  pseudo_probabilities=pseudo, save=save)
        oof[held] = np.mean(learner.tta("valid", views), axis=0)
        learners.append(learner)
        logger.info("%s fold %d of %d: %d training rows, %d held out, fold log loss %.4f", label, number + 1,
                    len(folds), len(train), len(held), plugin.evaluate(labels[held], oof[held])["val_log_loss"])
    return oof, learners


def _judge_pseudo_labels(state: RunState, data, rows, folds, views: int, oof, learners, *, out_dir: Path | None):
    """The fold heads with pseudo-labels, or the ones without when the pseudo-labels do not lower the out-of-fold
    loss beyond its noise (recorded under `steps`); the heads without keep their histories as
    `history_without_pseudo_fold<n>.csv`."""
    from podium.core.metrics import gain_beyond_noise, log_loss, log_losses

    y = data.y[rows]
    plain, plain_learners = fold_heads(data, rows, folds, out_dir=out_dir, views=views,
                                       label="oof without pseudo-labels", prefix="without_pseudo_fold", save=False)
    verdict = gain_beyond_noise(log_losses(y, plain), log_losses(y, oof))
    verdict.update({"log_loss_before": log_loss(y, plain), "log_loss_after": log_loss(y, oof)})
    if not verdict["kept"]:
        verdict["why"] = (f"pseudo-labels changed the out-of-fold loss by {-verdict['gain']:+.5f}, not beyond its "
                          f"noise ({verdict['noise']:.5f})")
    state.metrics.setdefault("steps", {})["pseudo_labels"] = verdict
    logger.info("pseudo-labels in the fold heads: out-of-fold log loss %.4f without, %.4f with: %s",
                verdict["log_loss_before"], verdict["log_loss_after"], "kept" if verdict["kept"] else "dropped")
    if not verdict["kept"]:
        state.pseudo_test_probabilities = None  # later heads (a refit, the ensemble's) train without them too
        return plain, plain_learners
    return oof, learners


def _write_oof(plugin, path: Path, ids, predictions, labels) -> Path:
    import pandas as pd

    from podium.files import atomic_write_text

    frame = pd.DataFrame(np.asarray(predictions), columns=plugin.prediction_columns())
    frame.insert(0, "label", list(labels))
    frame.insert(0, "id", list(ids))
    return atomic_write_text(path, frame.to_csv(index=False, float_format="%.6f"), overwrite=False)
