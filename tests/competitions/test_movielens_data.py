"""MovieLens files, the canonical table and split, re-indexing and the fallback: no Keras involved."""
import numpy as np
import pandas as pd
import pytest

from podium.collab.data import Baseline, IdIndex, movie_feature_table, user_feature_table
from podium.competitions.movielens_files import find_files, read_movies, read_pairs, read_ratings, read_users
from podium.competitions import get
from podium.core.table import check_table
from podium.errors import PodiumError
from podium.evaluation.runner import resolve_config
from podium.core.split import assign_sample


@pytest.fixture(scope="module")
def plugin():
    return get("movielens")


def write_ml100k(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881250950\n")
    (folder / "u.user").write_text("196|49|M|writer|55105\n186|39|F|executive|00000\n")
    flags = ["0"] * 19
    drama = list(flags)
    drama[8] = "1"  # Drama
    comedy_romance = list(flags)
    comedy_romance[5] = comedy_romance[14] = "1"
    (folder / "u.item").write_bytes(
        ("242|Kolya (1996)|24-Jan-1997||http://x|" + "|".join(drama) + "\n"
         "302|L.A. Confidential (1997)|01-Jan-1997||http://y|" + "|".join(comedy_romance) + "\n"
         "303|Caf\xe9 (no year)|01-Jan-1994||http://z|" + "|".join(flags) + "\n").encode("latin-1"))
    return folder


def test_ml100k_layout_reads_ratings_users_and_movies(tmp_path):
    folder = write_ml100k(tmp_path / "ml-100k")
    files = find_files(tmp_path)  # the one subfolder holding ratings, as a GroupLens zip unpacks
    assert files.ratings == folder / "u.data" and files.pairs is None
    ratings = read_ratings(files.ratings)
    assert ratings[["userId", "movieId", "rating", "timestamp"]].values.tolist() == [
        [196, 242, 3, 881250949], [186, 302, 3, 891717742], [196, 302, 5, 881250950]]
    users = read_users(files.users)
    assert users.iloc[0][["userId", "age", "gender", "occupation"]].tolist() == [196, 49, "M", "writer"]
    movies = read_movies(files.movies).set_index("movieId")
    assert movies.loc[242, "genres"] == "Drama" and movies.loc[242, "year"] == 1996
    assert movies.loc[302, "genres"] == "Comedy|Romance"
    assert movies.loc[303, "title"] == "Café (no year)" and movies.loc[303, "year"] == 1994  # from the release date


def test_csv_layout_with_optional_files_and_pairs(plugin, movielens_data):
    files = find_files(movielens_data)
    assert files.ratings.name == "ratings.csv" and files.movies and files.users and files.pairs
    movies = read_movies(files.movies)
    assert movies["year"].between(1950, 2015).all()
    assert "(no genres listed)" not in set(movies["genres"])
    pairs = read_pairs(files.pairs)
    assert list(pairs.columns[:2]) == ["userId", "movieId"] and len(pairs) == 60


@pytest.mark.parametrize("name,text,message", [
    ("ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,100\n1,3,4,100,9\n", r"ratings\.csv, line 3: 5 fields"),
    ("ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,100\n\n1,x,4,100\n",
     r"ratings\.csv, line 4: movieId 'x' is not a number"),
    ("ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,100\n1,2.5,4,100\n",
     r"ratings\.csv, line 3: movieId '2.5' is not a whole number"),
    ("ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,100\n1,2,4,100\n",
     r"ratings\.csv, line 3: user 1 rates movie 2 again \(first on line 2\)"),
    ("ratings.csv", "user,movie,rating\n1,2,3\n", r"ratings\.csv, line 1: header lacks \['userId', 'movieId'\]"),
    ("u.data", "1\t2\t3\t100\n1\t3\t4\n", r"u\.data, line 2: timestamp is missing"),
    ("u.data", "1\t2\t3\t100\n1\t3\tfive\t100\n", r"u\.data, line 2: rating 'five' is not a number"),
])
def test_a_malformed_row_is_one_error_naming_file_and_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(PodiumError, match=message):
        read_ratings(tmp_path / name)


def test_a_folder_without_ratings_is_a_clear_error(tmp_path):
    with pytest.raises(PodiumError, match="expected ratings.csv .* or ML-100K's u.data"):
        find_files(tmp_path)


def test_canonical_table_split_and_sample(plugin, movielens_data):
    config = resolve_config(plugin)
    table = check_table(plugin.read_table(movielens_data), plugin)
    assert {"userId", "movieId", "timestamp"} <= set(table.columns)
    rated = table[table["split"] == "train"]
    assert rated["id"].tolist()[:1] == [f"{rated['userId'].iloc[0]}:{rated['movieId'].iloc[0]}"]
    assert (table.loc[table["split"] == "test", "label"].isna()).all() and (table["split"] == "test").sum() == 60
    split = assign_sample(plugin.split(table, config), config)
    share = (split["split"] == "valid").sum() / (split["split"] != "test").sum()
    assert abs(share - 0.2) < 0.01
    # Seeded: the same config gives the same validation rows; another seed, other rows.
    again = plugin.split(table, config)
    assert again["split"].equals(split["split"])
    other = plugin.split(table, resolve_config(plugin, overrides={"seed": 7}))
    assert not other["split"].equals(split["split"])
    folds = [plugin.split(table, resolve_config(plugin, overrides={"data": {"folds": 5, "fold": k}}))
             for k in range(5)]
    valid_sets = [set(f.loc[f["split"] == "valid", "id"]) for f in folds]
    assert sum(len(s) for s in valid_sets) == len(rated) and len(set().union(*valid_sets)) == len(rated)


def test_split_by_user_is_refused(plugin, movielens_data):
    table = plugin.read_table(movielens_data)
    with pytest.raises(PodiumError, match="'data.split' must be one of 'random', 'stratified', 'time'"):
        resolve_config(plugin, overrides={"data": {"split": "group"}})
    config = resolve_config(plugin)
    config["data"]["split"] = "group"  # past the config's ranges: the plugin still refuses it
    with pytest.raises(PodiumError, match="data.split for movielens must be random, stratified or time"):
        plugin.split(table, config)


def test_index_is_fitted_on_training_ids_only_and_unseen_ids_map_to_zero():
    index = IdIndex.fit([10, 30, 10], [7, 5])
    assert index.n_users == 3 and index.n_movies == 3
    assert index.user_index([10, 30, 20, 99]).tolist() == [1, 2, 0, 0]
    assert index.movie_index([5, 7, 6]).tolist() == [1, 2, 0]


def test_baseline_fallback_is_global_mean_plus_known_bias():
    users = np.array([1, 1, 2, 2])
    movies = np.array([1, 2, 1, 2])
    ratings = np.array([5.0, 4.0, 3.0, 2.0])
    baseline = Baseline.fit(users, movies, ratings, n_users=3, n_movies=3, user_shrinkage=0, movie_shrinkage=0)
    assert baseline.mean == pytest.approx(3.5)
    assert baseline.user_bias[1] > 0 > baseline.user_bias[2]  # user 1 rates higher
    assert baseline.movie_bias[1] > 0 > baseline.movie_bias[2]  # movie 1 is rated higher
    unseen = baseline.predict(np.array([0, 1, 0]), np.array([0, 0, 2]))
    assert unseen.tolist() == pytest.approx([3.5, 3.5 + baseline.user_bias[1], 3.5 + baseline.movie_bias[2]])


def test_metadata_tables_cover_known_ids_only(tmp_path):
    folder = write_ml100k(tmp_path)
    index = IdIndex.fit([196], [242, 302])
    user_table, vocabulary = user_feature_table(read_users(folder / "u.user"), index)
    assert user_table.shape == (2, len(vocabulary)) and not user_table[0].any()
    assert {"age45+", "gender=M", "occupation=writer"} == set(vocabulary)  # user 186 is not in the index
    movie_table, vocabulary = movie_feature_table(read_movies(folder / "u.item"), index)
    assert movie_table.shape == (3, len(vocabulary))
    row = dict(zip(vocabulary, movie_table[index.movie_index([302])[0]]))
    assert row["Comedy"] == row["Romance"] == row["1990s"] == pytest.approx(1 / np.sqrt(3))


def test_submission_frame_and_its_validation(plugin, movielens_data):
    ids = plugin.expected_test_ids(movielens_data)
    frame = plugin.submission_frame(ids, np.full(len(ids), 3.5))
    assert list(frame.columns) == ["userId", "movieId", "rating"]
    assert plugin.validate_submission(frame, movielens_data) == []
    assert any("test ids missing" in r for r in plugin.validate_submission(frame.iloc[1:], movielens_data))
    too_high = frame.assign(rating=9.0)
    assert any("outside [0.5, 5]" in r for r in plugin.validate_submission(too_high, movielens_data))
    repeated = pd.concat([frame, frame.iloc[:1]])
    assert any("duplicate" in r for r in plugin.validate_submission(repeated))
    assert plugin.validate_submission(frame.rename(columns={"rating": "score"}))[0].startswith("header is")


def test_evaluate_reports_rmse_and_mae(plugin):
    metrics = plugin.evaluate([1.0, 3.0, 5.0], np.array([[2.0], [3.0], [3.0]]))
    assert metrics["val_rmse"] == pytest.approx(np.sqrt(5 / 3)) and metrics["val_mae"] == pytest.approx(1.0)


@pytest.mark.parametrize("bad_rating", ["7", "-1"])
def test_a_rating_outside_the_scale_is_one_error_naming_file_and_line(plugin, tmp_path, bad_rating):
    (tmp_path / "ratings.csv").write_text(f"userId,movieId,rating,timestamp\n1,10,4,5\n2,10,{bad_rating},6\n")
    config = resolve_config(plugin, overrides={"data": {"rating_scale": [1, 5]}})
    with pytest.raises(PodiumError, match=rf"ratings.csv, line 3: rating {bad_rating} is outside the rating scale "
                                          r"1-5.*data.rating_scale"):
        plugin.split(plugin.read_table(tmp_path), config)
    wider = resolve_config(plugin, overrides={"data": {"rating_scale": [-1, 10]}})
    assert (plugin.split(plugin.read_table(tmp_path), wider)["split"] != "test").sum() == 2
    with pytest.raises(PodiumError, match=r"'data.rating_scale' must be a list \[lowest, highest\]"):
        resolve_config(plugin, overrides={"data": {"rating_scale": [5, 1]}})
    reversed_scale = resolve_config(plugin)
    reversed_scale["data"]["rating_scale"] = [5, 1]  # past the config's ranges: the plugin still refuses it
    with pytest.raises(PodiumError, match=r"data.rating_scale must be \[low, high\]"):
        plugin.split(plugin.read_table(tmp_path), reversed_scale)


def test_ids_are_read_exactly_and_an_id_beyond_int64_is_one_error_naming_the_line(tmp_path):
    long_id = 2**53 + 1  # a float64 would round it to 2**53
    (tmp_path / "ratings.csv").write_text(f"userId,movieId,rating\n{long_id},10,4\n12345678901234567890123,10,3\n")
    with pytest.raises(PodiumError, match=r"ratings.csv, line 3: userId '12345678901234567890123' has 23 digits, "
                                          r"beyond the 64-bit"):
        read_ratings(tmp_path / "ratings.csv")
    (tmp_path / "ratings.csv").write_text(f"userId,movieId,rating\n{long_id},10,4\n{2**53},10,3\n")
    assert read_ratings(tmp_path / "ratings.csv")["userId"].tolist() == [long_id, 2**53]


def test_pairs_may_carry_a_timestamp(tmp_path):
    (tmp_path / "with.csv").write_text("userId,movieId,timestamp\n1,2,900000000\n")
    (tmp_path / "without.csv").write_text("userId,movieId\n1,2\n")
    assert read_pairs(tmp_path / "with.csv")["timestamp"].tolist() == [900000000]
    assert read_pairs(tmp_path / "without.csv")["timestamp"].tolist() == [0]  # 0: unknown date
