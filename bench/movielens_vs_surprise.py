"""podium's MovieLens models against scikit-surprise on the real ML-100K, same five folds, one process.

Every model is trained on the same four folds and scored (RMSE) on the fifth, for each of the five
folds of a shuffled sklearn KFold. podium models use their defaults (`podium run movielens`):
the epoch is chosen by early stopping on a seeded 5% of the training folds, never on the test fold.
Surprise's SVD, SVD++ and BaselineOnly use their default settings. The ensemble is the mean of the
dot, nn and meta predictions, as `podium ensemble` averages runs. Fit time is per fold, wall clock.

    pip install '.[bench]'    # scikit-surprise, for this benchmark only
    python bench/movielens_vs_surprise.py [--data ../shared/data/ml-100k] [--folds 5] [--seed 2017]
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import podium  # noqa: E402,F401
from _common import SHARED  # noqa: E402

# name -> Recommender parameters on top of the MovieLens defaults
PODIUM_MODELS = {
    "podium dot, no implicit (fast.ai lesson)": {"kind": "dot", "implicit": False, "reg": 2e-4},
    "podium dot": {"kind": "dot"},
    "podium nn": {"kind": "nn"},
    "podium meta": {"kind": "meta"},
}
ENSEMBLE = ("podium dot", "podium nn", "podium meta")
ENSEMBLE_NAME = "podium ensemble (mean of dot, nn, meta)"
PUBLISHED = {"Surprise SVD": 0.934, "Surprise SVD++": 0.919, "Surprise BaselineOnly": 0.944}  # Surprise's README


def surprise_models(seed: int) -> dict:
    from surprise import SVD, BaselineOnly, SVDpp

    return {"Surprise BaselineOnly": lambda: BaselineOnly(verbose=False),
            "Surprise SVD": lambda: SVD(random_state=seed),
            "Surprise SVD++": lambda: SVDpp(random_state=seed)}


def fit_surprise(make, train: pd.DataFrame, test: pd.DataFrame, scale: tuple[float, float]):
    from surprise import Dataset, Reader

    started = time.perf_counter()
    trainset = Dataset.load_from_df(train[["userId", "movieId", "rating"]], Reader(rating_scale=scale))
    algorithm = make().fit(trainset.build_full_trainset())
    seconds = time.perf_counter() - started
    predictions = algorithm.test(list(test[["userId", "movieId", "rating"]].itertuples(index=False, name=None)))
    return np.array([p.est for p in predictions]), seconds


def fit_podium(params: dict, train, test, users, movies, config: dict):
    from podium.collab.recommender import Recommender

    recommender = Recommender.from_config(config, **params, verbose=0)
    recommender.fit(train, users=users, movies=movies)
    return recommender.predict(test["userId"], test["movieId"]), recommender.fit_seconds, len(recommender.history)


def main() -> None:
    from sklearn.model_selection import KFold

    from podium.competitions.movielens_files import find_files, read_ratings
    from podium.competitions import get
    from podium.evaluation.runner import resolve_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "ml-100k")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2017, help="KFold shuffle seed (the same folds for all models)")
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME",
                        help="run only models whose name contains one of these words (e.g. dot SVD)")
    args = parser.parse_args()
    # Each fold builds new models, and TensorFlow warns about retracing their predict functions.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)

    plugin = get("movielens")
    ratings = read_ratings(find_files(args.data).ratings)[["userId", "movieId", "rating"]]
    users, movies = plugin.read_metadata(args.data)
    config = resolve_config(plugin)
    scale = (float(ratings["rating"].min()), float(ratings["rating"].max()))
    models = {**surprise_models(args.seed), **PODIUM_MODELS}
    if args.only:
        models = {name: model for name, model in models.items() if any(w.lower() in name.lower() for w in args.only)}
    print(f"{args.data}: {len(ratings):,} ratings, {ratings['userId'].nunique():,} users, "
          f"{ratings['movieId'].nunique():,} movies; {args.folds}-fold CV (sklearn KFold, shuffled, seed {args.seed})")

    scores = {name: [] for name in models}
    seconds = {name: [] for name in models}
    with_ensemble = all(name in models for name in ENSEMBLE)
    if with_ensemble:
        scores[ENSEMBLE_NAME], seconds[ENSEMBLE_NAME] = [], []
    started = time.perf_counter()
    for fold, (train_rows, test_rows) in enumerate(
            KFold(n_splits=args.folds, shuffle=True, random_state=args.seed).split(ratings)):
        train, test = ratings.iloc[train_rows], ratings.iloc[test_rows]
        truth = test["rating"].to_numpy(dtype=np.float64)
        predictions = {}
        for name, model in models.items():
            if name in PODIUM_MODELS:
                predicted, took, epochs = fit_podium(model, train, test, users, movies, config)
                note = f", {epochs} epochs"
            else:
                predicted, took = fit_surprise(model, train, test, scale)
                note = ""
            predictions[name] = predicted
            scores[name].append(rmse(truth, predicted))
            seconds[name].append(took)
            print(f"fold {fold + 1}: {name:42s} RMSE {scores[name][-1]:.4f}  fit {took:6.1f} s{note}", flush=True)
        if with_ensemble:
            scores[ENSEMBLE_NAME].append(rmse(truth, np.mean([predictions[n] for n in ENSEMBLE], axis=0)))
            seconds[ENSEMBLE_NAME].append(sum(seconds[n][-1] for n in ENSEMBLE))
            print(f"fold {fold + 1}: {ENSEMBLE_NAME:42s} RMSE {scores[ENSEMBLE_NAME][-1]:.4f}", flush=True)

    print(f"\n{'model':42s} {'mean RMSE':>9s} {'std':>6s}  {'fit s/fold':>10s}  published  per-fold RMSE")
    for name in scores:
        values = np.array(scores[name])
        published = f"{PUBLISHED[name]:.3f}" if name in PUBLISHED else ""
        print(f"{name:42s} {values.mean():9.4f} {values.std():6.4f}  {np.mean(seconds[name]):10.1f}  "
              f"{published:>9s}  " + " ".join(f"{v:.4f}" for v in values))
    podium_names = [name for name in scores if name.startswith("podium")]
    if podium_names:
        best = min(podium_names, key=lambda name: np.mean(scores[name]))
        best_rmse = float(np.mean(scores[best]))
        print(f"\nbest podium model: {best}, mean RMSE {best_rmse:.4f} (goal: 0.900 or lower)")
        for peer in ("Surprise SVD", "Surprise SVD++"):
            if peer in scores:
                peer_rmse = float(np.mean(scores[peer]))
                verdict = "below" if best_rmse < peer_rmse else "NOT below"
                print(f"  vs {peer} in this run: {peer_rmse:.4f} -> {verdict}")
    print(f"total time {time.perf_counter() - started:.0f} s")


def rmse(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((truth - np.asarray(predicted, dtype=np.float64)) ** 2)))


if __name__ == "__main__":
    main()
