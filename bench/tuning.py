"""Hyper-parameter search on cached features vs. recomputing the features in every trial.

Real Dogs vs. Cats photos (../shared) through the real ImageNet EfficientNet-Lite0 backbone. Prints:
 (a) trials per minute of a search whose trials read the feature cache (the first trial fills it),
     and of the same search when every trial gets an empty cache and runs the backbone again; the ratio;
 (b) this process's resident memory after trial 1 and after the last trial (it should stay flat:
     the Keras session is cleared and garbage collected after every trial);
 (c) the best validation log loss found, next to the first trial's (the config's own values).

    python bench/tuning.py [--data ../shared/data/dogs-vs-cats-redux] [--size 96] [--trials 50] [--recompute 5]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import podium  # noqa: E402,F401
from _common import LITE0, SHARED  # noqa: E402

SEARCHED = ["train.lr", "train.weight_decay", "train.batch_size", "head.dropout", "head.units"]


def search(plugin, data: Path, config: dict, settings: dict, space, *, trials: int, work: Path, study_name: str,
           fresh_cache: bool) -> dict:
    """Run `trials` trials without pruning; return elapsed seconds and RSS (MiB) after each trial."""
    import optuna
    import psutil

    from podium.pipeline.config import deep_update
    from podium.tuning.objective import Objective
    from podium.tuning.study import open_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(study_name, f"sqlite:///{work / 'bench.db'}", competition=plugin.name,
                       direction="minimize", metric="val_log_loss", tune=settings, seed=int(config["seed"]))
    study.enqueue_trial(space.baseline(config))
    objective = Objective(plugin, data, config, space, trials_root=work / study_name, metric="val_log_loss")
    process, rss, seconds = psutil.Process(), [], []

    def run_trial(trial):
        if fresh_cache:  # an empty cache folder per trial: the backbone runs over every image again
            objective.config = deep_update(config, {"paths": {"cache": str(work / f"cache-{trial.number}")}})
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            value = objective(trial)
        seconds.append(time.perf_counter() - started)
        return value

    def probe(study, trial):
        rss.append(process.memory_info().rss / 2**20)
        print(f"  {study_name} trial {trial.number + 1}/{trials}: {seconds[-1]:5.1f} s, val_log_loss "
              f"{trial.value:.4f}, RSS {rss[-1]:.0f} MiB", flush=True)

    started = time.perf_counter()
    study.optimize(run_trial, n_trials=trials, callbacks=[probe])
    return {"elapsed": time.perf_counter() - started, "rss": rss, "seconds": seconds,
            "values": [t.value for t in study.trials], "best": study.best_value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "dogs-vs-cats-redux")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--trials", type=int, default=50, help="trials of the search on cached features")
    parser.add_argument("--recompute", type=int, default=5, help="trials of the search that recomputes features")
    args = parser.parse_args()

    from podium.competitions import get
    from podium.tuning import resolve_with_tune, search_space

    work = Path(tempfile.mkdtemp(prefix="podium-bench-tuning-"))
    plugin = get("dogs-vs-cats-redux")
    sets = [f"image.backbone={LITE0}", "image.preprocessing=efficientnet_lite", f"image.size=[{args.size},{args.size}]",
            f"train.epochs={args.epochs}", f"train.patience={args.epochs}", f"paths.cache={work / 'cache'}",
            "tune.pruner=none", f"tune.only={SEARCHED}".replace("'", '"')]
    config, settings = resolve_with_tune(plugin, sets=sets)
    space = search_space(plugin, settings, config)
    print(f"{args.data}: Lite0 at {args.size}x{args.size}, head-only search over {', '.join(space.keys)}, "
          f"{args.epochs} epochs a trial, no pruning (so both searches train the same amount)")

    cached = search(plugin, args.data, config, settings, space, trials=args.trials, work=work, study_name="cached",
                    fresh_cache=False)
    recomputed = search(plugin, args.data, config, settings, space, trials=args.recompute, work=work,
                        study_name="recomputed", fresh_cache=True)

    cached_rate = args.trials / (cached["elapsed"] / 60)
    warm_rate = (args.trials - 1) / (sum(cached["seconds"][1:]) / 60)
    recomputed_rate = args.recompute / (recomputed["elapsed"] / 60)
    print("\nresults")
    print(f"  cached features:     {cached_rate:6.2f} trials/min over {args.trials} trials "
          f"(first trial {cached['seconds'][0]:.1f} s fills the cache; the others {warm_rate:.2f} trials/min)")
    print(f"  recomputed features: {recomputed_rate:6.2f} trials/min over {args.recompute} trials "
          f"({sum(recomputed['seconds']) / args.recompute:.1f} s a trial)")
    print(f"  ratio cached / recomputed: {cached_rate / recomputed_rate:.1f}x "
          f"(warm cache: {warm_rate / recomputed_rate:.1f}x)")
    print(f"  resident memory after trial 1: {cached['rss'][0]:.0f} MiB, after trial {args.trials}: "
          f"{cached['rss'][-1]:.0f} MiB ({cached['rss'][-1] - cached['rss'][0]:+.0f} MiB; "
          f"max {max(cached['rss']):.0f} MiB)")
    print(f"  val_log_loss: first trial (config defaults) {cached['values'][0]:.4f}, best {cached['best']:.4f}")
    print(f"  work folder: {work}")


if __name__ == "__main__":
    main()
