"""MovieLens (GroupLens): predict the rating a user gives a movie; scored by RMSE.

Files (see `podium.competitions.movielens_files`): `ratings.csv` (the ml-latest-small layout of the 2017 course)
with optional `movies.csv` / `users.csv`, or ML-100K's `u.data` with optional `u.item` / `u.user`;
the folder itself or its one subfolder holding them (as GroupLens zips unpack).

Canonical table: one row per rating, id "userId:movieId", path "", label = the rating, group =
the user, then userId, movieId, timestamp, line (of the ratings file). Validation is a seeded random
hold-out of ratings (data.valid_fraction) or fold data.fold of data.folds, or, with data.split=time,
every rating after the data.time_quantile quantile of the timestamps (the future, as Kaggle and
production splits are); never by user, since a held-out user would have nothing to be predicted
from. Ids are re-indexed on the training ratings only; pairs with a user or movie unseen there
(first seen after a time cut-off, say) get the fallback, global mean plus the known bias.
Ratings outside data.rating_scale are an error naming the file and line.

Test set: MovieLens has none. When the folder holds `to_predict.csv` (userId,movieId) its pairs
are the test rows, and the submission (userId,movieId,rating) must cover exactly them. Without
it, a run predicts the validation pairs in their place, so every run still writes
test_predictions.csv and a submission and runs of one split can be ensembled.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd

from podium.config import Allowed, above, at_least, between, one_of
from podium.errors import PodiumError
from podium.competitions.base import Competition
from podium.competitions.registry import register

MOVIELENS_DEFAULTS: dict = {
    "seed": 42,
    "data": {
        "split": "random",  # "random", "stratified" (by rating value) or "time" (the latest ratings); never by user
        "valid_fraction": 0.2,
        "time_quantile": 0.8,  # data.split=time: ratings after this quantile of the timestamps are validation
        # MovieLens's scales: whole stars 1-5 (100K, 1M) and half stars 0.5-5 (10M, 20M, latest).
        "rating_scale": [0.5, 5.0],
        "folds": 0,  # >= 2: validate on fold `data.fold` of a shuffled k-fold of the ratings
        "fold": 0,
        "sample_train": 20000,  # ratings in the --sample training set
        "sample_valid": 5000,
    },
    "model": {
        "kind": "dot",  # "dot" (biased dot product), "nn" (dense layers on both vectors), "meta" (dot + metadata)
        "factors": 50,  # embedding size
        "reg": 3e-4,  # L2 on every embedding table, relative to the mean squared error
        "bias_reg": 1e-5,  # L2 on the bias tables
        "implicit": True,  # also learn from which movies a user rated and who rated a movie (SVD++ style)
        "units": [128, 32],  # nn: dense layer widths
        "dropout": 0.3,  # nn: dropout on the vectors and after each dense layer
        "init_scale": 0.01,  # standard deviation of the initial embeddings
        "time": False,  # timeSVD++'s drifting biases: a movie bias per time bin, a user slope over the date
        "time_bins": 30,  # model.time: bins over the training days
        "time_reg": 1e-3,  # model.time: L2 on the time-bin biases and drift slopes
        # Implicit feedback also from the pairs to predict (validation and test): who rated what, never the rating.
        "pair_implicit": True,
    },
    "train": {
        "epochs": 40,
        "batch_size": 512,
        "lr": 1e-3,  # Adam
        "patience": 5,  # epochs without improvement on the holdout before stopping (best epoch kept)
        "holdout": 0.05,  # share of the training ratings that chooses the epoch (never the validation split)
    },
    "analysis": {
        "movies": 1000,  # analyse the biases and vectors of this many most-rated movies
        "show": 10,  # movies listed at each end
    },
    "paths": {"cache": "cache"},
    "report": {"enabled": True},  # report.html at the end of `podium run`
}

# The allowed range of every MovieLens key, beside its default; shared keys not listed keep the shared ranges.
MOVIELENS_RANGES: dict = {
    "data.split": one_of("random", "stratified", "time"),
    "data.time_quantile": between(0.0, 1.0, low_open=True, high_open=True),
    "data.rating_scale": Allowed(lambda v: isinstance(v, list) and len(v) == 2
                                 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
                                 and v[0] < v[1], "a list [lowest, highest] of two increasing numbers"),
    "data.sample_train": at_least(1),
    "data.sample_valid": at_least(1),
    "model.kind": one_of("dot", "nn", "meta"),
    "model.factors": at_least(1),
    "model.reg": at_least(0.0),
    "model.bias_reg": at_least(0.0),
    "model.dropout": between(0.0, 1.0, high_open=True),
    "model.init_scale": above(0.0),
    "model.time_bins": at_least(1),
    "model.time_reg": at_least(0.0),
    "train.epochs": at_least(1),
    "train.batch_size": at_least(1),
    "train.lr": above(0.0),
    "train.patience": at_least(0),
    "train.holdout": between(0.0, 1.0, low_open=True, high_open=True),
    "analysis.movies": at_least(1),
    "analysis.show": at_least(1),
}


@register
class MovieLens(Competition):
    name = "movielens"
    slug = "movielens-100k-dataset"
    kaggle_dataset = "prajitdatta/movielens-100k-dataset"
    task = "rating"
    pipeline = "collaborative_filtering"
    id_column = "userId"
    metric = "rmse"

    # -- raw files -> canonical table -----------------------------------------------------
    def read_table(self, data_dir: Path) -> pd.DataFrame:
        from podium.competitions.movielens_files import find_files, read_pairs, read_ratings

        files = find_files(data_dir)
        ratings = read_ratings(files.ratings)
        parts = [self._rows(ratings, ratings["rating"].to_numpy(dtype=np.float64), "train")]
        if files.pairs is not None:
            pairs = read_pairs(files.pairs)
            parts.append(self._rows(pairs, np.full(len(pairs), np.nan), "test"))
        table = pd.concat(parts, ignore_index=True)
        # `split` names the file of a rating outside the configured scale (it gets the table, not the folder).
        table.attrs["ratings_file"] = str(files.ratings)
        return table

    @staticmethod
    def _rows(frame: pd.DataFrame, labels: np.ndarray, split: str) -> pd.DataFrame:
        users, movies = frame["userId"].to_numpy(), frame["movieId"].to_numpy()
        return pd.DataFrame({
            "id": [f"{u}:{m}" for u, m in zip(users, movies)], "path": "", "label": labels,
            "group": users.astype(str), "split": split, "userId": users, "movieId": movies,
            "timestamp": frame["timestamp"].to_numpy(), "line": frame["line"].to_numpy()})

    def read_metadata(self, data_dir: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        """(users, movies) metadata frames of `podium.competitions.movielens_files`; None where the file is absent."""
        from podium.competitions.movielens_files import find_files, read_movies, read_users

        files = find_files(data_dir)
        return (read_users(files.users) if files.users else None,
                read_movies(files.movies) if files.movies else None)

    # -- validation split ---------------------------------------------------------------------
    def split(self, table: pd.DataFrame, config: dict) -> pd.DataFrame:
        from podium.core.split import assign_split
        from podium.competitions.movielens_files import check_rating_scale

        data = config["data"]
        scale = data["rating_scale"]
        if len(scale) != 2 or not all(isinstance(v, (int, float)) for v in scale) or not scale[0] < scale[1]:
            raise PodiumError(f"data.rating_scale must be [low, high] with low < high, got {scale!r}")
        rated = table[table["split"] != "test"]
        check_rating_scale(rated.rename(columns={"label": "rating"}), (float(scale[0]), float(scale[1])),
                           table.attrs.get("ratings_file", "the ratings file"))
        strategy = data["split"]
        if strategy == "time":
            return self._time_split(table, config)
        if strategy not in ("random", "stratified"):
            raise PodiumError(f"data.split for {self.name} must be random, stratified or time, got {strategy!r}: "
                              "a held-out user has no ratings in training to predict from")
        return assign_split(table, config)

    @staticmethod
    def _time_split(table: pd.DataFrame, config: dict) -> pd.DataFrame:
        """Validation = every rating later than the cut-off, so no validation rating precedes a training one."""
        data = config["data"]
        if int(data["folds"]) > 1:
            raise PodiumError("data.split=time has one cut-off, so no folds: set data.folds=0, or data.split=random")
        quantile = float(data["time_quantile"])
        if not 0.0 < quantile < 1.0:
            raise PodiumError(f"data.time_quantile must be between 0 and 1, got {quantile}")
        table = table.copy()
        rated = (table["split"] != "test").to_numpy()
        stamps = table["timestamp"].to_numpy()
        # "lower" puts the cut on a real timestamp; ratings at the cut itself stay in training.
        cut = np.quantile(stamps[rated], quantile, method="lower")
        later = rated & (stamps > cut)
        if not later.any():
            raise PodiumError(f"data.split=time: no rating is later than the {quantile:g} quantile of the timestamps "
                              "(are they all equal, or missing?); use data.split=random")
        table.loc[rated, "split"] = "train"
        table.loc[later, "split"] = "valid"
        return table

    # -- submission -----------------------------------------------------------------------------
    def prediction_columns(self) -> list[str]:
        return ["rating"]

    def submission_header(self) -> list[str]:
        return ["userId", "movieId", "rating"]

    def submission_frame(self, ids, predictions: np.ndarray) -> pd.DataFrame:
        pairs = [str(pair_id).split(":") for pair_id in ids]
        return pd.DataFrame({"userId": [int(u) for u, _ in pairs], "movieId": [int(m) for _, m in pairs],
                             "rating": np.asarray(predictions, dtype=float).reshape(-1)})

    def validate_submission(self, frame: pd.DataFrame, data_dir: Path | None = None) -> list[str]:
        """Header, one row per pair, finite ratings; with `data_dir`: ratings inside the data's range and,
        when it has a pairs file, exactly its pairs."""
        from podium.core.submission_format import id_text, validate_frame

        header = self.submission_header()
        if [str(c) for c in frame.columns] != header:
            return [f"header is '{','.join(map(str, frame.columns))}', expected '{','.join(header)}'"]
        value_range, expected = None, None
        if data_dir is not None:
            table = self.read_table(Path(data_dir))
            rated = table.loc[table["split"] == "train", "label"]
            value_range = (float(rated.min()), float(rated.max()))
            expected = table.loc[table["split"] == "test", "id"].tolist() or None
        pairs = pd.DataFrame({"userId:movieId": [f"{id_text(u)}:{id_text(m)}" for u, m in
                                                 zip(frame["userId"], frame["movieId"])],
                              "rating": frame["rating"]})
        return validate_frame(pairs, list(pairs.columns), expected_ids=expected, value_range=value_range)

    # -- scoring -----------------------------------------------------------------------------
    def evaluate(self, labels, predictions: np.ndarray) -> dict:
        truth = np.asarray(labels, dtype=np.float64).reshape(-1)
        predicted = np.asarray(predictions, dtype=np.float64).reshape(-1)
        if truth.shape != predicted.shape:
            raise PodiumError(f"{len(predicted)} predictions for {len(truth)} ratings")
        error = predicted - truth
        return {"val_rmse": float(np.sqrt(np.mean(error ** 2))), "val_mae": float(np.mean(np.abs(error)))}

    # -- configuration -----------------------------------------------------------------------
    def config_ranges(self) -> dict:
        return MOVIELENS_RANGES

    def default_config(self) -> dict:
        return copy.deepcopy(MOVIELENS_DEFAULTS)

    def search_space(self) -> dict:
        return {
            "model.factors": {"type": "categorical", "choices": [25, 50, 100]},
            "model.reg": {"type": "float", "low": 5e-5, "high": 2e-3, "log": True},
            "model.bias_reg": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
            "train.lr": {"type": "float", "low": 5e-4, "high": 1e-2, "log": True},
            "train.batch_size": {"type": "categorical", "choices": [256, 512, 1024]},
        }

    # -- demo data -----------------------------------------------------------------------------
    def make_demo_data(self, out_dir: Path, seed: int = 0) -> Path:
        """ml-latest-small layout (half-star ratings.csv, movies.csv) plus users.csv and to_predict.csv.

        Ratings follow a planted rank-3 structure with user and movie biases and a little noise;
        the first genres follow the movies' planted factors, so metadata carries signal too.
        """
        from podium.files import atomic_write_text

        out_dir = Path(out_dir)
        rng = np.random.default_rng(seed)
        n_users, n_movies, rank = 150, 100, 3
        user_factors, movie_factors = rng.normal(size=(n_users, rank)), rng.normal(size=(n_movies, rank))
        user_bias, movie_bias = rng.normal(0, 0.4, n_users), rng.normal(0, 0.5, n_movies)
        scores = 3.4 + user_bias[:, None] + movie_bias[None, :] + 0.5 * user_factors @ movie_factors.T
        user_ids = np.arange(1, n_users + 1)
        movie_ids = np.sort(rng.choice(np.arange(1, 5000), size=n_movies, replace=False))  # sparse, like real ids
        rated = rng.random((n_users, n_movies)) < 0.35
        users, movies = np.nonzero(rated)
        noisy = scores[users, movies] + rng.normal(0, 0.25, len(users))
        ratings = pd.DataFrame({"userId": user_ids[users], "movieId": movie_ids[movies],
                                "rating": np.clip(np.round(noisy * 2) / 2, 0.5, 5.0),
                                "timestamp": 1_100_000_000 + rng.integers(0, 10**8, len(users))})
        genres = ["|".join(g for g, f in zip(("Action", "Comedy", "Drama"), row) if f > 0.3) for row in movie_factors]
        years = rng.integers(1950, 2016, n_movies)
        movie_frame = pd.DataFrame({"movieId": movie_ids, "title": [f"Demo Film {k} ({y})" for k, y in
                                                                    zip(range(1, n_movies + 1), years)],
                                    "genres": [g or "(no genres listed)" for g in genres]})
        user_frame = pd.DataFrame({"userId": user_ids, "age": rng.integers(16, 70, n_users),
                                   "gender": rng.choice(["M", "F"], n_users),
                                   "occupation": rng.choice(["student", "engineer", "artist", "other"], n_users)})
        unrated_users, unrated_movies = np.nonzero(~rated)
        chosen = rng.choice(len(unrated_users), size=60, replace=False)
        pairs = pd.DataFrame({"userId": user_ids[unrated_users[chosen]], "movieId": movie_ids[unrated_movies[chosen]]})
        for name, frame in (("ratings.csv", ratings), ("movies.csv", movie_frame), ("users.csv", user_frame),
                            ("to_predict.csv", pairs)):
            atomic_write_text(out_dir / name, frame.to_csv(index=False))
        return out_dir

    def demo_overrides(self) -> dict:
        return {"model": {"factors": 16}, "train": {"epochs": 40, "batch_size": 128, "lr": 5e-3, "patience": 4},
                "analysis": {"movies": 100}}
