"""MovieLens at ML-20M's shape on one machine: training throughput and memory at 2M and 20M ratings.

For each size, a fresh process generates ratings with ML-20M's shape (138,493 users, 26,744
movies; long-tailed movie popularity and user activity, both Zipf-like; half-star ratings of a
planted rank-8 taste model; timestamps over ten years) into memory-mapped files, chunk by chunk,
and pairs to predict (5% of the ratings' count, the same shape), then trains the MovieLens plugin's
default model on them (biased dot product with SVD++'s implicit feedback both ways, from the
ratings and from the pairs: `RatedBag`, the sparse rated table) with `Recommender.fit_arrays`
(batches streamed from the memory maps) and prints:

- ratings/second of one training epoch (measured on `--max-batches` batches of the epoch when the
  epoch has more, and extrapolated to the epoch: printed as such);
- peak memory of the process: anonymous memory (heap: what training allocates, the flat-is-the-goal
  figure) and resident set (VmHWM, which also counts memory-mapped file pages the kernel may drop);
- seconds to compute every user's and movie's exact implicit sum (`RatedBag.refresh`, run before each
  validation pass and when training ends);
- seconds to predict 1,000,000 pairs and to recommend the top 10 movies to 1,000 users (every movie
  scored, `podium.collab.recommend.top_n_many`).

    nice -n 5 python bench/movielens_scale.py [--sizes 2000000 20000000] [--max-batches 600] [--batch-size 8192]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

USERS, MOVIES = 138_493, 26_744  # ML-20M
RANK = 8
FIRST_TIMESTAMP, SPAN_SECONDS = 1_100_000_000, 10 * 365 * 86_400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000_000, 20_000_000])
    parser.add_argument("--max-batches", type=int, default=600, help="batches timed per epoch at most")
    parser.add_argument("--batch-size", type=int, default=512, help="the plugin's train.batch_size is 512")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, max_batches=args.max_batches, batch_size=args.batch_size)))
        return
    print(f"ML-20M shape: {USERS:,} users, {MOVIES:,} movies; the MovieLens default model (dot, 50 factors, "
          f"implicit feedback from the ratings and the pairs), batch {args.batch_size}; one process per size")
    results = []
    for size in args.sizes:
        done = subprocess.run([sys.executable, __file__, "--child", str(size), "--max-batches", str(args.max_batches),
                               "--batch-size", str(args.batch_size)], capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        measured = "whole epoch" if result["batches_timed"] == result["batches_per_epoch"] else \
            f"{result['batches_timed']} of {result['batches_per_epoch']} batches timed, rate extrapolated to the epoch"
        print(f"{size:>11,} ratings: generate {result['generate_s']:.0f} s, setup (index, fallback, time features, model) "
              f"{result['prepare_s']:.0f} s; epoch {result['ratings_per_s']:,.0f} ratings/s ({measured}); "
              f"peak anonymous memory {result['peak_anon_mb']:,.0f} MB, peak RSS {result['peak_rss_mb']:,.0f} MB; "
              f"exact implicit sums of {result['rated_pairs']:,} pairs {result['refresh_s']:.1f} s; predict 1M pairs {result['predict_s']:.1f} s; top-10 for 1,000 users {result['recommend_s']:.1f} s",
              flush=True)
    if len(results) > 1:
        low, high = results[0], results[-1]
        print(f"peak anonymous memory x{high['peak_anon_mb'] / low['peak_anon_mb']:.2f} for "
              f"x{high['ratings'] / low['ratings']:.0f} ratings (flat is the goal); "
              f"peak RSS x{high['peak_rss_mb'] / low['peak_rss_mb']:.2f}")


def measure(size: int, *, max_batches: int, batch_size: int) -> dict:
    import logging

    import pandas as pd

    from podium.collab.layers import RatedBag
    from podium.collab.recommend import top_n_many
    from podium.collab.recommender import Recommender
    from podium.collab.stream import RATING_COLUMNS, create_arrays, open_arrays
    from podium.competitions import get
    from podium.evaluation.runner import resolve_config

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    peak = AnonymousPeak()
    with tempfile.TemporaryDirectory(prefix="podium-scale-") as folder:
        started = time.perf_counter()
        generate(create_arrays(Path(folder) / "ratings", size, RATING_COLUMNS), seed=0)
        arrays = open_arrays(Path(folder) / "ratings", RATING_COLUMNS)
        pair_count = size // 20
        generate(create_arrays(Path(folder) / "pairs", pair_count, RATING_COLUMNS), seed=1)
        pairs = open_arrays(Path(folder) / "pairs", ["userId", "movieId"])
        pairs = pd.DataFrame({"userId": np.asarray(pairs["userId"]), "movieId": np.asarray(pairs["movieId"])})
        generate_s = time.perf_counter() - started

        clock = EpochClock()
        config = resolve_config(get("movielens"))
        recommender = Recommender.from_config(config, epochs=1, batch_size=batch_size, holdout=0.0, seed=0,
                                              verbose=0)
        recommender.fit_arrays(arrays, work_dir=Path(folder), implicit_pairs=pairs, callbacks=[clock],
                               max_batches=max_batches)
        batches_per_epoch = -(-size // batch_size)
        rated_per_s = min(size, batch_size) * clock.batches / clock.seconds
        bags = [layer for layer in recommender.model.layers if isinstance(layer, RatedBag)]
        started = time.perf_counter()
        for bag in bags:
            bag.refresh()
        refresh_s = time.perf_counter() - started

        rng = np.random.default_rng(1)
        pair_users, pair_movies = rng.integers(1, USERS + 1, 1_000_000), rng.integers(1, MOVIES + 1, 1_000_000)
        started = time.perf_counter()
        recommender.predict(pair_users, pair_movies, batch_size=65_536)
        predict_s = time.perf_counter() - started
        started = time.perf_counter()
        top_n_many(recommender, rng.choice(np.arange(1, USERS + 1), size=1000, replace=False), n=10)
        recommend_s = time.perf_counter() - started
        keras.backend.clear_session()
    peak.stop()
    return {"ratings": size, "generate_s": generate_s, "prepare_s": recommender.fit_seconds - clock.seconds,
            "ratings_per_s": rated_per_s, "batches_timed": clock.batches + 1, "batches_per_epoch": batches_per_epoch,
            "peak_anon_mb": peak.peak_mb, "peak_rss_mb": _status_mb("VmHWM"), "predict_s": predict_s,
            "rated_pairs": bags[0].pairs if bags else 0, "refresh_s": refresh_s,
            "recommend_s": recommend_s}


def generate(arrays: dict, *, seed: int) -> None:
    """Ratings of a planted taste model, written chunk by chunk so the generator's memory stays flat too."""
    rng = np.random.default_rng(seed)
    # Zipf-like popularity: the k-th most popular movie is rated ~ 1 / k**0.9 as often (a long tail).
    movie_weights = 1.0 / np.arange(1, MOVIES + 1) ** 0.9
    user_weights = 1.0 / np.arange(1, USERS + 1) ** 0.5
    movie_cdf, user_cdf = np.cumsum(movie_weights / movie_weights.sum()), np.cumsum(user_weights / user_weights.sum())
    user_taste, movie_taste = rng.normal(0, 0.35, (USERS, RANK)), rng.normal(0, 0.35, (MOVIES, RANK))
    user_bias, movie_bias = rng.normal(0, 0.4, USERS), rng.normal(0, 0.5, MOVIES)
    total, chunk = len(arrays["rating"]), 1 << 20
    for start in range(0, total, chunk):
        rows = slice(start, min(start + chunk, total))
        count = rows.stop - rows.start
        users = np.minimum(np.searchsorted(user_cdf, rng.random(count)), USERS - 1)
        movies = np.minimum(np.searchsorted(movie_cdf, rng.random(count)), MOVIES - 1)
        score = 3.5 + user_bias[users] + movie_bias[movies] + np.einsum("ij,ij->i", user_taste[users],
                                                                      movie_taste[movies])
        score += rng.normal(0, 0.6, count)
        arrays["userId"][rows], arrays["movieId"][rows] = users + 1, movies + 1
        arrays["rating"][rows] = np.clip(np.round(score * 2) / 2, 0.5, 5.0)
        arrays["timestamp"][rows] = FIRST_TIMESTAMP + rng.integers(0, SPAN_SECONDS, count)
    for values in arrays.values():
        values.flush()


class EpochClock(keras.callbacks.Callback):
    """Times the training batches after the first (which also traces the model), and counts them."""

    def __init__(self):
        super().__init__()
        self.batches, self.seconds = 0, 0.0

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self.started = time.perf_counter()
        else:
            self.batches, self.seconds = batch, time.perf_counter() - self.started


class AnonymousPeak:
    """Highest RssAnon of this process (heap and other private memory, not mapped file pages), sampled in a thread."""

    def __init__(self, interval: float = 0.05):
        self.peak_mb, self.interval = _status_mb("RssAnon"), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, _status_mb("RssAnon"))
            time.sleep(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join()


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


if __name__ == "__main__":
    main()
