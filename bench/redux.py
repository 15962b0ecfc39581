"""Dogs vs. Cats Redux on real Kaggle images (../shared) with the real ImageNet EfficientNet-Lite0 backbone:
what each technique adds, scored on the held-out test set with test_labels.csv as the leaderboard would.

One run prints, as hold-out / out-of-fold estimates and test log loss / accuracy:
  the logistic-regression probe on the same cached pooled features and split (the floor to beat);
  the course recipe (configs/course-2017.toml: 256-unit head, hold-out only);
  a single head with the clip chosen on the hold-out (the old default);
  + calibration (temperature, clip floor) fitted on the hold-out;
  + out-of-fold estimate, bagging of the fold heads, calibration on OOF;
  + a refit on every labelled row in the bag;
  the default `podium run` (that + 2 augmented passes, TTA 2), and variants of it;
  optionally fine-tuning (--finetune-epochs), a `podium tune` best-of run (--tune-trials) and the default
  with other seeds (--seeds: each its own hold-out draw and fold order).

    python bench/redux.py [--data ../shared/data/dogs-vs-cats-redux] [--size 224] [--cache DIR]
                          [--finetune-epochs 0] [--tune-trials 0] [--seeds 1 2 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import podium  # noqa: E402,F401
from _common import LITE0, SHARED, only_recipes  # noqa: E402
from _scoring import HEADER, PROBE, dump, probe, row, run_recipe, run_recipes, seed_summary  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def tuned_best_of(plugin, args, user: dict, labels: Path, runs: Path) -> dict:
    """`podium tune --trials N` (its default metric: out-of-fold log loss), then `podium run --best-of`."""
    from podium.tuning.best import run_config
    from podium.tuning.search import tune

    sets = [f"image.backbone={user['image']['backbone']}", f"image.preprocessing={user['image']['preprocessing']}",
            f"image.size={user['image']['size']}".replace(" ", ""), f"paths.cache={user['paths']['cache']}"]
    tune(plugin, args.data, trials=args.tune_trials, sets=sets, study="bench", runs_root=runs)
    config = run_config(plugin, sets=sets, best_of="bench", runs_root=runs)
    return run_recipe(plugin, args.data, config, labels, runs=runs, tag="best-of")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "dogs-vs-cats-redux")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--cache", type=Path, default=None, help="feature cache (default: a new temp folder)")
    parser.add_argument("--finetune-epochs", type=int, default=0)
    parser.add_argument("--cache-dtype", default="float32", choices=["float32", "float16"],
                        help="image.cache_dtype: how the features are stored")
    parser.add_argument("--only", default="", help="comma-separated words: run only the recipes whose name has one")
    parser.add_argument("--tune-trials", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="*", default=[],
                        help="the default run again with these seeds (the spread of its test log loss)")
    args = parser.parse_args()

    from podium.competitions import get
    from podium.config import deep_update
    from podium.evaluation.runner import resolve_config
    from podium.vision.data import load_image_data

    work = Path(tempfile.mkdtemp(prefix="podium-bench-redux-"))
    plugin = get("dogs-vs-cats-redux")
    labels = args.data / "test_labels.csv"
    user = {"image": {"backbone": str(LITE0), "preprocessing": "efficientnet_lite",
                      "cache_dtype": args.cache_dtype, "size": [args.size, args.size]},
            "paths": {"cache": str(args.cache or work / "cache")}}
    default = resolve_config(plugin, overrides=user)  # what `podium run ... --set image.backbone=...` gets
    runs = work / "runs"
    old = {"augment": {"passes": 0}, "tta": {"views": 0}}
    recipes = {
        "course recipe (configs/course-2017.toml)": resolve_config(
            plugin, files=[REPO / "configs" / "course-2017.toml"], overrides=user),
        "single head, clip on hold-out (old default)": deep_update(default, {
            **old, "oof": {"folds": 0}, "calibration": {"enabled": False}}),
        "  + calibration on the hold-out": deep_update(default, {**old, "oof": {"folds": 0}}),
        "  + OOF, no bagging (calibrated on hold-out)": deep_update(default, {**old, "oof": {"bag": False}}),
        "  + OOF + bag of 5 + calibration on OOF": deep_update(default, old),
        "  + refit on all rows in the bag": deep_update(default, {**old, "oof": {"refit": True}}),
        "default: + 2 augmented passes, TTA 2": default,
        "  no clip (temperature only)": deep_update(default, {"submission": {"clip": "none"}}),
        "  ensemble off (the gap head's bag alone)": deep_update(default, {"ensemble": {"enabled": False}}),
        "  head without hidden layer (units 0)": deep_update(default, {"head": {"units": 0}}),
    }
    if args.finetune_epochs:
        recipes[f"  + fine-tune last block, {args.finetune_epochs} epochs"] = deep_update(default, {
            "finetune": {"enabled": True, "epochs": args.finetune_epochs}})
    for seed in args.seeds:
        recipes[f"default: + 2 augmented passes, TTA 2, seed {seed}"] = deep_update(default, {"seed": seed})
    recipes = only_recipes(recipes, args.only)
    results = {}
    data = load_image_data(plugin, args.data, default, sample=False)
    results[PROBE] = probe(plugin, data, labels, grouped=False, seed=int(default["seed"]))
    run_recipes(plugin, args.data, recipes, labels, runs=runs, results=results)
    if args.tune_trials:
        results["podium tune best-of (OOF metric)"] = tuned_best_of(plugin, args, user, labels, runs)

    print(f"\n== Dogs vs. Cats Redux: {len(data.labelled)} labelled ({len(data.train_rows)} train / "
          f"{len(data.valid_rows)} hold-out), {len(data.test)} test; EfficientNet-Lite0 at {args.size} ==")
    print("val ll: hold-out (400 rows, the main head); oof ll: out-of-fold over every labelled row; oof cal: "
          "after temperature + clip (on OOF, else the hold-out)")
    print(HEADER)
    for name, result in results.items():
        print(row(name, result))
    print(f"probe: C={results[PROBE]['C']:g} (cross-validated log loss {results[PROBE]['cv_log_loss']:.4f})")
    summary = seed_summary(results, probe_name=PROBE, target=0.85)
    if summary:
        print(summary)
    dump(results, work / "results.json")
    print(f"runs: {runs}")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"bench took {time.perf_counter() - started:.0f} s")
