"""Hyper-parameter search on cached features vs. recomputing the features in every trial; memory per trial.

Real Dogs vs. Cats photos (../shared) through the real ImageNet EfficientNet-Lite0 backbone, head-only
search space, no pruning (so every trial trains alike). Prints:
 (a) trials per minute when trials read the feature cache (the first trial fills it) and when every trial
     gets an empty cache and runs the backbone again, both in one process; the ratio;
 (b) resident memory after trial 1 and after the last trial, in one process (Keras session cleared and
     garbage collected after every trial) and with `podium tune`'s default of a fresh worker process
     every 10 trials (`tune.trials_per_process`), which bounds what TensorFlow keeps per trained model;
 (c) the best validation log loss found next to the first trial's (the config's own values).

    python bench/tuning.py [--data ../shared/data/dogs-vs-cats-redux] [--size 96] [--trials 50] [--recompute 5]
                           [--no-sample]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import podium  # noqa: E402,F401
from _common import LITE0, SHARED  # noqa: E402

SEARCHED = ["train.lr", "train.weight_decay", "train.batch_size", "head.dropout", "head.units"]


def in_process(plugin, data: Path, config: dict, settings: dict, space, *, trials: int, work: Path, name: str,
               fresh_cache: bool, sample: bool) -> dict:
    """`trials` trials in this process; elapsed seconds, seconds and resident MiB after each trial."""
    import optuna

    from podium.config import deep_update
    from podium.tuning.objective import Objective
    from podium.tuning.study import open_study

    study = open_study(name, f"sqlite:///{work / 'bench.db'}", competition=plugin.name, direction="minimize",
                       metric="val_log_loss", tune=settings, seed=int(config["seed"]))
    study.enqueue_trial(space.baseline(config))
    objective = Objective(plugin, data, config, space, trials_root=work / name, sample=sample,
                          metric="val_log_loss")
    seconds = []

    def run_trial(trial):
        if fresh_cache:  # an empty cache folder per trial: the backbone runs over every image again
            objective.config = deep_update(config, {"paths": {"cache": str(work / f"cache-{trial.number}")}})
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            value = objective(trial)
        seconds.append(time.perf_counter() - started)
        return value

    def progress(study, trial):
        print(f"  {name} trial {trial.number + 1}/{trials}: {seconds[-1]:5.1f} s, val_log_loss {trial.value:.4f}, "
              f"RSS {trial.user_attrs['rss_mb']:.0f} MiB", flush=True)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    study.optimize(run_trial, n_trials=trials, callbacks=[progress])
    return {"elapsed": time.perf_counter() - started, "seconds": seconds,
            "rss": [t.user_attrs["rss_mb"] for t in study.trials], "values": [t.value for t in study.trials]}


@contextlib.contextmanager
def output_to(path: Path):
    """Send this process's and its children's stdout/stderr to `path` (worker processes print progress bars)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def recycled(plugin, data: Path, sets: list, *, trials: int, work: Path, sample: bool) -> dict:
    """`podium tune` itself: worker processes replaced every `tune.trials_per_process` trials."""
    import optuna

    from podium.tuning import tune
    from podium.tuning.study import study_paths

    started = time.perf_counter()
    with output_to(work / "recycled.log"):
        tune(plugin, data, trials=trials, sets=sets, study="recycled", runs_root=work / "runs", sample=sample)
    elapsed = time.perf_counter() - started
    storage = study_paths(work / "runs", plugin.name, "recycled").storage
    study = optuna.load_study(study_name="recycled", storage=storage)
    trials_run = sorted(study.trials, key=lambda t: t.number)
    return {"elapsed": elapsed, "rss": [t.user_attrs["rss_mb"] for t in trials_run],
            "processes": len({t.user_attrs["worker"] for t in trials_run})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "dogs-vs-cats-redux")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--trials", type=int, default=50, help="trials of each search on cached features")
    parser.add_argument("--recompute", type=int, default=5, help="trials of the search that recomputes features")
    parser.add_argument("--sample", action=argparse.BooleanOptionalAction, default=True,
                        help="tune on the seeded sample set (200 train / 100 valid photos; the 1,000 test photos "
                             "are always featurised), the tuning-on-a-sample habit; --no-sample: all 2,000")
    args = parser.parse_args()

    from podium.competitions import get
    from podium.tuning import resolve_with_tune, search_space

    work = Path(tempfile.mkdtemp(prefix="podium-bench-tuning-"))
    plugin = get("dogs-vs-cats-redux")
    sets = [f"image.backbone={LITE0}", "image.preprocessing=efficientnet_lite", f"image.size=[{args.size},{args.size}]",
            f"train.epochs={args.epochs}", f"train.patience={args.epochs}", f"paths.cache={work / 'cache'}",
            "tune.pruner=none", "tune.only=" + str(SEARCHED).replace("'", '"')]
    config, settings = resolve_with_tune(plugin, sets=sets)
    space = search_space(plugin, settings, config)
    print(f"{args.data}{' (sample set)' if args.sample else ''}: Lite0 at {args.size}x{args.size}, head-only "
          f"search over {', '.join(space.keys)}, {args.epochs} epochs a trial, no pruning (trials train alike)")

    cached = in_process(plugin, args.data, config, settings, space, trials=args.trials, work=work, name="cached",
                        fresh_cache=False, sample=args.sample)
    fresh = in_process(plugin, args.data, config, settings, space, trials=args.recompute, work=work,
                       name="recomputed", fresh_cache=True, sample=args.sample)
    print(f"  podium tune, {args.trials} trials (worker output in {work / 'recycled.log'}) ...", flush=True)
    workers = recycled(plugin, args.data, [*sets, "tune.trials_per_process=10"], trials=args.trials, work=work,
                       sample=args.sample)

    cached_rate = args.trials / (cached["elapsed"] / 60)
    warm_rate = (args.trials - 1) / (sum(cached["seconds"][1:]) / 60)
    fresh_rate = args.recompute / (fresh["elapsed"] / 60)
    print("\nresults")
    print(f"  cached features:     {cached_rate:6.2f} trials/min over {args.trials} trials "
          f"(the first, {cached['seconds'][0]:.1f} s, fills the cache; the others: {warm_rate:.2f} trials/min)")
    print(f"  recomputed features: {fresh_rate:6.2f} trials/min over {args.recompute} trials "
          f"({sum(fresh['seconds']) / args.recompute:.1f} s a trial)")
    print(f"  ratio cached / recomputed: {cached_rate / fresh_rate:.1f}x (warm cache: {warm_rate / fresh_rate:.1f}x)")
    print(f"  RSS, one process:          after trial 1 {cached['rss'][0]:.0f} MiB, after trial {args.trials} "
          f"{cached['rss'][-1]:.0f} MiB ({cached['rss'][-1] - cached['rss'][0]:+.0f} MiB)")
    print(f"  RSS, podium tune defaults: after trial 1 {workers['rss'][0]:.0f} MiB, after trial {args.trials} "
          f"{workers['rss'][-1]:.0f} MiB ({workers['rss'][-1] - workers['rss'][0]:+.0f} MiB; max "
          f"{max(workers['rss']):.0f}; {workers['processes']} worker processes, "
          f"{args.trials / (workers['elapsed'] / 60):.2f} trials/min)")
    print(f"  val_log_loss: first trial (the config's values) {cached['values'][0]:.4f}, "
          f"best {min(cached['values']):.4f}")
    print(f"  work folder: {work}")


if __name__ == "__main__":
    main()
