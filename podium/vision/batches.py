"""Training batches drawn from cached feature arrays (memory maps): only a batch is ever in memory."""
from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np


@dataclass
class RowSource:
    """Rows `rows` of the arrays in `inputs` (name -> array), with their `targets` (one row each)."""

    inputs: dict
    rows: np.ndarray
    targets: object = None  # array (len(rows), ...) or dict name -> array, or None for prediction
    name: str = ""
    weights: np.ndarray | None = field(default=None)

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, positions: np.ndarray):
        """Inputs and targets at `positions` (indices into `rows`), in that order; the arrays (memory maps)
        are read in file order, which is what makes a random batch cheap to read."""
        rows = self.rows[positions]
        order = np.argsort(rows, kind="stable")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        x = {name: as_input(array[rows[order]])[inverse] for name, array in self.inputs.items()}
        y = None
        if self.targets is not None:
            y = ({k: np.asarray(v)[positions] for k, v in self.targets.items()} if isinstance(self.targets, dict)
                 else np.asarray(self.targets)[positions])
        return x, y


def as_input(array) -> np.ndarray:
    """Rows as a model takes them: features cached in float16 (`image.cache_dtype`) widened to float32."""
    array = np.asarray(array)
    return array.astype(np.float32) if array.dtype == np.float16 else array


def concatenate_parts(parts):
    xs, ys = zip(*parts)
    x = {name: np.concatenate([part[name] for part in xs]) for name in xs[0]}
    if ys[0] is None:
        return x, None
    if isinstance(ys[0], dict):
        return x, {k: np.concatenate([y[k] for y in ys]) for k in ys[0]}
    return x, np.concatenate(ys)


def model_inputs(x: dict):
    # A single-input model takes the bare array; a multi-input model takes the dict by input name.
    return next(iter(x.values())) if len(x) == 1 else x


class FeatureBatches(keras.utils.PyDataset):
    """Shuffled (or ordered) batches over one or more row sources, e.g. the plain and augmented passes."""

    def __init__(self, sources, *, batch_size: int = 64, shuffle: bool = False, seed: int = 0):
        super().__init__()
        self.sources = [s for s in sources if len(s)]
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._index = np.concatenate([
            np.stack([np.full(len(s), k), np.arange(len(s))], axis=1) for k, s in enumerate(self.sources)
        ]) if self.sources else np.zeros((0, 2), dtype=np.int64)
        if shuffle:
            self._rng.shuffle(self._index)

    def __len__(self) -> int:
        return (len(self._index) + self.batch_size - 1) // self.batch_size

    def batch_plan(self, index: int) -> list[tuple[int, np.ndarray]]:
        """(source number, positions in that source) making up batch `index`."""
        chunk = self._index[index * self.batch_size:(index + 1) * self.batch_size]
        return [(k, chunk[chunk[:, 0] == k, 1]) for k in np.unique(chunk[:, 0])]

    def __getitem__(self, index):
        parts = [self.sources[k].take(positions) for k, positions in self.batch_plan(index)]
        x, y = concatenate_parts(parts)
        return (model_inputs(x),) if y is None else (model_inputs(x), y)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._rng.shuffle(self._index)
