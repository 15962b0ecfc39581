"""Sections of a MovieLens run's report: RMSE by user activity and by movie popularity, the movie analysis the
run wrote (biases, principal components), and a sample of recommendations."""
from __future__ import annotations

import numpy as np
import pandas as pd

from podium.report import plots
from podium.report.run import LeftOut, RunFiles, Section, cell, fmt

# Rating-count bins: users or movies with 1-4 ratings, 5-9, ... in the run's data.
COUNT_EDGES = (1, 5, 10, 20, 50, 100, 200, 500, 1000, np.inf)
SAMPLE_USERS = 3
TOP = 10


def _valid(run: RunFiles) -> pd.DataFrame:
    frame = run.csv("valid_predictions.csv", why="the validation ratings and their predictions")
    missing = [name for name in ("id", "label", "rating") if name not in frame.columns]
    if missing:
        raise LeftOut(f"valid_predictions.csv lacks the columns {', '.join(missing)}")
    pairs = frame["id"].astype(str).str.split(":", n=1, expand=True)
    if pairs.shape[1] != 2:
        raise LeftOut("valid_predictions.csv ids are not user:movie pairs")
    return frame.assign(userId=pd.to_numeric(pairs[0]), movieId=pd.to_numeric(pairs[1]),
                        error=frame["rating"] - frame["label"])


def _by_count(valid: pd.DataFrame, counts: pd.Series, column: str) -> pd.DataFrame:
    count = valid[column].map(counts).fillna(0).to_numpy()
    edges = np.asarray(COUNT_EDGES, dtype=np.float64)
    which = np.clip(np.searchsorted(edges, count, side="right") - 1, 0, len(edges) - 2)
    frame = pd.DataFrame({"bin": which, "squared": valid["error"].to_numpy() ** 2})
    summary = frame.groupby("bin").agg(rows=("squared", "size"), mse=("squared", "mean"))
    summary["rmse"] = np.sqrt(summary["mse"])
    summary["label"] = [f"{int(edges[b])}+" if not np.isfinite(edges[b + 1]) else f"{int(edges[b])}-{int(edges[b + 1]) - 1}"
                        for b in summary.index]
    return summary


def rmse_by_activity(run: RunFiles, section: Section) -> None:
    valid = _valid(run)
    rated = run.table()
    rated = rated[rated["split"] != "test"]
    for column, what in (("userId", "user activity (ratings by the user)"),
                         ("movieId", "movie popularity (ratings of the movie)")):
        summary = _by_count(valid, rated[column].value_counts(), column)
        section.table([what, "validation ratings", "RMSE"],
                      [[item.label, cell(int(item.rows), number=True), cell(fmt(item.rmse), number=True)]
                       for item in summary.itertuples()], id=f"rmse-by-{column}")
        section.image(plots.bars(summary["label"].tolist(), {"RMSE": summary["rmse"].tolist()}, ylabel="RMSE",
                                 xlabel=what), alt=f"RMSE by {what}")
    section.note = "ratings counted over every rating in the run's data (validation included)"


def analysis(run: RunFiles, section: Section) -> None:
    text = run.path("analysis.txt", why="written by the MovieLens pipeline's analysis").read_text()
    section.pre(text)
    if (run.dir / "movie_pca.png").is_file():
        section.image(plots.picture_uri(run.dir / "movie_pca.png"), alt="movie vectors on two principal components")


def recommendations(run: RunFiles, section: Section) -> None:
    from podium.collab.recommend import top_n
    from podium.collab.recommender import Recommender

    if not (run.dir / "recommender.json").is_file():
        raise LeftOut("the run has no recommender.json (saved model)")
    table = run.table()
    rated = table[table["split"] != "test"]
    activity = rated["userId"].value_counts()
    if activity.empty:
        raise LeftOut("the run's data has no ratings")
    ordered = activity.index.to_numpy()
    users = list(dict.fromkeys(int(ordered[i]) for i in np.linspace(0, len(ordered) - 1, SAMPLE_USERS).astype(int)))
    _, movies = run.plugin.read_metadata(run.record["data_dir"])
    recommender = Recommender.load(run.dir)
    for user in users:
        top = top_n(recommender, user, rated.loc[rated["userId"] == user, "movieId"], n=TOP, movies=movies)
        section.table(["rank", "movie", "title", "predicted rating"],
                      [[row.rank, row.movieId, row.title, cell(f"{row.predicted_rating:.2f}", number=True)]
                       for row in top.itertuples()], id=f"recommendations-{user}",
                      caption=f"user {user} ({int(activity[user])} ratings): movies not rated yet")
