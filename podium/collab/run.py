"""The `collaborative_filtering` pipeline: train a rating model into a run directory, predict pairs from it.

A run writes the run-directory contract: metrics.json, history.csv, learning_curve.png,
valid_predictions.csv (id, label, rating), test_predictions.csv (id, rating), submission.csv
(userId, movieId, rating), the model (model.keras + recommender.json) and the movie analysis
(analysis.txt, movie_pca.png). Test rows are the plugin's pairs file when the data has one;
otherwise the validation pairs stand in for them, so every run has predictions to ensemble.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.files import atomic_write_bytes, atomic_write_text, unused_path
from podium.collab.recommender import Recommender


LEAVES = ("model.keras", "recommender.json")  # what `podium predict` and `podium recommend` load: the manifest's


def check(plugin, config: dict, data_dir=None) -> list:
    """No stages to check: the config's own ranges are checked when it is resolved."""
    return []


def run(plugin, data_dir: Path, config: dict, run_dir: Path, *, sample: bool = False, callbacks=()) -> dict:
    """Train `config`'s model on the training split, score the validation split, write the run's files."""
    from podium.core.table import prepare_table
    from podium.core.writer import write_submission
    from podium.collab.analysis import analyse_movies

    data_dir, run_dir = Path(data_dir), Path(run_dir)
    table = prepare_table(plugin, data_dir, config)
    if sample:
        table = table[table["sample"] | (table["split"] == "test")]
    train, valid, test = (table[table["split"] == split] for split in ("train", "valid", "test"))
    if valid.empty:
        raise PodiumError("the validation split is empty: raise data.valid_fraction or data.sample_valid")
    users, movies = plugin.read_metadata(data_dir)
    print(f"{plugin.name}: {len(train):,} training ratings of {train['userId'].nunique():,} users and "
          f"{train['movieId'].nunique():,} movies; {len(valid):,} validation ratings; "
          f"{len(test):,} test pairs; model: {config['model']['kind']}")

    # The validation pairs stand for the test pairs, so both lend who-rated-what (never a rating) when asked.
    implicit_pairs = pd.concat([valid, test])[["userId", "movieId"]] if config["model"]["pair_implicit"] else None
    recommender = Recommender.from_config(config).fit(
        train.rename(columns={"label": "rating"}), users=users, movies=movies, implicit_pairs=implicit_pairs,
        callbacks=callbacks)
    atomic_write_text(run_dir / "history.csv", recommender.history.to_csv(index=False))
    plot_learning_curve(recommender.history, run_dir / "learning_curve.png")

    labels = valid["label"].to_numpy(dtype=np.float64)
    predicted = recommender.predict(valid["userId"], valid["movieId"], timestamps=valid["timestamp"])
    atomic_write_text(run_dir / "valid_predictions.csv",
                      pd.DataFrame({"id": valid["id"].to_numpy(), "label": labels, "rating": predicted})
                      .to_csv(index=False))
    unseen_users, unseen_movies = recommender.unseen(valid["userId"], valid["movieId"])
    global_mean = np.full(len(labels), recommender.baseline.mean)
    baseline = np.clip(recommender.baseline.predict(recommender.index.user_index(valid["userId"]),
                                                    recommender.index.movie_index(valid["movieId"])),
                       *recommender.rating_range)
    metrics = {
        **plugin.evaluate(labels, predicted),
        "val_rmse_global_mean": _rmse(labels, global_mean),
        "val_rmse_biases_only": _rmse(labels, baseline),
        "unseen_user_rows": int(unseen_users.sum()),
        "unseen_movie_rows": int(unseen_movies.sum()),
        "epochs": len(recommender.history),
        "fit_seconds": round(recommender.fit_seconds, 2),
    }

    pairs, source = (test, "pairs file") if len(test) else (valid, "validation pairs")
    pair_predictions = recommender.predict(pairs["userId"], pairs["movieId"], timestamps=pairs["timestamp"])
    atomic_write_text(run_dir / "test_predictions.csv",
                      pd.DataFrame({"id": pairs["id"].to_numpy(), "rating": pair_predictions}).to_csv(index=False))
    submission = write_submission(plugin, plugin.submission_frame(pairs["id"].tolist(), pair_predictions),
                                  run_dir / "submission.csv", data_dir=data_dir)
    metrics.update(submission=str(submission), pairs_predicted=len(pairs), pairs_source=source)
    recommender.save(run_dir)
    analysis = config["analysis"]
    analyse_movies(recommender, train, movies, run_dir, top_movies=int(analysis["movies"]),
                   show=int(analysis["show"]))
    return metrics


def predict_again(run_dir: Path, *, tta=None, pairs: Path | None = None, out: Path | None = None) -> dict:
    """Predicted ratings for a CSV of (userId, movieId) pairs, written as userId,movieId,rating."""
    from podium.competitions.movielens_files import read_pairs

    run_dir = Path(run_dir)
    if tta is not None:
        raise PodiumError("--tta: rating models have no test-time augmentation")
    if pairs is None:
        raise PodiumError("give --pairs FILE: a CSV with userId,movieId columns, one pair per line")
    recommender = Recommender.load(run_dir)
    frame = read_pairs(Path(pairs))
    predicted = recommender.predict(frame["userId"], frame["movieId"], timestamps=frame["timestamp"])
    unseen_users, unseen_movies = recommender.unseen(frame["userId"], frame["movieId"])
    out = Path(out) if out is not None else unused_path(run_dir / f"predictions-{Path(pairs).stem}.csv")
    result = pd.DataFrame({"userId": frame["userId"], "movieId": frame["movieId"], "rating": predicted})
    atomic_write_text(out, result.to_csv(index=False, float_format="%.4f"), overwrite=False)
    print(f"wrote {len(result):,} predicted ratings to {out}")
    return {"predictions": str(out), "rows": len(result), "unseen_user_rows": int(unseen_users.sum()),
            "unseen_movie_rows": int(unseen_movies.sum())}


def plot_learning_curve(history: pd.DataFrame, out: Path) -> Path:
    """RMSE per epoch on the fitted ratings and on the held-out share that chose the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for column, label in (("rmse", "fitted ratings"), ("val_rmse", "held-out training ratings")):
        if column in history:
            ax.plot(history["epoch"], history[column], "-o", ms=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE")
    ax.set_title("learning curve")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return atomic_write_bytes(out, buffer.getvalue())


def _rmse(labels: np.ndarray, predictions: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(labels) - np.asarray(predictions)) ** 2)))
