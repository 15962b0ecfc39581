"""`Recommender`: fit a rating model on (userId, movieId, rating), predict any pairs, save and load it.

Ids are re-indexed on the ratings given to `fit` only. A pair whose user or movie was not in
them is predicted by the fallback `Baseline` (global mean plus the known bias), never by the
network. Early stopping watches a seeded `holdout` share of the fitting ratings, so the data
the model is scored on later is never used to choose its epoch.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.files import atomic_write_text
from podium.collab.data import Baseline, IdIndex, movie_feature_table, rated_table, user_feature_table

MODEL_FILE = "model.keras"
STATE_FILE = "recommender.json"


class Recommender:
    """A Keras rating model with its id index and fallback; keyword parameters map onto config model/train."""

    def __init__(self, *, kind: str = "dot", factors: int = 50, reg: float = 3e-4, bias_reg: float = 1e-5,
                 implicit: bool = True, units=(128, 32), dropout: float = 0.3, init_scale: float = 0.01,
                 epochs: int = 40, batch_size: int = 512, lr: float = 2e-3, patience: int = 3,
                 holdout: float = 0.05, seed: int = 42, verbose="auto"):
        self.kind, self.factors, self.reg, self.bias_reg = kind, int(factors), float(reg), float(bias_reg)
        self.implicit, self.units, self.dropout = bool(implicit), [int(u) for u in units], float(dropout)
        self.init_scale = float(init_scale)
        self.epochs, self.batch_size, self.lr = int(epochs), int(batch_size), float(lr)
        self.patience, self.holdout, self.seed, self.verbose = int(patience), float(holdout), int(seed), verbose
        self.model = None
        self.index: IdIndex | None = None
        self.baseline: Baseline | None = None
        self.rating_range: tuple[float, float] | None = None
        self.history = pd.DataFrame()
        self.fit_seconds = 0.0

    @classmethod
    def from_config(cls, config: dict, **overrides) -> "Recommender":
        model, train = config["model"], config["train"]
        params = dict(kind=model["kind"], factors=model["factors"], reg=model["reg"], bias_reg=model["bias_reg"],
                      implicit=model["implicit"], units=model["units"], dropout=model["dropout"],
                      init_scale=model["init_scale"], epochs=train["epochs"], batch_size=train["batch_size"],
                      lr=train["lr"], patience=train["patience"], holdout=train["holdout"], seed=config["seed"])
        return cls(**{**params, **overrides})

    # -- training ------------------------------------------------------------------------------
    def fit(self, ratings: pd.DataFrame, *, users: pd.DataFrame | None = None, movies: pd.DataFrame | None = None,
            callbacks=()) -> "Recommender":
        """Train on `ratings` (userId, movieId, rating); `users` / `movies`: metadata frames for kind "meta"."""
        import keras

        from podium.collab.models import build_model, fill_tables

        if len(ratings) < 2:
            raise PodiumError(f"cannot train a rating model on {len(ratings)} rating(s)")
        if not 0.0 <= self.holdout < 1.0:
            raise PodiumError(f"train.holdout must be in [0, 1), got {self.holdout}")
        started = time.perf_counter()
        keras.utils.set_random_seed(self.seed)
        values = ratings["rating"].to_numpy(dtype=np.float64)
        self.rating_range = (float(values.min()), float(values.max()))
        if self.rating_range[0] == self.rating_range[1]:
            raise PodiumError(f"every training rating is {self.rating_range[0]:g}: nothing to learn")
        self.index = IdIndex.fit(ratings["userId"], ratings["movieId"])
        user_idx, movie_idx = self.index.user_index(ratings["userId"]), self.index.movie_index(ratings["movieId"])
        n_users, n_movies = self.index.n_users, self.index.n_movies
        self.baseline = Baseline.fit(user_idx, movie_idx, values, n_users=n_users, n_movies=n_movies)

        tables, sizes = {}, {}
        if self.implicit:
            tables["user_implicit"] = rated_table(user_idx, movie_idx, n_rows=n_users, n_columns=n_movies)
            # The movie side is normalised by each movie's own count of raters.
            tables["movie_implicit"] = rated_table(movie_idx, user_idx, n_rows=n_movies, n_columns=n_users)
        if self.kind == "meta":
            if users is not None:
                tables["user_meta"], vocabulary = user_feature_table(users, self.index)
                tables["user_meta_bias"], sizes["user_features"] = tables["user_meta"], len(vocabulary)
            if movies is not None:
                tables["movie_meta"], vocabulary = movie_feature_table(movies, self.index)
                tables["movie_meta_bias"], sizes["movie_features"] = tables["movie_meta"], len(vocabulary)
        self.model = build_model(self.kind, n_users=n_users, n_movies=n_movies, rating_range=self.rating_range,
                                 mean=float(values.mean()), factors=self.factors, reg=self.reg,
                                 bias_reg=self.bias_reg, implicit=self.implicit, units=self.units,
                                 dropout=self.dropout, init_scale=self.init_scale, **sizes)
        fill_tables(self.model, tables)
        self.model.compile(optimizer=keras.optimizers.Adam(self.lr), loss="mse",
                           metrics=[keras.metrics.RootMeanSquaredError(name="rmse")])

        fit_rows, stop_rows = self._holdout_split(len(values))
        inputs = {"user": user_idx, "movie": movie_idx}
        validation = None
        monitors = list(callbacks)
        if len(stop_rows):
            validation = ({k: v[stop_rows] for k, v in inputs.items()}, values[stop_rows])
            monitors.append(keras.callbacks.EarlyStopping(monitor="val_rmse", patience=self.patience,
                                                          restore_best_weights=True))
        history = self.model.fit({k: v[fit_rows] for k, v in inputs.items()}, values[fit_rows],
                                 validation_data=validation, epochs=self.epochs, batch_size=self.batch_size,
                                 shuffle=True, callbacks=monitors, verbose=self.verbose)
        self.history = pd.DataFrame(history.history)
        self.history.insert(0, "epoch", np.arange(1, len(self.history) + 1))
        self.fit_seconds = time.perf_counter() - started
        return self

    def _holdout_split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows to fit, rows that choose the epoch): a seeded share of the training ratings."""
        order = np.random.default_rng(self.seed).permutation(n)
        held = int(round(self.holdout * n))
        if self.holdout and (held < 1 or held >= n):
            raise PodiumError(f"train.holdout={self.holdout} of {n} ratings leaves no rows to hold out or to fit")
        return np.sort(order[held:]), np.sort(order[:held])

    # -- prediction ---------------------------------------------------------------------------
    def unseen(self, user_ids, movie_ids) -> tuple[np.ndarray, np.ndarray]:
        """Boolean masks: user not in training, movie not in training."""
        self._check_fitted()
        return self.index.user_index(user_ids) == 0, self.index.movie_index(movie_ids) == 0

    def predict(self, user_ids, movie_ids, *, batch_size: int = 8192) -> np.ndarray:
        """Predicted ratings, clipped to the training range; unseen ids get the baseline fallback."""
        self._check_fitted()
        users, movies = self.index.user_index(user_ids), self.index.movie_index(movie_ids)
        predictions = self.baseline.predict(users, movies)
        known = (users > 0) & (movies > 0)
        if known.any():
            scored = self.model.predict({"user": users[known], "movie": movies[known]}, batch_size=batch_size,
                                        verbose=0)
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
        # Keras picks the format from the suffix, so the temp file keeps ".keras".
        temporary = folder / f".tmp-{MODEL_FILE}"
        self.model.save(temporary)
        temporary.replace(folder / MODEL_FILE)
        state = {
            "params": {name: getattr(self, name) for name in (
                "kind", "factors", "reg", "bias_reg", "implicit", "units", "dropout", "init_scale", "epochs",
                "batch_size", "lr", "patience", "holdout", "seed")},
            "rating_range": list(self.rating_range),
            "users": self.index.users.tolist(),
            "movies": self.index.movies.tolist(),
            "baseline": {"mean": self.baseline.mean, "user_bias": self.baseline.user_bias.tolist(),
                         "movie_bias": self.baseline.movie_bias.tolist()},
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
        return recommender

