"""Test-neighbour smoothing: average each prediction with those of its k nearest images of the same split.

State Farm's test photos are frames of a few drivers' videos: an image's nearest neighbours in
feature space are mostly the same driver a moment before or after, doing the same thing. Averaging
a prediction with its neighbours' removes much of the single-frame noise (a known strong technique
in that competition). Only the split's own features and predictions are used, never a label: test
rows are smoothed with test rows, validation rows with validation rows.

k is chosen on predictions the model never trained on: the out-of-fold predictions (neighbours
within each held-out fold, which, like the test set, is a set of unseen groups) when the `oof`
stage ran, else the hold-out's. k = 0 (no smoothing) is always a candidate, so a data set where
neighbours do not help keeps its predictions.
"""
from __future__ import annotations

import numpy as np

from podium.config import whole_number_text
from podium.core.metrics import log_loss
from podium.core.stage import RunState, Stage, register_stage
from podium.errors import PodiumError
from podium.log import logger
from podium.vision.cache import pooled_means

__all__ = ["NeighbourSmoothing", "neighbour_index", "pooled", "smooth", "smooth_split"]

K_GRID = (0, 1, 2, 3, 5, 8, 12, 20)


BLOCK_ROWS = 512  # rows whose similarities to every row are held at once: 512 x 80,000 float32 is 160 MB


def pooled(features, rows=None) -> np.ndarray:
    """One L2-normalised float32 vector per row (of `rows`, default all): the spatial mean of a feature map, or
    the features as they are, centred on their mean (`cache.pooled_means`: the maps are never read whole)."""
    return _centred_unit(pooled_means(features, rows))


