"""Ids re-indexed on the training ratings, the fallback for unseen ids, and the tables the models look rows up in.

Index 0 is "unseen": every user or movie absent from the training ratings maps to it, so a
validation or test id can never claim a row of its own (no leak) and never crashes a lookup.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from podium.errors import PodiumError

# ML-1M's age groups, used for any age column.
AGE_EDGES = (18, 25, 35, 45, 50, 56)
# Rows per step when a pass over the ratings runs in chunks, so memory stays flat on memory-mapped arrays.
CHUNK_ROWS = 1 << 20
SECONDS_PER_DAY = 86_400
# timeSVD++'s exponent of the user drift: dev(t) = sign(t - mean day) |t - mean day| ** 0.4 (Koren, 2009).
DRIFT_POWER = 0.4


@dataclass
class IdIndex:
    """Sorted original ids seen in training; the index of `ids[k]` is k + 1, and 0 means unseen."""

    users: np.ndarray
    movies: np.ndarray

    @classmethod
    def fit(cls, user_ids, movie_ids) -> "IdIndex":
        """The distinct ids, found chunk by chunk so that memory-mapped ids are never loaded whole."""
        return cls(_distinct(user_ids), _distinct(movie_ids))

    @property
    def n_users(self) -> int:
        return len(self.users) + 1

    @property
    def n_movies(self) -> int:
        return len(self.movies) + 1

    def user_index(self, ids) -> np.ndarray:
        return _lookup(self.users, ids)

    def movie_index(self, ids) -> np.ndarray:
        return _lookup(self.movies, ids)


def chunks(n: int):
    """Slices of CHUNK_ROWS rows covering 0..n."""
    return (slice(start, min(start + CHUNK_ROWS, n)) for start in range(0, n, CHUNK_ROWS))


def _distinct(ids) -> np.ndarray:
    ids = ids if isinstance(ids, np.ndarray) else np.asarray(ids, dtype=np.int64)
    parts = [np.unique(np.asarray(ids[rows], dtype=np.int64)) for rows in chunks(len(ids))]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def _lookup(known: np.ndarray, ids) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64)
    if len(known) == 0:
        return np.zeros(len(ids), dtype=np.int32)
    position = np.clip(np.searchsorted(known, ids), 0, len(known) - 1)
    found = known[position] == ids
    return np.where(found, position + 1, 0).astype(np.int32)


@dataclass
class Baseline:
    """Global mean plus regularised user and movie biases: the prediction for any pair with an unseen id.

    Fitted by alternating least squares like Surprise's BaselineOnly (same default shrinkage), so a
    pair with an unseen user gets mean + movie bias, an unseen movie mean + user bias, both unseen the mean.
    """

    mean: float
    user_bias: np.ndarray  # by user index; [0] (unseen) is 0
    movie_bias: np.ndarray

    @classmethod
    def fit(cls, users: np.ndarray, movies: np.ndarray, ratings: np.ndarray, *, n_users: int, n_movies: int,
            user_shrinkage: float = 15.0, movie_shrinkage: float = 10.0, sweeps: int = 10) -> "Baseline":
        """Alternating sweeps over the ratings in chunks (arrays may be memory-mapped)."""
        n = len(ratings)
        mean = float(sum(np.asarray(ratings[rows], dtype=np.float64).sum() for rows in chunks(n)) / n)

        def sums(index, other_index, other_bias, minlength):
            total = np.zeros(minlength)
            for rows in chunks(n):
                residual = np.asarray(ratings[rows], dtype=np.float64) - mean - other_bias[other_index[rows]]
                total += np.bincount(index[rows], residual, minlength=minlength)
            return total

        def counts(index, minlength):
            return sum(np.bincount(index[rows], minlength=minlength) for rows in chunks(n))

        # Only ids without ratings can fall below 1 (their sums are 0): no 0/0 without shrinkage.
        user_denominator = np.maximum(user_shrinkage + counts(users, n_users), 1.0)
        movie_denominator = np.maximum(movie_shrinkage + counts(movies, n_movies), 1.0)
        user_bias, movie_bias = np.zeros(n_users), np.zeros(n_movies)
        for _ in range(sweeps):
            movie_bias = sums(movies, users, user_bias, n_movies) / movie_denominator
            user_bias = sums(users, movies, movie_bias, n_users) / user_denominator
        user_bias[0] = movie_bias[0] = 0.0
        return cls(mean, user_bias, movie_bias)

    def predict(self, users: np.ndarray, movies: np.ndarray) -> np.ndarray:
        return self.mean + self.user_bias[users] + self.movie_bias[movies]


@dataclass
class TimeFeatures:
    """What the time-aware terms read of a rating's date: its time bin and its user's drift.

    Bins split the training days evenly (a movie's popularity drifts slowly); the drift is
    timeSVD++'s dev(t) = sign(t - t_u) |t - t_u| ** 0.4 in days, t_u the user's mean training day,
    divided by its training RMS so one learning rate suits it. A date after training (the time
    split's future) falls in the last bin; an unknown date (timestamp <= 0) is the last training day.
    """

    first_day: float
    last_day: float
    bins: int
    user_mean_day: np.ndarray  # by user index; [0] (unseen) is the last training day
    drift_scale: float

    @classmethod
    def fit(cls, users: np.ndarray, timestamps: np.ndarray, *, n_users: int, bins: int) -> "TimeFeatures":
        n = len(timestamps)
        first_day, last_day, day_sums = np.inf, -np.inf, np.zeros(n_users)
        for rows in chunks(n):
            days = np.asarray(timestamps[rows], dtype=np.float64) / SECONDS_PER_DAY
            first_day, last_day = min(first_day, days.min()), max(last_day, days.max())
            day_sums += np.bincount(users[rows], days, minlength=n_users)
        rated = sum(np.bincount(users[rows], minlength=n_users) for rows in chunks(n))
        user_mean_day = np.where(rated > 0, day_sums / np.maximum(rated, 1), last_day)
        features = cls(float(first_day), float(last_day), int(bins), user_mean_day, 1.0)
        square_sum = sum(float((features.transform(users[rows], timestamps[rows])[1].astype(np.float64) ** 2).sum())
                         for rows in chunks(n))
        features.drift_scale = float(np.sqrt(square_sum / n)) or 1.0  # every user rating on one day: no drift
        return features

    def transform(self, users: np.ndarray, timestamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(time bin (int32), scaled drift (float32)) of each rating."""
        stamps = np.asarray(timestamps, dtype=np.float64)
        days = np.where(stamps > 0, stamps / SECONDS_PER_DAY, self.last_day)
        width = max(self.last_day - self.first_day, 1e-9) / self.bins
        time_bin = np.clip(np.floor((days - self.first_day) / width), 0, self.bins - 1).astype(np.int32)
        delta = days - self.user_mean_day[np.asarray(users)]
        drift = np.sign(delta) * np.abs(delta) ** DRIFT_POWER / self.drift_scale
        return time_bin, drift.astype(np.float32)

    def state(self) -> dict:
        return {"first_day": self.first_day, "last_day": self.last_day, "bins": self.bins,
                "user_mean_day": self.user_mean_day.tolist(), "drift_scale": self.drift_scale}

    @classmethod
    def from_state(cls, state: dict) -> "TimeFeatures":
        return cls(state["first_day"], state["last_day"], state["bins"], np.asarray(state["user_mean_day"]),
                   state["drift_scale"])


def rated_pairs(rows, columns, *, n_rows: int, n_columns: int):
    """The sparse "rated" table (SVD++'s implicit feedback) as `podium.collab.layers.RatedBag` holds it:
    (row_starts, row_counts, columns), int32, the distinct (row, column) pairs sorted by row.

    `rows` and `columns` are index arrays or lists of them read in step (e.g. the training ratings' memory
    maps and the pairs to predict), a chunk at a time: memory is one int64 key per pair, never rows x columns
    and no widened copy of the inputs."""
    row_parts, column_parts = (list(x) if isinstance(x, (list, tuple)) else [x] for x in (rows, columns))
    keys = np.empty(sum(len(part) for part in row_parts), dtype=np.int64)
    filled = 0
    for row_part, column_part in zip(row_parts, column_parts):
        for chunk in chunks(len(row_part)):
            block = np.asarray(row_part[chunk], dtype=np.int64) * n_columns + np.asarray(column_part[chunk])
            keys[filled:filled + len(block)] = block
            filled += len(block)
    keys.sort()
    distinct = np.empty(len(keys), dtype=bool)
    distinct[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
    keys = keys[distinct]
    del distinct
    counts, held = np.zeros(n_rows, dtype=np.int64), np.empty(len(keys), dtype=np.int32)
    for chunk in chunks(len(keys)):
        counts += np.bincount(keys[chunk] // n_columns, minlength=n_rows)
        held[chunk] = keys[chunk] % n_columns
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return starts.astype(np.int32), counts.astype(np.int32), held


def user_feature_table(users: pd.DataFrame, index: IdIndex) -> tuple[np.ndarray, list[str]]:
    """(n_users x vocabulary table, vocabulary): one-hot age group, gender and occupation of each known user."""
    known = users[users["userId"].isin(index.users)].drop_duplicates("userId")
    age_group = np.searchsorted(AGE_EDGES, known["age"].to_numpy(), side="right")
    labels = {"age": [f"age<{AGE_EDGES[0]}" if g == 0 else f"age{AGE_EDGES[g - 1]}+" for g in age_group],
              "gender": [f"gender={v}" for v in known["gender"]],
              "occupation": [f"occupation={v}" for v in known["occupation"]]}
    return _one_hot_table(index.user_index(known["userId"]), labels, n_rows=index.n_users)


def movie_feature_table(movies: pd.DataFrame, index: IdIndex) -> tuple[np.ndarray, list[str]]:
    """(n_movies x vocabulary table, vocabulary): genres (multi-hot) and release decade of each known movie."""
    known = movies[movies["movieId"].isin(index.movies)].drop_duplicates("movieId")
    decade = [f"{int(y) // 10 * 10}s" if np.isfinite(y) else "" for y in known["year"]]
    genres = [g.split("|") if g else [] for g in known["genres"]]
    labels = {"decade": [[d] if d else [] for d in decade], "genre": genres}
    return _one_hot_table(index.movie_index(known["movieId"]), labels, n_rows=index.n_movies)


def _one_hot_table(rows: np.ndarray, labels: dict, *, n_rows: int) -> tuple[np.ndarray, list[str]]:
    per_row = [[] for _ in rows]
    for values in labels.values():
        for k, value in enumerate(values):
            per_row[k].extend(value if isinstance(value, list) else [value])
    vocabulary = sorted({label for row_labels in per_row for label in row_labels})
    column = {label: k for k, label in enumerate(vocabulary)}
    table = np.zeros((n_rows, max(len(vocabulary), 1)), dtype=np.float32)
    for row, row_labels in zip(rows, per_row):
        for label in row_labels:
            table[row, column[label]] = 1.0
    return _normalise_rows(table), vocabulary


def _normalise_rows(table: np.ndarray) -> np.ndarray:
    # 1/sqrt(count) keeps a heavy rater's sum on the scale of a light rater's (as in SVD++).
    counts = table.sum(axis=1, keepdims=True)
    return table / np.sqrt(np.maximum(counts, 1.0))
