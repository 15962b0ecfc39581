"""Speed near the machine's limit: tuning trials per minute, whole runs, precompute memory (one run, real data).

Real Dogs vs. Cats photos (../shared) through the real ImageNet EfficientNet-Lite0 backbone at 224 px. Prints,
all measured in this one run:
 (a) peak resident memory of a precompute (a fresh process each) for two numbers of images, and its images/s;
 (b) the backbone's forward pass alone (pre-decoded batches in memory, compiled inference) in images/s, and a
     whole default `podium run` with an empty cache (a fresh process: import, decode, backbone over the
     labelled and test images, head, files) against the backbone alone over the same images;
 (c) a warm `podium run` (cache hit; in this process, like a tuning trial) against the bare Keras fit of its
     head(s): `model.fit` of the same head on the same in-memory rows podium trains on, nothing else;
     once with out-of-fold heads off, once with the default config (1 + oof.folds head fits);
 (d) `podium tune` trials on the cached features of all 2,000 rows, one worker in this process, median pruning
     on: trials per minute, and the overhead ratio = podium's time per trial / the bare fit of the same heads
     (each trial's head fitted alone for the epochs the trial ran); again on the plain pass only (1,600
     training rows, no augmented passes) and with the hyperband pruner; and the fixed cost of any trial's
     fit (model building, tracing, compiling), the ceiling on trials per minute whatever the search.

    python bench/speed.py [--data ../shared/data/dogs-vs-cats-redux] [--trials 24] [--memory-sizes 250 1000]
                          [--skip-cold] [--skip-warm] [--cache FOLDER]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import podium  # noqa: E402,F401
from _common import LITE0, REPO, SHARED, PeakMemory  # noqa: E402

SETS = [f"image.backbone={LITE0}", "image.preprocessing=efficientnet_lite"]
TUNED = ["train.lr", "train.weight_decay", "train.batch_size", "train.epochs", "head.dropout", "head.units"]


def child_precompute(data: Path, n: int, cache: Path) -> None:
    """In a fresh process: precompute the first `n` training photos; print JSON (peak RSS, seconds)."""
    from podium.config import IMAGE_DEFAULTS, deep_update
    from podium.vision.backbones import BackboneSpec
    from podium.vision.cache import FeatureCache

    paths = sorted((data / "train").glob("*.jpg"))[:n]
    config = deep_update(IMAGE_DEFAULTS, {"image": {"backbone": str(LITE0), "preprocessing": "efficientnet_lite"}})
    spec = BackboneSpec.from_config(config)
    with PeakMemory() as memory, contextlib.redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        FeatureCache(cache).features(spec, paths, batch_size=int(config["image"]["batch_size"]))
        seconds = time.perf_counter() - started
    print(json.dumps({"n": n, "peak_mib": memory.peak_abs, "seconds": seconds}))


def child_backbone(data: Path, n: int) -> None:
    """In a fresh process: the backbone alone over `n` photos decoded beforehand; print JSON (images/s)."""
    from podium.config import IMAGE_DEFAULTS, deep_update
    from podium.vision.backbones import BackboneSpec
    from podium.vision.images import load_batch

    config = deep_update(IMAGE_DEFAULTS, {"image": {"backbone": str(LITE0), "preprocessing": "efficientnet_lite"}})
    spec = BackboneSpec.from_config(config)
    model = spec.build()
    pixels, _ = load_batch(sorted((data / "train").glob("*.jpg"))[:n], spec.size, dtype=np.uint8)
    batch = int(config["image"]["batch_size"])
    model.predict_on_batch(spec.preprocess(pixels[:batch].astype(np.float32)))  # traced before the clock starts
    started = time.perf_counter()
    for offset in range(0, n, batch):
        model.predict_on_batch(spec.preprocess(pixels[offset:offset + batch].astype(np.float32)))
    print(json.dumps({"n": n, "rate": n / (time.perf_counter() - started)}))


def child(*args) -> dict:
    out = subprocess.run([sys.executable, __file__, *map(str, args)], capture_output=True, text=True, check=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def head_rows(data, config: dict):
    """The rows podium trains a head on, in memory: (pooled?, (x, y), (x valid, y valid), batch size)."""
    from podium.vision.heads import poolable
    from podium.vision.learner import Learner, rows_in_memory

    learner = Learner(data, None)
    pooled = poolable(data.feature_shape, config["head"])
    (x, y), batch_size = rows_in_memory(learner.train_batches(), pooled=pooled, data=data)
    (xv, yv), _ = rows_in_memory(learner.dataset("valid", targets=True), pooled=pooled, data=data)
    return pooled, (x, y), (xv, yv), batch_size


def bare_fit_seconds(data, config: dict, *, epochs: int) -> float:
    """`model.fit` of the run's head on the rows podium trains on (in memory), verbose 0, no callbacks."""
    import keras

    from podium.vision.heads import build_head

    pooled, (x, y), (xv, yv), batch_size = head_rows(data, config)
    keras.backend.clear_session()
    started = time.perf_counter()
    model = build_head(data.feature_shape, len(data.plugin.classes), config["head"], metadata_dim=data.metadata_dim,
                       weight_decay=float(config["train"]["weight_decay"]), pooled=pooled)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=batch_size, epochs=epochs, validation_data=(xv, yv), verbose=0, shuffle=True)
    return time.perf_counter() - started


