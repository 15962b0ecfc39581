"""A weighted ensemble of heads on the same cached features, weights fitted on their out-of-fold predictions.

Several kinds of head see the same features differently: an exact multinomial logistic regression on the
pooled features (scikit-learn, C chosen on the run's own folds), the gap MLP, the fully convolutional head
(which keeps where things are), and metadata fusion where the plugin has metadata. Each member is trained
on the `oof` stage's folds (the configured head is that stage's own bag, not trained twice), so every member
has an out-of-fold prediction of every labelled row and a bag of fold models for the test set.

The weights are fitted by greedy ensemble selection with replacement (Caruana et al., 2004, as AutoGluon's
weighted ensemble): `ensemble.rounds` times, add the member whose addition gives the lowest out-of-fold log
loss of the running average; a member's weight is how often it was picked, so the weights sum to 1 and a
member that never helps gets 0. The ensemble's out-of-fold predictions replace the bag's for the later
stages (neighbours, calibration), and its test prediction is the weighted sum of the members' bags.

Files, under `<run>/ensemble/` (`podium predict` reloads them): `ensemble.json` (members, weights, each
member's head config and out-of-fold log loss, its files), `<member>/fold<n>.keras` (Keras heads),
`logistic/fold<n>.npz` (the standardisation and coefficients of each fold's logistic regression).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from podium.core.metrics import log_loss
from podium.core.stage import RunState, Stage, register_stage
from podium.errors import PodiumError
from podium.log import logger
from podium.vision.cache import pooled_means

__all__ = ["MEMBERS", "HeadsEnsemble", "PooledLogistic", "WeightedBag", "fit_logistic_folds", "greedy_weights"]

MEMBERS = ("logistic", "gap", "fcn", "metadata")
# Regularisation strengths searched, on standardised pooled features (the Dogs vs. Cats probe, searching 1e-3..1e2,
# chose 0.03; the member 0.1). A larger C only slowed the fits on 2 busy cores.
LOGISTIC_C = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
# Rows scored at a time: the standardised float64 features of all 79,726 State Farm test rows are 0.8 GB a copy,
# and the whole-set product took the calibration stage to 4.6 GiB at Kaggle's size.
BLOCK_ROWS = 8192


def greedy_weights(y_index, member_preds, *, rounds: int) -> np.ndarray:
    """Greedy ensemble selection with replacement: each round adds the member that most lowers the log loss of
    the running average (ties to the earlier member); the weights are the pick counts over `rounds`."""
    preds = [np.asarray(p, dtype=np.float64) for p in member_preds]
    if not preds:
        raise PodiumError("an ensemble needs at least one member")
    counts = np.zeros(len(preds))
    total = np.zeros_like(preds[0])
    for picked in range(1, int(rounds) + 1):
        losses = [log_loss(y_index, (total + p) / picked) for p in preds]
        best = int(np.argmin(losses))
        counts[best] += 1
        total += preds[best]
    return counts / counts.sum()


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


class PooledLogistic:
    """A fitted multinomial logistic regression on standardised pooled features, as plain arrays (no pickle):
    `predict(split, view)` on the pooled features of that view's cached pass, like a head's."""

    def __init__(self, data, params: dict):
        self.data = data
        self.params = {key: np.asarray(value, dtype=np.float64) for key, value in params.items()}
        self._predictions = {}  # (split, view) -> probabilities: the weights never change once fitted

    @classmethod
    def load(cls, data, path: Path) -> "PooledLogistic":
        with np.load(Path(path)) as saved:
            return cls(data, {key: saved[key] for key in saved.files})

    def save(self, path: Path) -> Path:
        from podium.files import atomic_write_bytes

        import io

        buffer = io.BytesIO()
        np.savez(buffer, **self.params)
        return atomic_write_bytes(Path(path), buffer.getvalue(), overwrite=True)

    def probabilities(self, pooled: np.ndarray) -> np.ndarray:
        p = self.params
        scores = ((np.asarray(pooled, dtype=np.float64) - p["mean"]) / p["scale"]) @ p["coef"].T + p["intercept"]
        if scores.shape[1] == 1:  # scikit-learn's two-class model: one score for the second class
            scores = np.column_stack([np.zeros(len(scores)), scores[:, 0]])
        return _softmax_rows(scores)

    def predict(self, split: str, *, view: int = 0, output: str = "class") -> np.ndarray:
        if output != "class":
            raise PodiumError(f"a logistic regression has no {output!r} output")
        key = (split, int(view))
        if key not in self._predictions:
            data = self.data
            if split == "test":
                features = data.test_features(view)
                rows = np.arange(len(getattr(features, "array", features)))
            else:
                features = data.labelled_features(view)
                rows = np.asarray(data.train_rows if split == "train" else data.valid_rows)
            blocks = [self.probabilities(pooled_means(features, rows[start:start + BLOCK_ROWS]))
                      for start in range(0, len(rows), BLOCK_ROWS)]
            self._predictions[key] = np.concatenate(blocks) if blocks else np.zeros((0, len(data.plugin.classes)))
        return self._predictions[key].copy()

    def tta(self, split: str, views: int) -> list[np.ndarray]:
        return [self.predict(split, view=view) for view in range(int(views) + 1)]


def fit_logistic_folds(data, rows, folds, *, views: int, grid=LOGISTIC_C):
    """Per fold, a logistic regression on the plain pass's pooled features of the other folds' rows, C chosen by
    the out-of-fold log loss over `grid`: (out-of-fold predictions with `views` TTA views, fold models, C)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from podium.evaluation.oof import fold_data

    # Every view's pooled features of the rows, read once (the fits and the out-of-fold predictions reuse them).
    pooled_views = [pooled_means(data.labelled_features(view), rows) for view in range(int(views) + 1)]
    pooled = pooled_views[0]
    y, classes = data.y[rows], len(data.plugin.classes)
    oof = {float(c): np.zeros((len(rows), classes)) for c in grid}
    models = {float(c): [] for c in grid}
    with _one_blas_thread():
        for train, held in folds:
            scaler = StandardScaler().fit(pooled[train])
            scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
            x = (pooled[train] - scaler.mean_) / scale
            # C from the strongest regularisation up, each fit starting from the last one's coefficients
            model = LogisticRegression(max_iter=1000, warm_start=True)
            for c in sorted(float(c) for c in grid):
                model.set_params(C=c).fit(x, y[train])
                member = PooledLogistic(fold_data(data, rows[train], rows[held]), {
                    "mean": scaler.mean_, "scale": scale, **_all_classes(model, classes)})
                oof[c][held] = np.mean([member.probabilities(view[held]) for view in pooled_views], axis=0)
                models[c].append(member)
    losses = {c: log_loss(y, predictions) for c, predictions in oof.items()}
    best = min(losses, key=lambda c: (losses[c], c))
    logger.info("ensemble member logistic: out-of-fold log loss by C %s; C=%g",
                ", ".join(f"{c:g}: {loss:.4f}" for c, loss in losses.items()), best)
    return oof[best], models[best], best