def _centred_unit(vectors: np.ndarray) -> np.ndarray:
    if len(vectors) > 1:
        vectors -= vectors.mean(axis=0, dtype=np.float64, keepdims=True).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def neighbour_index(vectors: np.ndarray, k: int, *, block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """(rows, k) positions of each row's k most similar other rows (cosine), nearest first.

    Exact, a block of rows against all rows at a time (float32): memory is `block_rows` x rows, never
    rows x rows (the whole matrix of State Farm's 79,726 test photos would be 25 GB in float32)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    k = min(int(k), len(vectors) - 1)
    if k <= 0:
        return np.zeros((len(vectors), 0), dtype=np.int64)
    index = np.empty((len(vectors), k), dtype=np.int64)
    for start in range(0, len(vectors), block_rows):
        stop = min(start + block_rows, len(vectors))
        similarity = vectors[start:stop] @ vectors.T
        similarity[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # never its own neighbour
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarity, nearest, axis=1), axis=1, kind="stable")
        index[start:stop] = np.take_along_axis(nearest, order, axis=1)
    return index


def smooth(preds: np.ndarray, vectors: np.ndarray, k: int, *, index: np.ndarray | None = None) -> np.ndarray:
    """Each row's prediction averaged with its k nearest rows' (itself counted once); `index`: a precomputed
    `neighbour_index` of at least k columns (nearest first), so several k share one search."""
    preds = np.asarray(preds, dtype=np.float64)
    if k <= 0 or len(preds) < 2:
        return preds.copy()
    index = neighbour_index(vectors, k) if index is None else index[:, :min(int(k), len(preds) - 1)]
    return (preds + preds[index].sum(axis=1)) / (1 + index.shape[1])


def split_vectors(data, split: str) -> np.ndarray:
    """Pooled plain-pass features of a split's rows, in the split's row order (test: test features only)."""
    if split == "test":
        return pooled(data.test_features(0))
    rows = data.valid_rows if split == "valid" else data.train_rows
    return pooled(data.labelled_features(0), rows)


def smooth_split(data, split: str, preds: np.ndarray, *, k: int) -> np.ndarray:
    return smooth(preds, split_vectors(data, split), k)


def choose_k(y_index, preds, vectors, groups_of_rows=None, grid=K_GRID) -> tuple[int, dict]:
    """The k of lowest log loss, smoothing within each part of `groups_of_rows` (lists of positions)."""
    parts = groups_of_rows or [np.arange(len(preds))]
    # One search per part for the largest k: the k nearest are the first k columns of it.
    indexes = [neighbour_index(vectors[part], max(grid)) for part in parts]
    scores = {}
    for k in grid:
        smoothed = np.asarray(preds, dtype=np.float64).copy()
        for part, index in zip(parts, indexes):
            smoothed[part] = smooth(preds[part], vectors[part], k, index=index)
        scores[int(k)] = log_loss(y_index, smoothed)
    best = min(scores, key=lambda k: (scores[k], k))
    return best, scores


def _smoothed(preds, vectors, parts, k: int) -> np.ndarray:
    smoothed = np.asarray(preds, dtype=np.float64).copy()
    for part in parts or [np.arange(len(preds))]:
        smoothed[part] = smooth(preds[part], vectors[part], k)
    return smoothed


def _keep_beyond_noise(state: RunState, y, preds, smoothed, k: int) -> int:
    """`k`, or 0 when smoothing does not lower the per-row loss by more than its noise (recorded under `steps`)."""
    from podium.core.metrics import gain_beyond_noise, log_losses

    verdict = gain_beyond_noise(log_losses(y, preds), log_losses(y, smoothed))
    verdict.update({"fitted": int(k), "log_loss_before": log_loss(y, preds), "log_loss_after": log_loss(y, smoothed)})
    if not verdict["kept"]:
        verdict["why"] = f"k={k} lowered the loss by {verdict['gain']:.5f}, within its noise ({verdict['noise']:.5f})"
    state.metrics.setdefault("steps", {})["neighbours"] = verdict
    return int(k) if verdict["kept"] else 0


@register_stage
class NeighbourSmoothing(Stage):
    name = "neighbours"
    order = 70
    reads = ("neighbours", "tta")
    on_predict = True  # `podium predict` smooths with the k the run chose (neighbours.json)
    leaves = ("neighbours.json",)

    @classmethod
    def enabled(cls, config: dict) -> bool:
        return bool(config.get("neighbours", {}).get("enabled", False))

    @classmethod
    def check(cls, plugin, config: dict, data_dir=None) -> None:
        k = config["neighbours"]["k"]
        if isinstance(k, bool) or not (str(k).strip() == "auto" or whole_number_text(k)):
            raise PodiumError(f"neighbours.k must be \"auto\" or a whole number >= 0, got {k!r}")

    def run(self, state: RunState) -> None:
        from pathlib import Path

        from podium.files import read_json, write_json

        path = Path(state.run_dir) / "neighbours.json"
        if "data" not in state.completed:  # predicting again: the k this run chose
            if path.is_file():
                state.neighbours = read_json(path)
                if not isinstance(state.neighbours, dict) or type(state.neighbours.get("k")) is not int:
                    raise PodiumError(f"{path} lacks the k the run chose; train the run again")
            return
        data, plugin, config = state.data, state.plugin, state.config
        oof = getattr(state, "oof", None)
        fixed = str(config["neighbours"]["k"]).strip()
        if oof is not None:
            vectors = pooled(data.labelled_features(0), oof["rows"])
            y, preds = plugin.label_indices(oof["labels"]), oof["pred"]
            parts = [held for _, held in oof["folds"]]
            source = "oof"
        else:
            vectors = split_vectors(data, "valid")
            y = plugin.label_indices(data.valid_labels)
            preds = np.mean(state.learner.tta("valid", int(config["tta"]["views"])), axis=0)
            parts, source = None, "valid"
        k, scores = choose_k(y, preds, vectors, parts) if fixed == "auto" else (int(fixed), {})
        if not scores:
            _, scores = choose_k(y, preds, vectors, parts, grid=(0, k))
        if fixed == "auto" and k > 0:  # kept only when it lowers the loss beyond its noise
            k = _keep_beyond_noise(state, y, preds, _smoothed(preds, vectors, parts, k), k)
        state.neighbours = {"k": int(k), "chosen_on": source}
        if getattr(state, "record", "full") != "metrics":  # a tuning trial records metrics only
            write_json(path, state.neighbours)
        if oof is not None:
            state.oof_smoothed = _smoothed(preds, vectors, parts, k)
        state.metrics.update({"neighbours_k": int(k), "neighbours_chosen_on": source,
                              f"{source}_log_loss_before_neighbours": scores[0],
                              f"{source}_log_loss_after_neighbours": scores[int(k)]})
        logger.info("neighbour smoothing: k=%d chosen on %s (log loss %.4f with no smoothing, %.4f with k=%d)",
                    k, source, scores[0], scores[int(k)], k)