def fixed_cost_seconds(data, config: dict, *, repeats: int = 3) -> float:
    """What any trial costs before it learns anything: podium's fit of the search space's smallest head
    (no hidden layer) for one epoch on one batch, validated on one batch: building the model, tracing and
    compiling its train and test steps, one step of each. The median of `repeats` after a first one."""
    import keras

    from podium.config import deep_update
    from podium.vision.heads import build_head
    from podium.vision.training import fit, slice_rows

    config = deep_update(config, {"head": {"units": 0}})
    pooled, (x, y), _, batch_size = head_rows(data, config)
    one_batch = (slice_rows(x, 0, batch_size), slice_rows(y, 0, batch_size))
    seconds = []
    for _ in range(repeats + 1):
        keras.backend.clear_session(free_memory=False)
        started = time.perf_counter()
        model = build_head(data.feature_shape, len(data.plugin.classes), config["head"],
                           weight_decay=float(config["train"]["weight_decay"]), pooled=pooled)
        fit(model, one_batch, one_batch, train_config=config["train"], run_dir=None, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds[1:]))


def timed_run(plugin, data_dir: Path, config: dict, runs: Path) -> tuple[float, dict]:
    from podium.evaluation.runner import start_run

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        _, metrics = start_run(plugin, data_dir, config, runs_root=runs)
    return time.perf_counter() - started, metrics