def _one_blas_thread():
    """BLAS on one thread: these fits are small matrix products, and OpenBLAS's waiting threads made them 34x
    slower (8.1 s against 0.24 s, 3 fits of 755 rows) when the cores were busy."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _all_classes(model, classes: int) -> dict:
    """A fitted model's coefficients with one row per class (a class missing from a fold: never predicted)."""
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == classes:
        return {"coef": coef, "intercept": intercept}
    if coef.shape[0] == 1:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    full_coef, full_intercept = np.zeros((classes, coef.shape[1])), np.full(classes, -30.0)
    full_coef[model.classes_], full_intercept[model.classes_] = coef, intercept
    return {"coef": full_coef, "intercept": full_intercept}


class WeightedBag:
    """Bags of fold models weighted into one prediction: what the ensemble submits."""

    def __init__(self, members: list[tuple[str, float, list]]):
        self.members = [(name, float(weight), list(models)) for name, weight, models in members if weight > 0]
        if not self.members:
            raise PodiumError("a weighted ensemble needs a member of positive weight")
        self.learners = [model for _, _, models in self.members for model in models]
        self.description = "weighted ensemble: " + ", ".join(
            f"{name} {weight:.2f} (mean of {len(models)})" for name, weight, models in self.members)

    def tta(self, split: str, views: int) -> list[np.ndarray]:
        per_member = [np.mean([model.tta(split, views) for model in models], axis=0) for _, _, models in self.members]
        weights = [weight for _, weight, _ in self.members]
        return [sum(w * member[view] for w, member in zip(weights, per_member)) for view in range(int(views) + 1)]

    def predict(self, split: str, *, view: int = 0, output: str = "class") -> np.ndarray:
        return sum(weight * np.mean([m.predict(split, view=view, output=output) for m in models], axis=0)
                   for _, weight, models in self.members)

    def fold_predictions(self, split: str, views: int) -> list[np.ndarray]:
        """Fold by fold, the weighted sum of each member's fold model: the models the out-of-fold rows saw."""
        folds = min(len(models) for _, _, models in self.members)
        return [sum(weight * np.mean(models[fold].tta(split, views), axis=0) for _, weight, models in self.members)
                for fold in range(folds)]


