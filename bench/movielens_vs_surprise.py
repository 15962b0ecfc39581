"""podium's MovieLens models against scikit-surprise on the real ML-100K: random folds and the time split.

Two protocols, the same for every model. Random: each of the five folds of a shuffled sklearn
KFold is scored (RMSE) by models trained on the other four. Time: the plugin's `data.split=time`
(every rating after the 0.8 quantile of the timestamps is scored, trained on the earlier ones),
where users and movies first seen after the cut-off get the fallback and biases have drifted.
podium models use their defaults (`podium run movielens`) with time terms ("+time") and the
implicit feedback of the pairs to predict ("+pairs": who rated what in the scored set, never
its ratings) switched on or off; the epoch is chosen by early stopping on a seeded 5% of the
training ratings, never on the scored ones. Surprise's SVD, SVD++ and BaselineOnly use their
default settings. The ensembles are the mean of their members' predictions (dot, nn and meta;
or runs of one model with different seeds), as `podium ensemble` averages runs. Fit time is per fold, wall clock, on a shared machine.

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

# name -> (Recommender parameters on top of the MovieLens defaults, whether the scored pairs lend implicit feedback)
PODIUM_MODELS = {
    "podium dot": ({"kind": "dot", "time": False}, False),
    "podium dot +time": ({"kind": "dot", "time": True}, False),
    "podium dot +pairs": ({"kind": "dot", "time": False}, True),
    "podium dot +time +pairs": ({"kind": "dot", "time": True}, True),
    "podium nn": ({"kind": "nn", "time": False}, False),
    "podium nn +time +pairs": ({"kind": "nn", "time": True}, True),
    "podium meta": ({"kind": "meta", "time": False}, False),
    "podium meta +time +pairs": ({"kind": "meta", "time": True}, True),
    "podium nn +pairs": ({"kind": "nn", "time": False}, True),
    "podium meta +pairs": ({"kind": "meta", "time": False}, True),
    # Runs of one model that differ only in `seed` (the init, the batch order and the 5% holdout): a bag.
    "podium meta +pairs seed 2": ({"kind": "meta", "time": False, "seed": 2}, True),
    "podium meta +pairs seed 3": ({"kind": "meta", "time": False, "seed": 3}, True),
}
# ensemble name -> members
ENSEMBLES = {
    "podium ensemble (dot, nn, meta)": ("podium dot", "podium nn", "podium meta"),
    "podium ensemble +time +pairs": ("podium dot +time +pairs", "podium nn +time +pairs", "podium meta +time +pairs"),
    "podium ensemble +pairs": ("podium dot +pairs", "podium nn +pairs", "podium meta +pairs"),
    "podium ensemble meta +pairs 3 seeds": ("podium meta +pairs", "podium meta +pairs seed 2",
                                            "podium meta +pairs seed 3"),
    "podium ensemble dot + meta x3 +pairs": ("podium dot +pairs", "podium meta +pairs", "podium meta +pairs seed 2",
                                             "podium meta +pairs seed 3"),
}
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


def fit_podium(model, train, test, users, movies, config: dict):
    from podium.collab.recommender import Recommender

    params, pairs = model
    recommender = Recommender.from_config(config, **params, verbose=0)
    recommender.fit(train, users=users, movies=movies,
                    implicit_pairs=test[["userId", "movieId"]] if pairs else None)
    predicted = recommender.predict(test["userId"], test["movieId"], timestamps=test["timestamp"])
    return predicted, recommender.fit_seconds, len(recommender.history)


def protocols(ratings: pd.DataFrame, plugin, config: dict, *, data_dir: Path, folds: int, seed: int, which: list[str]):
    """(protocol, split number, train, test) for the random folds and the plugin's time split, in `which` order."""
    from sklearn.model_selection import KFold

    for protocol in which:
        if protocol == "random":
            for fold, (train_rows, test_rows) in enumerate(
                    KFold(n_splits=folds, shuffle=True, random_state=seed).split(ratings)):
                yield "random", fold + 1, ratings.iloc[train_rows], ratings.iloc[test_rows]
        else:
            table = plugin.split(plugin.read_table(data_dir), {**config, "data": {**config["data"], "split": "time"}})
            # The table lists the ratings in file order, as `ratings` does.
            split = table.loc[table["split"] != "test", "split"].to_numpy()
            yield "time", 1, ratings[split == "train"], ratings[split == "valid"]


