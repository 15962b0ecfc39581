"""Top-N recommendations for one user: the movies with the highest predicted rating that they have not rated."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.files import read_json
from podium.collab.recommender import Recommender


def top_n(recommender: Recommender, user_id: int, rated, *, n: int = 10, movies: pd.DataFrame | None = None):
    """rank, movieId, title, predicted rating of the `n` best movies known to the model and not in `rated`."""
    if n < 1:
        raise PodiumError(f"--top must be at least 1, got {n}")
    rated = set(int(movie) for movie in rated)
    candidates = np.array([movie for movie in recommender.index.movies if int(movie) not in rated], dtype=np.int64)
    predicted = recommender.predict(np.full(len(candidates), int(user_id)), candidates)
    # Highest prediction first; ties in the order of movie ids, so the list is reproducible.
    order = np.lexsort((candidates, -predicted))[:n]
    titles = {} if movies is None else dict(zip(movies["movieId"], movies["title"]))
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1), "movieId": candidates[order],
                         "title": [titles.get(movie, "") for movie in candidates[order]],
                         "predicted_rating": predicted[order]})


def top_n_many(recommender: Recommender, user_ids, *, n: int = 10, users_per_call: int = 32) -> dict:
    """user id -> movie ids of the `n` best predictions among every movie known to the model, for many users.

    One prediction call scores `users_per_call` users against every movie, so the per-call cost
    of Keras is paid once per group rather than once per user. Nothing is excluded: for users whose
    rated movies must be left out, use `top_n`.
    """
    if n < 1:
        raise PodiumError(f"--top must be at least 1, got {n}")
    movies = recommender.index.movies
    user_ids = np.asarray(user_ids, dtype=np.int64)
    best = {}
    for start in range(0, len(user_ids), users_per_call):
        group = user_ids[start:start + users_per_call]
        scores = recommender.predict(np.repeat(group, len(movies)), np.tile(movies, len(group)), batch_size=65_536)
        scores = scores.reshape(len(group), len(movies))
        top = np.argpartition(-scores, min(n, len(movies)) - 1, axis=1)[:, :n]
        for row, user in enumerate(group):
            order = top[row][np.lexsort((movies[top[row]], -scores[row, top[row]]))]
            best[int(user)] = movies[order].tolist()
    return best


def recommend_from_run(run_dir: Path, user_id: int, *, n: int = 10) -> tuple[pd.DataFrame, bool]:
    """(top-N table, whether the user was in the training ratings) from a finished run.

    "Already rated" means every rating of the user in the run's data folder, validation ones included.
    """
    from podium.competitions import get

    run_dir = Path(run_dir)
    recommender = Recommender.load(run_dir)
    record = read_json(run_dir / "run.json")
    data_dir = Path(record["data_dir"])
    if not data_dir.is_dir():
        raise PodiumError(f"the run's data folder {data_dir} is gone; it is needed to know what the user rated")
    plugin = get(record["competition"])
    table = plugin.read_table(data_dir)
    rated = table.loc[(table["split"] != "test") & (table["userId"] == int(user_id)), "movieId"]
    _, movies = plugin.read_metadata(data_dir)
    known = bool(recommender.index.user_index([int(user_id)])[0] > 0)
    return top_n(recommender, user_id, rated, n=n, movies=movies), known