def _member_config(config: dict, name: str) -> dict:
    """The run's config with the head of ensemble member `name` (the configured head's settings where they fit)."""
    from podium.config import deep_update

    head = config["head"]
    if name == "gap":
        changes = {"kind": "gap", "metadata": False, "units": head["units"] if head["kind"] == "gap" else 256}
    elif name == "fcn":
        fcn = head["kind"] == "fcn"
        changes = {"kind": "fcn", "metadata": False, "units": head["units"] if fcn and head["units"] else 32,
                   "conv_layers": head["conv_layers"] if fcn else 1}
    elif name == "metadata":
        changes = {"metadata": True}
    else:
        changes = {}
    return deep_update(config, {"head": changes})


def _member_data(data, config: dict, rows):
    from podium.vision.data import plain_data
    from podium.vision.metadata import fit_metadata

    return plain_data(data, config=config,
                      metadata=fit_metadata(data.plugin, config, data.labelled.iloc[np.asarray(rows)]))


def _configured_name(data) -> str:
    return "metadata" if data.metadata is not None else str(data.config["head"]["kind"])


@register_stage
class HeadsEnsemble(Stage):
    """Heads of several kinds on the oof stage's folds, weighted by greedy selection on their out-of-fold loss."""

    name = "ensemble"
    order = 65
    reads = ("ensemble", "oof", "tta")
    on_predict = True  # `podium predict` reloads ensemble/ensemble.json and its members
    leaves = ("ensemble/ensemble.json", "ensemble/*/fold*.keras", "ensemble/*/fold*.npz")

    @classmethod
    def enabled(cls, config: dict) -> bool:
        oof = config.get("oof", {})
        return (bool(config.get("ensemble", {}).get("enabled", False)) and int(oof.get("folds", 0)) >= 2
                and bool(oof.get("bag", False)) and int(config["data"]["folds"]) < 2
                and float(config.get("boxes", {}).get("loss_weight", 0.0)) == 0.0)

    @classmethod
    def check(cls, plugin, config: dict, data_dir=None) -> None:
        unknown = [name for name in config["ensemble"]["members"] if name not in MEMBERS]
        if unknown or not config["ensemble"]["members"]:
            raise PodiumError(f"ensemble.members: choose among {', '.join(MEMBERS)}, got "
                              f"{config['ensemble']['members']!r}")

    def run(self, state: RunState) -> None:
        path = Path(state.run_dir) / "ensemble" / "ensemble.json"
        if "data" not in state.completed:  # predicting again: the members this run weighted
            if path.is_file():
                state.bag = _load(state, path)
            return
        bag, oof = getattr(state, "bag", None), getattr(state, "oof", None)
        if bag is None or oof is None or getattr(state, "record", "full") == "metrics":
            # A tuning trial scores the configured head alone; a fine-tuned model has no bag to weigh.
            return
        _fit(state, path)


