"""Whole MovieLens runs through the shared runner and CLI: the run-directory contract, predict, recommend, ensemble."""
import shutil

import pandas as pd
import pytest

from podium.competitions import get
from podium.cli.main import main
from podium.config import deep_update
from podium.evaluation.runner import demo_config, resolve_config, start_run
from podium.submission.validate import validate_file

SMALL = {"model": {"factors": 16}, "train": {"epochs": 15, "batch_size": 512, "lr": 0.02, "patience": 3},
         "analysis": {"movies": 50}}


@pytest.fixture(scope="module")
def plugin():
    return get("movielens")


def config_for(plugin, **sections):
    return deep_update(deep_update(demo_config(plugin, resolve_config(plugin)), SMALL), sections)


@pytest.fixture(scope="module")
def run(plugin, movielens_data, tmp_path_factory):
    return start_run(plugin, movielens_data, config_for(plugin), runs_root=tmp_path_factory.mktemp("runs"))


def test_a_run_writes_the_run_directory_contract(plugin, movielens_data, run):
    run_dir, metrics = run
    for name in ("config.json", "run.json", "metrics.json", "history.csv", "learning_curve.png",
                 "valid_predictions.csv", "test_predictions.csv", "submission.csv", "model.keras",
                 "recommender.json", "analysis.txt", "movie_pca.png"):
        assert (run_dir / name).is_file(), name
    assert metrics["val_rmse"] < 0.6 * metrics["val_rmse_global_mean"]
    assert metrics["val_rmse"] < metrics["val_rmse_biases_only"] and metrics["val_mae"] < metrics["val_rmse"]
    valid = pd.read_csv(run_dir / "valid_predictions.csv")
    table = plugin.split(plugin.read_table(movielens_data), resolve_config(plugin))
    assert list(valid.columns) == ["id", "label", "rating"] and len(valid) == (table["split"] == "valid").sum()
    test = pd.read_csv(run_dir / "test_predictions.csv")
    assert list(test.columns) == ["id", "rating"] and len(test) == 60
    submission = pd.read_csv(run_dir / "submission.csv")
    assert list(submission.columns) == ["userId", "movieId", "rating"] and len(submission) == 60
    assert validate_file(plugin, run_dir / "submission.csv", movielens_data) == []
    assert metrics["submission"] == str(run_dir / "submission.csv") and metrics["pairs_source"] == "pairs file"
    assert len(pd.read_csv(run_dir / "history.csv")) == metrics["epochs"]


def test_predict_writes_a_rating_for_every_pair(run, tmp_path, capsys):
    run_dir, _ = run
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("userId,movieId\n1,12\n424242,12\n1,99999999\n2,45\n")
    out = tmp_path / "predicted.csv"
    assert main(["predict", str(run_dir), "--pairs", str(pairs), "--out", str(out)]) == 0
    predicted = pd.read_csv(out)
    assert list(predicted.columns) == ["userId", "movieId", "rating"] and len(predicted) == 4
    assert predicted[["userId", "movieId"]].values.tolist() == [[1, 12], [424242, 12], [1, 99999999], [2, 45]]
    assert predicted["rating"].between(0.5, 5.0).all()
    assert "unseen_user_rows                 1" in capsys.readouterr().out
    assert main(["predict", str(run_dir), "--pairs", str(pairs), "--out", str(out)]) == 2  # never overwritten
    assert "already exists" in capsys.readouterr().err
    pairs.write_text("userId,movieId\n1,12\n1,twelve\n")
    assert main(["predict", str(run_dir), "--pairs", str(pairs)]) == 2
    assert "pairs.csv, line 3: movieId 'twelve' is not a number" in capsys.readouterr().err


def test_recommend_leaves_out_movies_the_user_rated(run, movielens_data, tmp_path, capsys):
    run_dir, _ = run
    out = tmp_path / "top.csv"
    assert main(["recommend", str(run_dir), "--user", "3", "--top", "5", "--out", str(out)]) == 0
    top = pd.read_csv(out)
    rated = pd.read_csv(movielens_data / "ratings.csv").query("userId == 3")["movieId"]
    assert len(top) == 5 and set(top["movieId"]).isdisjoint(set(rated))
    printed = capsys.readouterr().out
    assert "top 5 movies for user 3" in printed and top["title"].iloc[0] in printed


def test_runs_without_a_pairs_file_predict_the_validation_pairs_and_ensemble(plugin, movielens_data, tmp_path):
    from podium.evaluation.ensemble import ensemble_runs

    bare = tmp_path / "data"
    shutil.copytree(movielens_data, bare)
    (bare / "to_predict.csv").unlink()
    # Few epochs: a mean of predictions never scores worse than the worst of them, however trained.
    runs = [start_run(plugin, bare, config_for(plugin, model={"kind": kind}, train={"epochs": 4}),
                      runs_root=tmp_path / "runs") for kind in ("dot", "meta")]
    for run_dir, metrics in runs:
        assert metrics["pairs_source"] == "validation pairs"
        valid, test = (pd.read_csv(run_dir / name) for name in ("valid_predictions.csv", "test_predictions.csv"))
        assert valid["id"].tolist() == test["id"].tolist()
    report = ensemble_runs([run_dir for run_dir, _ in runs], out=tmp_path / "ensemble.csv")
    assert report["ensemble"]["val_rmse"] <= max(metrics["val_rmse"] for _, metrics in runs)
    assert list(pd.read_csv(tmp_path / "ensemble.csv").columns) == ["userId", "movieId", "rating"]
