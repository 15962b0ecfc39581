"""Time split, time-aware biases, implicit feedback from the pairs to predict, streamed training: generated ratings."""
import numpy as np
import pandas as pd
import pytest

from podium.collab.data import TimeFeatures
from podium.collab.recommender import Recommender
from podium.collab.stream import RatingBatches, open_arrays, write_rating_files
from podium.competitions import get
from podium.errors import PodiumError
from podium.evaluation.runner import resolve_config

DAY = 86_400
SMALL = {"factors": 4, "batch_size": 256, "lr": 0.01, "epochs": 12, "patience": 3, "verbose": 0}
# Fits whose epoch count is fixed: no holdout, so no validation pass to build (a fit's cost is mostly tracing).
QUICK = {**SMALL, "epochs": 1, "holdout": 0.0}


def rmse(truth, predicted):
    return float(np.sqrt(np.mean((np.asarray(truth) - np.asarray(predicted)) ** 2)))


def drifting_ratings(seed=0, n_users=120, n_movies=60, n_ratings=9000):
    """Ratings over 300 days where half the movies' bias climbs by 2 stars and the other half's falls by 2."""
    rng = np.random.default_rng(seed)
    users, movies = rng.integers(1, n_users + 1, n_ratings), rng.integers(1, n_movies + 1, n_ratings)
    days = rng.uniform(0, 300, n_ratings)
    direction = np.where(np.arange(1, n_movies + 1) % 2 == 0, 1.0, -1.0)
    user_bias = rng.normal(0, 0.3, n_users + 1)
    planted_drift = direction[movies - 1] * (days / 300 - 0.5) * 2.0
    rating = 3.5 + user_bias[users] + planted_drift + rng.normal(0, 0.2, n_ratings)
    frame = pd.DataFrame({"userId": users, "movieId": movies, "rating": np.clip(rating, 0.5, 5.0),
                          "timestamp": (1_200_000_000 + days * DAY).astype(np.int64)})
    return frame.drop_duplicates(["userId", "movieId"]).reset_index(drop=True), direction


@pytest.fixture(scope="module")
def drift():
    frame, direction = drifting_ratings()
    held = np.random.default_rng(1).random(len(frame)) < 0.2
    return {"train": frame[~held], "valid": frame[held], "direction": direction}


@pytest.fixture(scope="module")
def timed(drift):
    return Recommender(kind="dot", implicit=False, time=True, time_bins=10, **SMALL).fit(drift["train"])


def test_time_aware_model_recovers_a_planted_bias_drift_the_plain_model_cannot(drift, timed):
    train, valid = drift["train"], drift["valid"]
    plain = Recommender(kind="dot", implicit=False, **SMALL).fit(train)
    plain_rmse = rmse(valid["rating"], plain.predict(valid["userId"], valid["movieId"],
                                                     timestamps=valid["timestamp"]))
    timed_rmse = rmse(valid["rating"], timed.predict(valid["userId"], valid["movieId"],
                                                     timestamps=valid["timestamp"]))
    # The planted drift has a standard deviation of about 0.58 stars; noise is 0.2.
    assert plain_rmse > 0.45
    assert timed_rmse < 0.7 * plain_rmse
    # Each movie's learned bias per bin climbs or falls as planted.
    bins = timed.model.get_layer("movie_time_bias").get_weights()[0].reshape(timed.index.n_movies, 10)
    slopes = np.array([np.polyfit(np.arange(10), bins[row], 1)[0] for row in range(1, timed.index.n_movies)])
    planted = drift["direction"][timed.index.movies - 1]
    assert np.mean(np.sign(slopes) == planted) > 0.9


def test_time_features_put_later_dates_in_later_bins_and_unknown_dates_last():
    users = np.array([1, 1, 2, 2])
    stamps = np.array([0, 100, 50, 150]) * DAY + 1_000_000_000
    features = TimeFeatures.fit(users, stamps, n_users=3, bins=3)
    time_bin, drift = features.transform(np.array([1, 1, 2, 2, 1]), np.array([*stamps, 0]))
    assert time_bin.tolist() == [0, 2, 1, 2, 2]
    # A user's drift is negative before their mean day, positive after, zero for user 2's mean (day 100).
    assert drift[0] < 0 < drift[1] and drift[2] < 0 < drift[3]
    assert features.transform(np.array([2]), np.array([100 * DAY + 1_000_000_000]))[1][0] == pytest.approx(0.0)


def test_time_model_saves_and_loads_its_time_features(drift, timed, tmp_path):
    model = timed
    model.save(tmp_path)
    loaded = Recommender.load(tmp_path)
    valid = drift["valid"]
    np.testing.assert_allclose(loaded.predict(valid["userId"], valid["movieId"], timestamps=valid["timestamp"]),
                               model.predict(valid["userId"], valid["movieId"], timestamps=valid["timestamp"]),
                               atol=1e-5)


