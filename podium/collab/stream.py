"""Training batches read from memory-mapped arrays, so a fit's memory does not grow with the ratings.

The rating files of a folder (one `.npy` per column, rows in random order) are opened as memory
maps; a batch is a contiguous slice of them, and each epoch visits the batches in a new seeded
order. Rows are shuffled once when written, so a contiguous slice is a random sample; only the
batch order (a few bytes per batch) lives in memory.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from podium.errors import PodiumError
from podium.collab.data import chunks

# The columns a rating folder holds: ids as in the source data, the rating, the Unix time (0 = unknown).
RATING_COLUMNS = {"userId": np.int64, "movieId": np.int64, "rating": np.float32, "timestamp": np.int64}


def create_arrays(folder: Path, rows: int, columns: dict) -> dict:
    """Writable memory-mapped `.npy` files of `rows` rows in `folder`, one per column name -> dtype."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {name: np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=dtype, shape=(rows,))
            for name, dtype in columns.items()}


def open_arrays(folder: Path, names) -> dict:
    """Read-only memory maps of the named `.npy` files of `folder`."""
    folder = Path(folder)
    missing = [name for name in names if not (folder / f"{name}.npy").is_file()]
    if missing:
        raise PodiumError(f"{folder} lacks {', '.join(f'{name}.npy' for name in missing)}")
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in names}
    lengths = {len(values) for values in arrays.values()}
    if len(lengths) != 1:
        raise PodiumError(f"the arrays of {folder} differ in length: {sorted(lengths)}")
    return arrays


def write_rating_files(folder: Path, ratings, *, seed: int) -> dict:
    """The userId, movieId, rating, timestamp columns of a frame, rows in a seeded random order, as memory maps."""
    order = np.random.default_rng(seed).permutation(len(ratings))
    arrays = create_arrays(folder, len(ratings), RATING_COLUMNS)
    for name, values in arrays.items():
        column = ratings[name].to_numpy() if name in ratings else np.zeros(len(ratings))
        for rows in chunks(len(ratings)):
            values[rows] = column[order[rows]]
        values.flush()
    return open_arrays(folder, RATING_COLUMNS)


class RatingBatches(keras.utils.PyDataset):
    """Batches of rows [start, stop) of memory-mapped `inputs` (name -> array) and `target`.

    `max_batches` caps the batches of an epoch (a measured fraction of an epoch, for benchmarks).
    """

    def __init__(self, inputs: dict, target, *, start: int, stop: int, batch_size: int, seed: int,
                 max_batches: int | None = None):
        super().__init__()
        self.inputs, self.target = inputs, target
        self.start, self.stop, self.batch_size = int(start), int(stop), int(batch_size)
        self.rng = np.random.default_rng(seed)
        count = -(-(self.stop - self.start) // self.batch_size)
        self.count = count if max_batches is None else min(count, int(max_batches))
        self.order = self.rng.permutation(count)[:self.count]

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, position: int):
        first = self.start + int(self.order[position]) * self.batch_size
        rows = slice(first, min(first + self.batch_size, self.stop))
        return ({name: np.asarray(values[rows]) for name, values in self.inputs.items()},
                np.asarray(self.target[rows], dtype=np.float32))

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(-(-(self.stop - self.start) // self.batch_size))[:self.count]
