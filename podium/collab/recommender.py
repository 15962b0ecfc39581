"""`Recommender`: fit a rating model on (userId, movieId, rating), predict any pairs, save and load it.

Ids are re-indexed on the ratings given to `fit` only. A pair whose user or movie was not in
them is predicted by the fallback `Baseline` (global mean plus the known bias), never by the
network. Early stopping watches a seeded `holdout` share of the fitting ratings, so the data
the model is scored on later is never used to choose its epoch.

Training streams batches from memory-mapped files (`podium.collab.stream`): `fit` writes a
frame's ratings to a temporary folder, `fit_arrays` trains on such files directly, and every pass
over the ratings (indexing, the fallback, the time features) runs in chunks, so memory does not
grow with the number of ratings. With `time`, timeSVD++'s drifting biases join the model.
`implicit_pairs` (who is to rate what, e.g. the test pairs) widen the implicit feedback; only
their ids are read. A user or movie seen only in them gets a row of the model too (its implicit
feedback is all that is known of it, and says more than the fallback), but still counts as unseen.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.files import atomic_save, atomic_write_text
from podium.collab.data import (Baseline, IdIndex, TimeFeatures, chunks, movie_feature_table, rated_pairs,
                                user_feature_table)
from podium.collab.stream import RatingBatches, create_arrays, write_rating_files

MODEL_FILE = "model.keras"
STATE_FILE = "recommender.json"


class Recommender:
    """A Keras rating model with its id index and fallback; keyword parameters map onto config model/train."""

    def __init__(self, *, kind: str = "dot", factors: int = 50, reg: float = 3e-4, bias_reg: float = 1e-5,
                 implicit: bool = True, units=(128, 32), dropout: float = 0.3, init_scale: float = 0.01,
                 time: bool = False, time_bins: int = 30, time_reg: float = 1e-3,
                 epochs: int = 40, batch_size: int = 512, lr: float = 1e-3, patience: int = 5,
                 holdout: float = 0.05, seed: int = 42, verbose="auto"):
        self.kind, self.factors, self.reg, self.bias_reg = kind, int(factors), float(reg), float(bias_reg)
        self.implicit, self.units, self.dropout = bool(implicit), [int(u) for u in units], float(dropout)
        self.init_scale, self.time, self.time_bins = float(init_scale), bool(time), int(time_bins)
        self.time_reg = float(time_reg)
        self.epochs, self.batch_size, self.lr = int(epochs), int(batch_size), float(lr)
        self.patience, self.holdout, self.seed, self.verbose = int(patience), float(holdout), int(seed), verbose
        self.model = None
        self.index: IdIndex | None = None
        self.baseline: Baseline | None = None
        # Indices of ids known from the implicit pairs only (no training rating).
        self.unrated_users, self.unrated_movies = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        self.time_features: TimeFeatures | None = None
        self.rating_range: tuple[float, float] | None = None
        self.history = pd.DataFrame()
        self.fit_seconds = 0.0

    @classmethod
    def from_config(cls, config: dict, **overrides) -> "Recommender":
        model, train = config["model"], config["train"]
        params = dict(kind=model["kind"], factors=model["factors"], reg=model["reg"], bias_reg=model["bias_reg"],
                      implicit=model["implicit"], units=model["units"], dropout=model["dropout"],
                      init_scale=model["init_scale"], time=model["time"], time_bins=model["time_bins"],
                      time_reg=model["time_reg"],
                      epochs=train["epochs"], batch_size=train["batch_size"],
                      lr=train["lr"], patience=train["patience"], holdout=train["holdout"], seed=config["seed"])
        return cls(**{**params, **overrides})

    # -- training ------------------------------------------------------------------------------
    def fit(self, ratings: pd.DataFrame, *, users: pd.DataFrame | None = None, movies: pd.DataFrame | None = None,
            implicit_pairs: pd.DataFrame | None = None, callbacks=()) -> "Recommender":
        """Train on `ratings` (userId, movieId, rating, and timestamp for `time`), streamed from a temporary copy.

        `users` / `movies`: metadata frames for kind "meta"; `implicit_pairs`: see `fit_arrays`.
        """
        if self.time and "timestamp" not in ratings:
            raise PodiumError("model.time needs the ratings' timestamps, and these ratings have none")
        with tempfile.TemporaryDirectory(prefix="podium-ratings-") as folder:
            arrays = write_rating_files(Path(folder) / "ratings", ratings, seed=self.seed)
            return self.fit_arrays(arrays, work_dir=Path(folder), users=users, movies=movies,
                                   implicit_pairs=implicit_pairs, callbacks=callbacks)

    def fit_arrays(self, arrays: dict, *, work_dir: Path, users: pd.DataFrame | None = None,
                   movies: pd.DataFrame | None = None, implicit_pairs: pd.DataFrame | None = None, callbacks=(),
                   max_batches: int | None = None) -> "Recommender":
        """Train on memory-mapped rating arrays (`podium.collab.stream.RATING_COLUMNS`, rows in random order).

        `work_dir` receives the indexed copies the batches are read from. `implicit_pairs` (userId,
        movieId; nothing else is read) join the implicit feedback: who is to rate what says something
        of taste before any rating. `max_batches` caps each epoch (benchmarks time a share of one).
        """
        import keras

        from podium.collab.layers import RefreshBags
        from podium.collab.models import build_model, fill_tables

        n = len(arrays["rating"])
        if n < 2:
            raise PodiumError(f"cannot train a rating model on {n} rating(s)")
        if not 0.0 <= self.holdout < 1.0:
            raise PodiumError(f"train.holdout must be in [0, 1), got {self.holdout}")
        held = int(round(self.holdout * n))
        if self.holdout and (held < 1 or held >= n):
            raise PodiumError(f"train.holdout={self.holdout} of {n} ratings leaves no rows to hold out or to fit")
        if self.time and self.time_bins < 1:
            raise PodiumError(f"model.time_bins must be at least 1, got {self.time_bins}")
        started = time.perf_counter()
        keras.utils.set_random_seed(self.seed)
        ratings = arrays["rating"]
        self.rating_range = (min(float(ratings[rows].min()) for rows in chunks(n)),
                             max(float(ratings[rows].max()) for rows in chunks(n)))
        if self.rating_range[0] == self.rating_range[1]:
            raise PodiumError(f"every training rating is {self.rating_range[0]:g}: nothing to learn")
        self.index = IdIndex.fit(arrays["userId"], arrays["movieId"])
        if self.implicit and implicit_pairs is not None and len(implicit_pairs):
            rated = self.index
            self.index = IdIndex(np.union1d(rated.users, implicit_pairs["userId"].to_numpy(dtype=np.int64)),
                                 np.union1d(rated.movies, implicit_pairs["movieId"].to_numpy(dtype=np.int64)))
            self.unrated_users = np.flatnonzero(~np.isin(self.index.users, rated.users)) + 1
            self.unrated_movies = np.flatnonzero(~np.isin(self.index.movies, rated.movies)) + 1
        n_users, n_movies = self.index.n_users, self.index.n_movies
        columns = {"user": np.int32, "movie": np.int32}
        if self.time:
            columns.update(time_bin=np.int32, drift=np.float32)
        inputs = create_arrays(Path(work_dir) / "indexed", n, columns)
        for rows in chunks(n):
            inputs["user"][rows] = self.index.user_index(arrays["userId"][rows])
            inputs["movie"][rows] = self.index.movie_index(arrays["movieId"][rows])
        self.baseline = Baseline.fit(inputs["user"], inputs["movie"], ratings, n_users=n_users, n_movies=n_movies)
        if self.time:
            self.time_features = TimeFeatures.fit(inputs["user"], arrays["timestamp"], n_users=n_users,
                                                  bins=self.time_bins)
            for rows in chunks(n):
                inputs["time_bin"][rows], inputs["drift"][rows] = self.time_features.transform(
                    inputs["user"][rows], arrays["timestamp"][rows])

        tables, sizes = {}, {}
        if self.implicit:
            rated_users, rated_movies = self._implicit_pairs(inputs, implicit_pairs)
            tables["user_implicit"] = rated_pairs(rated_users, rated_movies, n_rows=n_users, n_columns=n_movies)
            # The movie side is normalised by each movie's own count of raters.
            tables["movie_implicit"] = rated_pairs(rated_movies, rated_users, n_rows=n_movies, n_columns=n_users)
            sizes["rated_pairs"] = len(tables["user_implicit"][2])
        if self.kind == "meta":
            if users is not None:
                tables["user_meta"], vocabulary = user_feature_table(users, self.index)
                tables["user_meta_bias"], sizes["user_features"] = tables["user_meta"], len(vocabulary)
            if movies is not None:
                tables["movie_meta"], vocabulary = movie_feature_table(movies, self.index)
                tables["movie_meta_bias"], sizes["movie_features"] = tables["movie_meta"], len(vocabulary)
        self.model = build_model(self.kind, n_users=n_users, n_movies=n_movies, rating_range=self.rating_range,
                                 mean=self.baseline.mean, factors=self.factors, reg=self.reg,
                                 bias_reg=self.bias_reg, implicit=self.implicit, units=self.units,
                                 dropout=self.dropout, init_scale=self.init_scale,
                                 time_bins=self.time_bins if self.time else 0, time_reg=self.time_reg,
                                 seed=self.seed, **sizes)
        fill_tables(self.model, tables)
        del tables  # the model holds its own copies
        self.model.compile(optimizer=keras.optimizers.Adam(self.lr), loss="mse",
                           metrics=[keras.metrics.RootMeanSquaredError(name="rmse")])

        # The rows are in random order, so the first `held` are a random share that chooses the epoch.
        batches = RatingBatches(inputs, ratings, start=held, stop=n, batch_size=self.batch_size, seed=self.seed,
                                max_batches=max_batches)
        validation = None
        monitors = list(callbacks)
        if held:
            validation = RatingBatches(inputs, ratings, start=0, stop=held, batch_size=max(self.batch_size, 8192),
                                       seed=self.seed, max_batches=max_batches)
            monitors.append(keras.callbacks.EarlyStopping(monitor="val_rmse", patience=self.patience,
                                                          restore_best_weights=True))
        monitors.append(RefreshBags())  # after early stopping, which puts the best weights back at the end
        history = self.model.fit(batches, validation_data=validation, epochs=self.epochs, callbacks=monitors,
                                 verbose=self.verbose)
        self.history = pd.DataFrame(history.history)
        self.history.insert(0, "epoch", np.arange(1, len(self.history) + 1))
        self.fit_seconds = time.perf_counter() - started
        return self

    def _implicit_pairs(self, inputs: dict, implicit_pairs: pd.DataFrame | None) -> tuple[list, list]:
        """(user, movie) indices of the training ratings (their memory maps) plus the given pairs (indexed too,
        see `fit_arrays`), as lists of arrays read in step."""
        users, movies = [inputs["user"]], [inputs["movie"]]
        if implicit_pairs is not None and not implicit_pairs.empty:
            users.append(self.index.user_index(implicit_pairs["userId"]))
            movies.append(self.index.movie_index(implicit_pairs["movieId"]))
        return users, movies

    # -- prediction ---------------------------------------------------------------------------
    def unseen(self, user_ids, movie_ids) -> tuple[np.ndarray, np.ndarray]:
        """Boolean masks: user without training ratings, movie without training ratings."""
        self._check_fitted()
        users, movies = self.index.user_index(user_ids), self.index.movie_index(movie_ids)
        return (users == 0) | np.isin(users, self.unrated_users), (movies == 0) | np.isin(movies, self.unrated_movies)

    def predict(self, user_ids, movie_ids, *, timestamps=None, batch_size: int = 8192) -> np.ndarray:
        """Predicted ratings, clipped to the training range; ids absent from the training ratings and from
        the implicit pairs get the baseline fallback.

        `timestamps` (Unix seconds) date the ratings for a time-aware model; None, or a timestamp
        <= 0, means the last training day.
        """
        self._check_fitted()
        users, movies = self.index.user_index(user_ids), self.index.movie_index(movie_ids)
        predictions = self.baseline.predict(users, movies)
        known = (users > 0) & (movies > 0)
        if known.any():
            inputs = {"user": users[known], "movie": movies[known]}
            if self.time_features is not None:
                stamps = np.zeros(len(users)) if timestamps is None else np.asarray(timestamps, dtype=np.float64)
                inputs["time_bin"], inputs["drift"] = self.time_features.transform(users[known], stamps[known])
            scored = self.model.predict(inputs, batch_size=batch_size, verbose=0)
            predictions[known] = np.asarray(scored, dtype=np.float64).reshape(-1)
        return np.clip(predictions, *self.rating_range)

    def movie_representation(self, movie_ids) -> tuple[np.ndarray, np.ndarray]:
        """(learned offsets, learned vectors) of movies seen in training, as the model uses them."""
        import keras

        self._check_fitted()
        movies = self.index.movie_index(movie_ids)
        if (movies == 0).any():
            raise PodiumError("movie_representation takes movies seen in training only")
        probe = keras.Model(self.model.get_layer("movie").output,
                            [self.model.get_layer("movie_offset").output, self.model.get_layer("movie_vector").output])
        offsets, vectors = probe.predict(movies, batch_size=8192, verbose=0)
        return np.asarray(offsets).reshape(-1), np.asarray(vectors)

    def _check_fitted(self) -> None:
        if self.model is None:
            raise PodiumError("this Recommender is not fitted yet: call fit() or Recommender.load()")

    # -- files ----------------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        """Write model.keras and recommender.json (ids, fallback, range, parameters) into `folder`."""
        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_save(folder / MODEL_FILE, self.model.save)
        state = {
            "params": {name: getattr(self, name) for name in (
                "kind", "factors", "reg", "bias_reg", "implicit", "units", "dropout", "init_scale", "time",
                "time_bins", "time_reg", "epochs",
                "batch_size", "lr", "patience", "holdout", "seed")},
            "rating_range": list(self.rating_range),
            "users": self.index.users.tolist(),
            "movies": self.index.movies.tolist(),
            "baseline": {"mean": self.baseline.mean, "user_bias": self.baseline.user_bias.tolist(),
                         "movie_bias": self.baseline.movie_bias.tolist()},
            "unrated_users": self.unrated_users.tolist(),
            "unrated_movies": self.unrated_movies.tolist(),
            "time_features": self.time_features.state() if self.time_features is not None else None,
        }
        atomic_write_text(folder / STATE_FILE, json.dumps(state))
        return folder / MODEL_FILE

    @classmethod
    def load(cls, folder: Path) -> "Recommender":
        import keras

        from podium.collab import layers  # noqa: F401  (registers the custom layers for loading)

        folder = Path(folder)
        for name in (MODEL_FILE, STATE_FILE):
            if not (folder / name).is_file():
                raise PodiumError(f"{folder / name} not found: not a finished collaborative-filtering run")
        state = json.loads((folder / STATE_FILE).read_text())
        recommender = cls(**state["params"])
        recommender.model = keras.saving.load_model(folder / MODEL_FILE, compile=False)
        recommender.rating_range = tuple(state["rating_range"])
        recommender.index = IdIndex(np.asarray(state["users"], dtype=np.int64),
                                    np.asarray(state["movies"], dtype=np.int64))
        baseline = state["baseline"]
        recommender.baseline = Baseline(baseline["mean"], np.asarray(baseline["user_bias"]),
                                        np.asarray(baseline["movie_bias"]))
        recommender.unrated_users = np.asarray(state.get("unrated_users", []), dtype=np.int64)
        recommender.unrated_movies = np.asarray(state.get("unrated_movies", []), dtype=np.int64)
        if state.get("time_features"):
            recommender.time_features = TimeFeatures.from_state(state["time_features"])
        return recommender