def test_time_model_refuses_ratings_without_timestamps(drift):
    with pytest.raises(PodiumError, match="model.time needs the ratings' timestamps"):
        Recommender(time=True, **SMALL).fit(drift["train"].drop(columns="timestamp"))


@pytest.fixture(scope="module")
def demo_table(tmp_path_factory):
    plugin = get("movielens")
    data_dir = plugin.make_demo_data(tmp_path_factory.mktemp("movielens"), seed=0)
    return plugin, plugin.read_table(data_dir)


def time_config(plugin, **data):
    # Set after resolving: the shared config ranges do not list data.split=time yet.
    config = resolve_config(plugin, overrides={"data": data})
    config["data"]["split"] = "time"
    return config


def test_time_split_never_puts_a_validation_rating_before_a_training_one(demo_table):
    plugin, table = demo_table
    # Ties at the cut-off: many ratings share a few timestamps.
    table = table.assign(timestamp=np.where(table["split"] == "test", 0, table["timestamp"] // 10**7 * 10**7))
    split = plugin.split(table, time_config(plugin, time_quantile=0.7))
    train, valid = split[split["split"] == "train"], split[split["split"] == "valid"]
    assert train["timestamp"].max() < valid["timestamp"].min()
    assert 0.15 < len(valid) / (len(train) + len(valid)) < 0.45
    assert (split.loc[table["split"] == "test", "split"] == "test").all()


def test_time_split_refuses_folds_and_all_equal_timestamps(demo_table):
    plugin, table = demo_table
    with pytest.raises(PodiumError, match="data.split=time has one cut-off"):
        plugin.split(table, time_config(plugin, folds=5))
    with pytest.raises(PodiumError, match="no rating is later than"):
        plugin.split(table.assign(timestamp=7), time_config(plugin))


def test_users_first_seen_after_the_cut_off_get_the_fallback(demo_table):
    plugin, table = demo_table
    table = table.copy()
    newcomer = table["userId"] == table["userId"].iloc[0]
    table.loc[newcomer, "timestamp"] = table["timestamp"].max() + 1  # all their ratings after the cut-off
    split = plugin.split(table, time_config(plugin))
    train = split[split["split"] == "train"].rename(columns={"label": "rating"})
    valid = split[split["split"] == "valid"]
    model = Recommender(kind="dot", time=True, time_bins=4, **QUICK).fit(train)
    rows = valid[valid["userId"] == table["userId"].iloc[0]]
    predicted = model.predict(rows["userId"], rows["movieId"], timestamps=rows["timestamp"])
    movie_bias = model.baseline.movie_bias[model.index.movie_index(rows["movieId"])]
    np.testing.assert_allclose(predicted, np.clip(model.baseline.mean + movie_bias, *model.rating_range))


def test_pair_implicit_terms_use_who_rated_what_and_never_a_test_rating(drift):
    train, valid = drift["train"], drift["valid"]
    params = {**QUICK, "epochs": 2, "batch_size": 1024, "kind": "dot", "implicit": True}
    without = Recommender(**params).fit(train)
    pairs = valid.assign(rating=np.nan)  # a pair's rating is unknown; none may be read
    honest = Recommender(**params).fit(train, implicit_pairs=pairs)
    leaked = Recommender(**params).fit(train, implicit_pairs=valid.assign(rating=5.0 - valid["rating"]))
    args = (valid["userId"], valid["movieId"])
    np.testing.assert_allclose(honest.predict(*args), leaked.predict(*args), atol=1e-6)
    assert np.abs(honest.predict(*args) - without.predict(*args)).max() > 1e-3  # the pairs did change the model
    # The implicit pairs of a user now hold the movies they are to rate.
    bag = honest.model.get_layer("user_implicit")
    user, movie = honest.index.user_index(valid["userId"])[0], honest.index.movie_index(valid["movieId"])[0]
    start, count = int(bag.row_starts.numpy()[user]), int(bag.row_counts.numpy()[user])
    assert movie in bag.columns.numpy()[start:start + count]


def test_batches_stream_every_row_once_per_epoch_from_memory_maps(tmp_path):
    frame = pd.DataFrame({"userId": np.arange(1000), "movieId": np.arange(1000) % 7, "rating": np.arange(1000) % 5,
                          "timestamp": np.arange(1000)})
    arrays = write_rating_files(tmp_path, frame, seed=3)
    assert isinstance(open_arrays(tmp_path, ["rating"])["rating"], np.memmap)
    assert sorted(arrays["userId"].tolist()) == list(range(1000)) and arrays["userId"][:10].tolist() != list(range(10))
    batches = RatingBatches({"user": arrays["userId"]}, arrays["rating"], start=100, stop=1000, batch_size=64, seed=0)
    seen = []
    for epoch in range(2):
        seen.append(np.concatenate([batches[k][0]["user"] for k in range(len(batches))]))
        batches.on_epoch_end()
    assert all(sorted(rows.tolist()) == sorted(arrays["userId"][100:].tolist()) for rows in seen)
    assert seen[0].tolist() != seen[1].tolist()  # a new batch order each epoch