def tuning(plugin, data_dir: Path, sets: list, *, trials: int, work: Path, name: str) -> dict:
    import optuna

    from podium.tuning.objective import Objective
    from podium.tuning.settings import resolve_with_tune, search_space
    from podium.tuning.space import overrides_from_params
    from podium.tuning.study import open_study
    from podium.config import merge
    from podium.vision.data import load_image_data

    config, settings = resolve_with_tune(plugin, sets=[*sets, "tune.only=" + json.dumps(TUNED), "oof.folds=0"])
    space = search_space(plugin, settings, config)
    study = open_study(name, f"sqlite:///{work / 'speed.db'}", competition=plugin.name, direction="minimize",
                       metric="val_log_loss", tune=settings, seed=int(config["seed"]))
    study.enqueue_trial(space.baseline(config))
    objective = Objective(plugin, data_dir, config, space, trials_root=work / "trials", metric="val_log_loss",
                          record=settings["record"])
    seconds = []

    def run_trial(trial):
        started = time.perf_counter()
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return objective(trial)
        finally:
            seconds.append(time.perf_counter() - started)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    study.optimize(run_trial, n_trials=trials, catch=(Exception,))
    elapsed = time.perf_counter() - started
    # The bare fit of the same heads: each trial's head alone, for the epochs it ran (pruned ones stop early).
    bare = []
    for trial in study.trials:
        trial_config = merge(config, overrides_from_params(trial.params), source="bench")
        epochs = max(len(trial.intermediate_values), 1)
        data = load_image_data(plugin, data_dir, trial_config, sample=False)
        bare.append(bare_fit_seconds(data, trial_config, epochs=epochs))
    states = [t.state.name for t in study.trials]
    from podium.vision.data import augmented_passes

    rows = len(data.train_rows) * (augmented_passes(config) + 1)
    return {"elapsed": elapsed, "seconds": seconds, "bare": bare, "pruned": states.count("PRUNED"), "rows": rows,
            "pruner": settings["pruner"],
            "failed": states.count("FAIL"), "best": study.best_value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "dogs-vs-cats-redux")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--memory-sizes", type=int, nargs=2, default=[250, 1000])
    parser.add_argument("--backbone-images", type=int, default=256)
    parser.add_argument("--skip-cold", action="store_true", help="leave out (a) and the cold run of (b)")
    parser.add_argument("--cache", type=Path, help="feature cache to reuse for (c) and (d) (default: a fresh one)")
    parser.add_argument("--skip-warm", action="store_true", help="leave out (c) and (d)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n, where = args.child
        (child_precompute if kind == "precompute" else child_backbone)(*(
            (args.data, int(n), Path(where)) if kind == "precompute" else (args.data, int(n))))
        return

    from podium.competitions import get
    from podium.evaluation.runner import resolve_config

    work = Path(tempfile.mkdtemp(prefix="podium-bench-speed-"))
    cache = args.cache or work / "cache"
    plugin = get("dogs-vs-cats-redux")
    sets = [*SETS, f"paths.cache={cache}"]
    print(f"{args.data}: Lite0 224x224, work folder {work}\ncommand: python bench/speed.py "
          + " ".join(sys.argv[1:]), flush=True)
    lines = []

    backbone = child("--child", "backbone", args.backbone_images, "-")
    lines.append(f"  backbone alone: {backbone['rate']:.1f} images/s (compiled inference on {backbone['n']} "
                 "pre-decoded photos)")
    if not args.skip_cold:
        for n in args.memory_sizes:
            found = child("--child", "precompute", n, work / f"memory-{n}")
            lines.append(f"  precompute of {n} images (fresh process): peak RSS {found['peak_mib']:.0f} MiB, "
                         f"{n / found['seconds']:.1f} images/s (decode overlapped)")
        labelled = len(list((args.data / "train").glob("*.jpg")))
        test = len(list((args.data / "test").glob("*.jpg")))
        default = resolve_config(plugin, sets=sets)
        passes, views = int(default["augment"]["passes"]) + 1, int(default["tta"]["views"]) + 1
        through = labelled * passes + test * views  # every image the run sends through the backbone
        for label, extra in (("default", []), ("oof off", ["--set=oof.folds=0"])):
            command = [sys.executable, "-m", "podium", "run", plugin.name, "--data", str(args.data), "--out",
                       str(work / "runs-cold"), *[f"--set={s}" for s in SETS],
                       f"--set=paths.cache={work / ('cold-' + label.replace(' ', '-'))}", *extra]
            started = time.perf_counter()
            subprocess.run(command, cwd=REPO, check=True, capture_output=True,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            cold = time.perf_counter() - started
            alone = through / backbone["rate"]
            heads = "1 + oof.folds heads" if not extra else "1 head"
            lines.append(f"  cold podium run, {label} ({labelled} labelled x {passes} passes + {test} test x {views} "
                         f"views = {through} backbone images, then {heads}; fresh process): {cold:.1f} s vs the "
                         f"backbone alone over them {alone:.1f} s: ratio {cold / alone:.2f} (target <= 1.3)")
        lines.append(f"    reproduce: {' '.join(command[1:])}")

    if args.skip_warm:
        print("\nresults\n" + "\n".join(lines))
        return
    config = resolve_config(plugin, sets=sets)
    from podium.config import deep_update
    from podium.vision.data import load_image_data

    # Fill the cache (every augmented pass and TTA view) when (b) was skipped: the runs below must be warm.
    timed_run(plugin, args.data, deep_update(config, {"oof": {"folds": 0}}), work / "runs-warm-up")
    for label, overrides in (("oof off", {"oof": {"folds": 0}}), ("default", {})):
        run_config = deep_update(config, overrides) if "oof" in config else config
        warm, metrics = timed_run(plugin, args.data, run_config, work / "runs-warm")
        data = load_image_data(plugin, args.data, run_config, sample=False)
        folds = int(run_config.get("oof", {}).get("folds", 0)) if int(run_config["data"]["folds"]) < 2 else 0
        fits = 1 + (folds if folds >= 2 else 0)
        bare = bare_fit_seconds(data, run_config, epochs=int(run_config["train"]["epochs"]))
        lines.append(f"  warm podium run, {label} ({fits} head fit{'s' * (fits > 1)}): {warm:.1f} s vs bare fit "
                     f"{bare:.2f} s x {fits} = {bare * fits:.1f} s: ratio {warm / (bare * fits):.2f} (target <= 1.3); "
                     f"val_log_loss {metrics['val_log_loss']:.4f}")

    floor = fixed_cost_seconds(load_image_data(plugin, args.data, config, sample=False), config)
    lines.append(f"  fixed cost of any trial's fit: {floor:.2f} s (the smallest head, one epoch of one batch: "
                 f"building, tracing and compiling its train and test steps): at most {60 / floor:.0f} trials/min "
                 "here before a trial learns anything")
    for label, extra in (("default: plain + 2 augmented passes", []), ("plain pass only", ["augment.passes=0"]),
                         ("hyperband pruner", ["tune.pruner=hyperband"])):
        found = tuning(plugin, args.data, [*sets, *extra], trials=args.trials, work=work, name=label)
        per_trial = found["elapsed"] / args.trials
        bare = sum(found["bare"]) / args.trials
        lines.append(f"  podium tune, {label}, {args.trials} trials on 2,000 cached rows ({found['rows']} training rows "
                     f"a trial; 1 worker, {found['pruner']} pruning, {found['pruned']} pruned, {found['failed']} failed): "
                     f"{60 / per_trial:.1f} trials/min (target >= 60); {per_trial:.2f} s a trial vs the bare fit of "
                     f"the same heads {bare:.2f} s: overhead ratio {found['elapsed'] / sum(found['bare']):.2f} "
                     f"(target < 1.5); the bare fits alone allow {60 / bare:.1f} trials/min; "
                     f"best val_log_loss {found['best']:.4f}")
    print("\nresults\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