def main() -> None:
    from podium.competitions.movielens_files import find_files, read_ratings
    from podium.competitions import get
    from podium.evaluation.runner import resolve_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "ml-100k")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2017, help="KFold shuffle seed (the same folds for all models)")
    parser.add_argument("--protocols", nargs="+", default=["time", "random"], choices=["random", "time"])
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME",
                        help="run only models whose name contains one of these words (e.g. dot SVD)")
    args = parser.parse_args()
    # Each fold builds new models, and TensorFlow warns about retracing their predict functions.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)

    plugin = get("movielens")
    ratings = read_ratings(find_files(args.data).ratings)[["userId", "movieId", "rating", "timestamp"]]
    users, movies = plugin.read_metadata(args.data)
    config = resolve_config(plugin)
    scale = (float(ratings["rating"].min()), float(ratings["rating"].max()))
    models = {**surprise_models(args.seed), **PODIUM_MODELS}
    if args.only:
        models = {name: model for name, model in models.items() if any(w.lower() in name.lower() for w in args.only)}
    ensembles = {name: members for name, members in ENSEMBLES.items() if all(m in models for m in members)}
    print(f"{args.data}: {len(ratings):,} ratings, {ratings['userId'].nunique():,} users, "
          f"{ratings['movieId'].nunique():,} movies; {args.folds}-fold CV (sklearn KFold, shuffled, seed {args.seed}) "
          f"and the time split (data.time_quantile={config['data']['time_quantile']})")

    scores = {protocol: {name: [] for name in [*models, *ensembles]} for protocol in args.protocols}
    seconds = {protocol: {name: [] for name in [*models, *ensembles]} for protocol in args.protocols}
    started = time.perf_counter()
    for protocol, number, train, test in protocols(ratings, plugin, config, data_dir=args.data, folds=args.folds,
                                                   seed=args.seed, which=args.protocols):
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
            scores[protocol][name].append(rmse(truth, predicted))
            seconds[protocol][name].append(took)
            print(f"{protocol} {number}: {name:32s} RMSE {scores[protocol][name][-1]:.4f}  fit {took:6.1f} s{note}",
                  flush=True)
        for name, members in ensembles.items():
            scores[protocol][name].append(rmse(truth, np.mean([predictions[m] for m in members], axis=0)))
            seconds[protocol][name].append(sum(seconds[protocol][m][-1] for m in members))
            print(f"{protocol} {number}: {name:32s} RMSE {scores[protocol][name][-1]:.4f}", flush=True)

    for protocol in args.protocols:
        title = f"{args.folds} random folds" if protocol == "random" else "time split"
        print(f"\n{title}\n{'model':32s} {'mean RMSE':>9s} {'std':>6s}  {'fit s':>6s}  published  per-split RMSE")
        for name, values in scores[protocol].items():
            values = np.array(values)
            published = f"{PUBLISHED[name]:.3f}" if name in PUBLISHED and protocol == "random" else ""
            print(f"{name:32s} {values.mean():9.4f} {values.std():6.4f}  {np.mean(seconds[protocol][name]):6.1f}  "
                  f"{published:>9s}  " + " ".join(f"{v:.4f}" for v in values))
        report_goals(protocol, scores[protocol])
    print(f"total time {time.perf_counter() - started:.0f} s")


def report_goals(protocol: str, scores: dict) -> None:
    """The issue's goals: random folds, best podium mean <= 0.875; time split, below SVD++ by 0.03 or more."""
    podium_names = [name for name in scores if name.startswith("podium")]
    if not podium_names:
        return
    best = min(podium_names, key=lambda name: np.mean(scores[name]))
    best_rmse = float(np.mean(scores[best]))
    if protocol == "random":
        verdict = "met" if best_rmse <= 0.875 else "NOT met"
        print(f"best podium model: {best}, mean RMSE {best_rmse:.4f} (goal 0.875 or lower: {verdict})")
    else:
        print(f"best podium model: {best}, RMSE {best_rmse:.4f}")
    if "Surprise SVD++" in scores:
        margin = float(np.mean(scores["Surprise SVD++"])) - best_rmse
        goal = f" (goal 0.03 or more: {'met' if margin >= 0.03 else 'NOT met'})" if protocol == "time" else ""
        print(f"  below Surprise SVD++ by {margin:.4f}{goal}")


def rmse(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((truth - np.asarray(predicted, dtype=np.float64)) ** 2)))


if __name__ == "__main__":
    main()
