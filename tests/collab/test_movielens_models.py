"""The Keras rating models on generated ratings with a planted low-rank structure."""
import numpy as np
import pandas as pd
import pytest

from podium.collab.analysis import analyse_movies
from podium.competitions.movielens_files import read_movies, read_users
from podium.collab.recommend import top_n
from podium.collab.recommender import Recommender
from podium.competitions import get
from podium.errors import PodiumError
from podium.evaluation.runner import resolve_config

FAST = {"factors": 16, "batch_size": 512, "lr": 0.02, "epochs": 15, "patience": 3, "verbose": 0}


def rmse(truth, predicted):
    return float(np.sqrt(np.mean((np.asarray(truth) - np.asarray(predicted)) ** 2)))


@pytest.fixture(scope="module")
def ratings(tmp_path_factory):
    """Demo ratings split like a run; all training ratings of one user and of one movie are withheld."""
    plugin = get("movielens")
    data_dir = plugin.make_demo_data(tmp_path_factory.mktemp("movielens"), seed=0)
    table = plugin.split(plugin.read_table(data_dir), resolve_config(plugin))
    table = table[table["split"] != "test"].rename(columns={"label": "rating"})
    cold_user, cold_movie = int(table["userId"].iloc[0]), int(table["movieId"].iloc[-1])
    cold = (table["userId"] == cold_user) | (table["movieId"] == cold_movie)
    train = table[(table["split"] == "train") & ~cold]
    valid = table[(table["split"] == "valid") & ~cold]
    return {"train": train, "valid": valid, "cold_user": cold_user, "cold_movie": cold_movie,
            "users": read_users(data_dir / "users.csv"), "movies": read_movies(data_dir / "movies.csv")}


@pytest.fixture(scope="module")
def dot(ratings):
    return Recommender(kind="dot", **FAST).fit(ratings["train"])


def test_dot_model_recovers_the_planted_structure(ratings, dot):
    valid, train = ratings["valid"], ratings["train"]
    global_mean = rmse(valid["rating"], np.full(len(valid), train["rating"].mean()))
    biases_only = rmse(valid["rating"], np.clip(dot.baseline.predict(
        dot.index.user_index(valid["userId"]), dot.index.movie_index(valid["movieId"])), 0.5, 5))
    predicted = dot.predict(valid["userId"], valid["movieId"])
    assert rmse(valid["rating"], predicted) < 0.55 * global_mean
    assert rmse(valid["rating"], predicted) < 0.6 * biases_only  # the factors, not just the biases
    assert predicted.min() >= 0.5 and predicted.max() <= 5.0
    assert list(dot.history.columns[:2]) == ["epoch", "loss"] and "val_rmse" in dot.history


def test_ids_are_indexed_on_training_ratings_only(ratings, dot):
    assert set(dot.index.users) == set(ratings["train"]["userId"])
    assert set(dot.index.movies) == set(ratings["train"]["movieId"])
    assert ratings["cold_user"] not in set(dot.index.users) and ratings["cold_movie"] not in set(dot.index.movies)


def test_unseen_users_and_movies_get_global_mean_plus_known_bias(ratings, dot):
    known_user, known_movie = int(ratings["train"]["userId"].iloc[5]), int(ratings["train"]["movieId"].iloc[5])
    cold_user, cold_movie = ratings["cold_user"], ratings["cold_movie"]
    users = [cold_user, known_user, cold_user, 10**9]
    movies = [known_movie, cold_movie, cold_movie, known_movie]
    predicted = dot.predict(users, movies)
    baseline = dot.baseline
    user_bias = baseline.user_bias[dot.index.user_index([known_user])[0]]
    movie_bias = baseline.movie_bias[dot.index.movie_index([known_movie])[0]]
    assert predicted.tolist() == pytest.approx([baseline.mean + movie_bias, baseline.mean + user_bias, baseline.mean,
                                                baseline.mean + movie_bias])
    assert [mask.tolist() for mask in dot.unseen(users, movies)] == [[True, False, True, True],
                                                                     [False, True, True, False]]


def test_saved_model_predicts_the_same(ratings, dot, tmp_path):
    dot.save(tmp_path)
    loaded = Recommender.load(tmp_path)
    valid = ratings["valid"]
    assert loaded.kind == "dot" and loaded.factors == 16
    np.testing.assert_allclose(loaded.predict(valid["userId"], valid["movieId"]),
                               dot.predict(valid["userId"], valid["movieId"]), atol=1e-5)
    with pytest.raises(PodiumError, match="not a finished collaborative-filtering run"):
        Recommender.load(tmp_path / "elsewhere")


# The dense layers need smaller batches than a dot product, and the neural model plateaus for about 6 epochs
# before it learns (patience 3 stopped it there on a rounding difference).
@pytest.mark.parametrize("kind,extra", [("nn", {"dropout": 0.1, "batch_size": 256, "patience": 6}), ("meta", {})])
def test_nn_and_meta_models_learn(ratings, kind, extra):
    train, valid = ratings["train"], ratings["valid"]
    model = Recommender(kind=kind, **{**FAST, **extra}).fit(train, users=ratings["users"], movies=ratings["movies"])
    global_mean = rmse(valid["rating"], np.full(len(valid), train["rating"].mean()))
    # The neural model is the weakest (as on ML-100K) and its few epochs here land differently per backend.
    assert rmse(valid["rating"], model.predict(valid["userId"], valid["movieId"])) < (0.7 if kind == "nn" else 0.6) * global_mean
    layers = {layer.name for layer in model.model.layers}
    if kind == "meta":
        assert {"user_meta", "movie_meta", "movie_meta_bias"} <= layers
    else:
        assert {"dense_0", "dense_1"} <= layers


def test_meta_model_without_metadata_is_a_clear_error(ratings):
    with pytest.raises(PodiumError, match="model.kind=meta needs user or movie metadata"):
        Recommender(kind="meta", **FAST).fit(ratings["train"])


def test_analysis_lists_biased_movies_and_saves_a_titled_pca_plot(ratings, dot, tmp_path, capsys):
    train = ratings["train"]
    found = analyse_movies(dot, train, ratings["movies"], tmp_path, top_movies=60, show=5)
    assert (tmp_path / "movie_pca.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (tmp_path / "analysis.txt").read_text()
    assert "Highest learned bias" in text and "Principal component 2" in text
    assert len(found["highest_bias"]) == 5 and found["highest_bias"][0][0].startswith("Demo Film")
    assert set(found["pc1_high"]).isdisjoint(found["pc1_low"])
    assert "Lowest learned bias" in capsys.readouterr().out
    # The learned bias ranks movies like their average rating does.
    means = train.groupby("movieId")["rating"].mean()
    chosen = train["movieId"].value_counts().index[:60].to_numpy()
    offsets, _ = dot.movie_representation(chosen)
    assert np.corrcoef(offsets, means.loc[chosen])[0, 1] > 0.5


def test_top_n_excludes_rated_movies_and_is_sorted(ratings, dot):
    user = int(ratings["train"]["userId"].iloc[0])
    rated = pd.concat([ratings["train"], ratings["valid"]]).query("userId == @user")["movieId"]
    table = top_n(dot, user, rated, n=10, movies=ratings["movies"])
    assert list(table.columns) == ["rank", "movieId", "title", "predicted_rating"] and len(table) == 10
    assert set(table["movieId"]).isdisjoint(set(rated))
    assert table["predicted_rating"].is_monotonic_decreasing and table["title"].str.startswith("Demo Film").all()
    everything = top_n(dot, user, rated, n=10_000)
    assert len(everything) == len(set(dot.index.movies) - set(rated))
