"""State Farm Distracted Driver Detection on real Kaggle images (../shared: 10 training drivers, 3 unseen test
drivers with `test_labels.csv`), EfficientNet-Lite0 (ImageNet) features, every split by driver.

One run prints, as hold-out / out-of-fold estimates and test log loss / accuracy on the 3 unseen drivers:
  the logistic-regression probe on the same cached pooled features and driver split (the floor to beat);
  the course recipe (configs/course-2017.toml); a single head with the clip chosen on the hold-out (the old
  default); + calibration; + out-of-fold over driver-grouped folds with bagging (calibration on OOF);
  + test-neighbour smoothing (k chosen on OOF); + pseudo-labels, class-balanced and not; the default run;
  optionally fine-tuning (--finetune-epochs, seconds per epoch printed).

    python bench/state_farm.py [--data ../shared/data/state-farm-distracted-driver-detection] [--size 240x320]
                               [--cache DIR] [--finetune-epochs 0] [--seeds 1 2 3]
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
from _scoring import HEADER, PROBE, dump, probe, row, run_recipes, seed_summary  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "state-farm-distracted-driver-detection")
    parser.add_argument("--size", default="240x320", help="image size: N (square) or HxW (the default: the plugin's)")
    parser.add_argument("--cache", type=Path, default=None, help="feature cache (default: a new temp folder)")
    parser.add_argument("--finetune-epochs", type=int, default=0)
    parser.add_argument("--finetune-from", default="", help='finetune.from_layer: "" the last block, "all", a layer')
    parser.add_argument("--cache-dtype", default="float32", choices=["float32", "float16"],
                        help="image.cache_dtype: how the features are stored")
    parser.add_argument("--only", default="", help="comma-separated words: run only the recipes whose name has one")
    parser.add_argument("--seeds", type=int, nargs="*", default=[],
                        help="the default run again with these seeds (the spread of its test log loss)")
    args = parser.parse_args()

    from podium.competitions import get
    from podium.config import deep_update
    from podium.evaluation.runner import resolve_config
    from podium.vision.data import load_image_data

    work = Path(tempfile.mkdtemp(prefix="podium-bench-state-farm-"))
    plugin = get("state-farm")
    labels = args.data / "test_labels.csv"
    size = [int(side) for side in args.size.lower().split("x")] * (1 if "x" in args.size.lower() else 2)
    user = {"image": {"backbone": str(LITE0), "preprocessing": "efficientnet_lite",
                      "cache_dtype": args.cache_dtype, "size": size},
            "paths": {"cache": str(args.cache or work / "cache")}}
    default = resolve_config(plugin, overrides=user)
    runs = work / "runs"
    plain = {"neighbours": {"enabled": False}, "pseudo": {"enabled": False}}
    recipes = {
        "course recipe (configs/course-2017.toml)": resolve_config(
            plugin, files=[REPO / "configs" / "course-2017.toml"], overrides=user),
        "single head, clip on hold-out (old default)": deep_update(default, {
            **plain, "oof": {"folds": 0}, "calibration": {"enabled": False}}),
        "  + calibration on the hold-out": deep_update(default, {**plain, "oof": {"folds": 0}}),
        "  + OOF by driver, bag of 5, calibration on OOF": deep_update(default, plain),
        "  + test-neighbour smoothing (k on OOF)": deep_update(default, {"pseudo": {"enabled": False},
                                                                        "neighbours": {"enabled": True}}),
        "  + pseudo-labels, not class-balanced": deep_update(default, {"pseudo": {"enabled": True, "balance": False},
                                                                      "neighbours": {"enabled": True}}),
        "  + pseudo-labels, class-balanced": deep_update(default, {"pseudo": {"enabled": True, "balance": True},
                                                                  "neighbours": {"enabled": True}}),
        "default `podium run`": default,
        "  default with the gap head (256 units)": deep_update(default, {"head": {"kind": "gap", "units": 256}}),
        "  ensemble off (the fcn head's bag alone)": deep_update(default, {"ensemble": {"enabled": False}}),
    }
    for seed in args.seeds:
        recipes[f"default `podium run`, seed {seed}"] = deep_update(default, {"seed": seed})
    if args.finetune_epochs:
        name = f"default + fine-tune, {args.finetune_epochs} epochs from {args.finetune_from or 'last block'}"
        recipes[name] = deep_update(default, {
            "finetune": {"enabled": True, "epochs": args.finetune_epochs, "from_layer": args.finetune_from}})
    recipes = only_recipes(recipes, args.only)
    results = {}
    data = load_image_data(plugin, args.data, default, sample=False)
    results[PROBE] = probe(plugin, data, labels, grouped=True)
    run_recipes(plugin, args.data, recipes, labels, runs=runs, results=results)

    drivers = data.labelled.groupby("split")["group"].unique()
    print(f"\n== State Farm: {len(data.labelled)} labelled, hold-out drivers {', '.join(sorted(drivers['valid']))}; "
          f"{len(data.test)} test images of 3 unseen drivers; EfficientNet-Lite0 at {args.size} ==")
    print("val ll: hold-out drivers (the main head); oof ll: out-of-fold over all 10 drivers, grouped by driver; "
          "oof cal: after neighbours, temperature and clip")
    print(HEADER)
    for name, result in results.items():
        print(row(name, result) + (f"   k={result['neighbours_k']}" if "neighbours_k" in result else ""))
    floor = results[PROBE]["test_log_loss"]
    print(f"probe: C={results[PROBE]['C']:g} (cross-validated by driver: log loss {results[PROBE]['cv_log_loss']:.4f})")
    best = min(((r["test_log_loss"], n) for n, r in results.items() if n != PROBE), default=(floor, "the probe"))
    print(f"best: {best[1].strip()} at {best[0]:.4f}, {100 * (1 - best[0] / floor):.0f}% below the probe's {floor:.4f}")
    summary = seed_summary(results, probe_name=PROBE, target=0.65)
    if summary:
        print(summary)
    dump(results, work / "results.json")
    print(f"runs: {runs}")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"bench took {time.perf_counter() - started:.0f} s")