def _fit(state: RunState, path: Path) -> None:
    from podium.evaluation.oof import fold_heads
    from podium.files import write_json

    data, config, plugin = state.data, state.config, state.plugin
    views = int(config["tta"]["views"])
    rows, folds, y = state.oof["rows"], state.oof["folds"], plugin.label_indices(state.oof["labels"])
    configured = _configured_name(data)
    out_dir = path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    members = [(configured, config["head"], state.oof["pred"], state.bag.learners[:len(folds)],
                [f"oof/fold{n}.keras" for n in range(len(folds))])]
    for name in config["ensemble"]["members"]:
        if name == configured or (name == "metadata" and not plugin.metadata_columns):
            continue
        if name == "fcn" and len(data.feature_shape) != 3:
            logger.info("ensemble: no fcn member on features of shape %s (not a map)", data.feature_shape)
            continue
        if name == "logistic":
            oof, models, c = fit_logistic_folds(data, rows, folds, views=views)
            (out_dir / "logistic").mkdir(parents=True, exist_ok=True)
            files = [f"ensemble/logistic/fold{number}.npz" for number in range(len(models))]
            for model, file in zip(models, files):
                model.save(Path(state.run_dir) / file)
            state.metrics["ensemble_logistic_C"] = c
            members.append((name, {"C": c}, oof, models, files))
            continue
        member_config = _member_config(config, name)
        member_data = _member_data(data, member_config, data.train_rows)
        (out_dir / name).mkdir(parents=True, exist_ok=True)
        oof, models = fold_heads(member_data, rows, folds, out_dir=out_dir / name, views=views,
                                 pseudo=getattr(state, "pseudo_test_probabilities", None), label=f"ensemble {name}")
        members.append((name, member_config["head"], oof, models,
                        [f"ensemble/{name}/fold{n}.keras" for n in range(len(folds))]))
    weights = greedy_weights(y, [oof for _, _, oof, _, _ in members], rounds=int(config["ensemble"]["rounds"]))
    blended = sum(w * oof for w, (_, _, oof, _, _) in zip(weights, members))
    table = {name: {"oof_log_loss": log_loss(y, oof), "weight": float(w)}
             for w, (name, _, oof, _, _) in zip(weights, members)}
    for name, entry in table.items():
        logger.info("ensemble member %-9s out-of-fold log loss %.4f, weight %.2f", name, entry["oof_log_loss"],
                    entry["weight"])
    ensemble_loss = log_loss(y, blended)
    logger.info("weighted ensemble: out-of-fold log loss %.4f (the configured head's %.4f)", ensemble_loss,
                table[configured]["oof_log_loss"])
    whole = dict(state.oof)
    # The configured head's bag may also hold a refit on every row: it stays in that member's bag.
    members[0] = (*members[0][:3], state.bag.learners, members[0][4] + (["oof/refit.keras"] if len(
        state.bag.learners) > len(folds) else []))
    state.bag = WeightedBag([(name, w, models) for w, (name, _, _, models, _) in zip(weights, members)])
    whole["pred"] = blended
    state.oof = whole
    state.metrics.update({"ensemble": table, "oof_log_loss_ensemble": ensemble_loss,
                          "oof_log_loss_configured_head": table[configured]["oof_log_loss"]})
    write_json(path, {"members": [
        {"name": name, "weight": float(w), "head": head, "oof_log_loss": table[name]["oof_log_loss"], "files": files}
        for w, (name, head, _, _, files) in zip(weights, members)], "rounds": int(config["ensemble"]["rounds"]),
        "oof_log_loss": ensemble_loss})


def _load(state: RunState, path: Path) -> WeightedBag:
    """The weighted bag a run saved, each fold model on its fold's data (the metadata encoder of its rows)."""
    from podium.evaluation.oof import fold_data, oof_folds
    from podium.files import read_json
    from podium.vision.learner import Learner

    run_dir, data, config = Path(state.run_dir), state.data, state.config
    rows = np.union1d(data.train_rows, data.valid_rows)
    folds = oof_folds(data.labelled["label"].to_numpy()[rows], data.labelled["group"].to_numpy()[rows],
                      strategy=config["data"]["split"], folds=int(config["oof"]["folds"]), seed=int(config["seed"]))
    parts = [(rows[train], rows[held]) for train, held in folds] + [(rows, data.valid_rows)]  # the last: a refit
    members = []
    for member in read_json(path)["members"]:
        if member["weight"] <= 0:
            continue
        if member["name"] == "logistic":
            models = [PooledLogistic.load(data, run_dir / file) for file in member["files"]]
        else:
            member_data = _member_data(data, dict(config, head=member["head"]), data.train_rows)
            models = [Learner.load(fold_data(member_data, *parts[min(number, len(parts) - 1)]), run_dir / file)
                      for number, file in enumerate(member["files"])]
        members.append((member["name"], member["weight"], models))
    return WeightedBag(members)
