"""Fisheries Monitoring on generated data with a planted size leak: what each model gets from images,
metadata, boxes and class maps.

No real Fisheries images are available here, so the data are the plugin's generated boat photos
(several camera sizes; each class is photographed by its "home" camera with probability --leak,
three look-alike tunas, some fish sticking out of the frame, forum-style box files). Every model
trains on the same split of the same data and the same backbone (the real ImageNet
EfficientNet-Lite0 from ../shared when present, else a random VGG16), and prints one table:

    image only (gap and dense heads) | image + metadata | multi-output (class + box) | crop then classify
    | fully convolutional | the leakage probe (metadata alone) | chance

    python bench/fisheries.py [--per-class 80] [--leak 0.75] [--size 128 224] [--epochs 15]

`--seeds 1 2 3` instead scores the default `podium run` (with the same backbone and size) on the generated test
images' labels (test_labels.csv), once per seed, against the logistic-regression probe: scikit-learn on the plain
pass's pooled features of every labelled row, C by cross-validation over 1e-3..1e2, no augmentation, no clip
beyond 1e-15 (and `--variants` still prints the table above).
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
from _common import LITE0  # noqa: E402
from _scoring import HEADER, PROBE, probe, row, run_recipes, seed_summary  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=80, help="training images per class")
    parser.add_argument("--leak", type=float, default=0.75, help="chance a fish is shot by its class's camera")
    parser.add_argument("--size", type=int, nargs=2, default=[128, 224], metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--passes", type=int, default=1, help="augmented feature passes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="folder for data, cache and runs (default: a temp)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[],
                        help="score the default run with these seeds on the test labels, against the probe")
    parser.add_argument("--variants", action="store_true", help="with --seeds: the model table too")
    args = parser.parse_args()

    from podium.competitions import get
    from podium.competitions.fisheries import write_demo_data
    from podium.config import deep_update
    from podium.vision.interpret.leakage import probe
    from podium.evaluation.runner import resolve_config, start_run

    work = args.work or Path(tempfile.mkdtemp(prefix="podium-bench-fisheries-"))
    plugin = get("fisheries")
    data_dir = work / "data"
    if not (data_dir / "train").is_dir():
        write_demo_data(data_dir, seed=args.seed, per_class=args.per_class, stage1=60, stage2=20, leak=args.leak)
    if LITE0.is_file():
        backbone = {"backbone": str(LITE0), "preprocessing": "efficientnet_lite", "weights": "none"}
        fcn_cut, label = "block5c_add", "EfficientNet-Lite0 (ImageNet)"
    else:
        backbone = {"backbone": "vgg16", "weights": "none"}
        fcn_cut, label = "block5_conv3", "VGG16 (random weights)"
    base = deep_update(resolve_config(plugin), {
        "seed": args.seed,
        "image": {**backbone, "size": list(args.size), "batch_size": 32},
        "augment": {"passes": args.passes},
        "head": {"kind": "gap", "units": 256, "dropout": 0.5},
        "train": {"epochs": args.epochs, "batch_size": 32, "lr": 1e-3, "patience": 5},
        "tta": {"views": 0},
        "paths": {"cache": str(work / "cache")},
    })
    if args.seeds:
        default = deep_update(resolve_config(plugin), {"image": {**backbone, "size": list(args.size)},
                                                       "paths": {"cache": str(work / "cache")}})
        defaults(plugin, data_dir, default, args.seeds, work)
        if not args.variants:
            return
    # The box output shares the dense head's last layer (as in the course): a flattening head keeps
    # where things are, which global average pooling throws away, so it is compared with the same head.
    variants = [
        ("image only (gap head)", {"head": {"metadata": False}}),
        ("image + metadata (gap head)", {"head": {"metadata": True}}),
        ("image only (dense head)", {"head": {"kind": "dense", "metadata": False}}),
        # Boxes are fractions of the image, so a weight of 1 puts the box loss on the class loss's scale (in pixels
        # squared it swamped the classifier on real Fisheries: class accuracy 0.98 -> 0.54).
        ("multi-output (dense, class + box)", {"head": {"kind": "dense", "metadata": False},
                                               "boxes": {"loss_weight": 1.0, "crop_classify": True}}),
        ("  box weight 0.1", {"head": {"kind": "dense", "metadata": False}, "boxes": {"loss_weight": 0.1}}),
        ("fully convolutional", {"head": {"kind": "fcn", "units": 128, "metadata": False},
                                 "image": {"cut_layer": fcn_cut}}),
    ]
    rows = []
    for name, changes in variants:
        started = time.perf_counter()
        run_dir, metrics = start_run(plugin, data_dir, deep_update(base, changes), runs_root=work / "runs",
                                     tag=name.split(" ")[0].replace("-", ""))
        seconds = time.perf_counter() - started
        extra = ""
        if "val_box_iou" in metrics:
            extra = f"box IoU {metrics['val_box_iou']:.2f} ({metrics['val_box_iou_over_half']:.0%} > 0.5)"
        rows.append((name, "yes" if changes["head"].get("metadata") else "no", metrics["val_log_loss"],
                     metrics["val_accuracy"], seconds, extra))
        if "crop_val_log_loss" in metrics:
            rows.append(("  crop then classify (2nd stage)", "no", metrics["crop_val_log_loss"],
                         metrics["crop_val_accuracy"], float("nan"), "crops of the predicted boxes"))
    started = time.perf_counter()
    leak = probe(plugin, data_dir, base)
    rows.append(("leakage probe (metadata alone)", "only", leak["metadata_log_loss"], leak["metadata_accuracy"],
                 time.perf_counter() - started, "LEAK flagged" if leak["leak"] else "no leak flagged"))
    rows.append(("chance (class frequencies)", "-", leak["chance_log_loss"], leak["chance_accuracy"],
                 float("nan"), ""))

    print(f"\nFisheries on generated data: {args.per_class} training images per class, planted size leak "
          f"{args.leak:.0%}, {leak['train_rows']} train / {leak['valid_rows']} validation rows")
    print(f"backbone {label} at {args.size[0]}x{args.size[1]}, {args.passes} augmented pass(es), "
          f"{args.epochs} epochs max; work folder {work}\n")
    print(f"  {'model':34s} {'metadata':>8s} {'val_log_loss':>12s} {'val_accuracy':>12s} {'seconds':>8s}  notes")
    for name, metadata, loss, accuracy, seconds, extra in rows:
        shown = f"{seconds:8.1f}" if seconds == seconds else f"{'':8s}"
        print(f"  {name:34s} {metadata:>8s} {loss:12.4f} {accuracy:12.4f} {shown}  {extra}")


def defaults(plugin, data_dir: Path, default: dict, seeds, work: Path) -> None:
    """The default run per seed (and with the ensemble off), scored on the test labels, against the probe."""
    from podium.config import deep_update
    from podium.vision.data import load_image_data

    labels = data_dir / "test_labels.csv"
    recipes = {f"default `podium run`, seed {seed}": deep_update(default, {"seed": seed}) for seed in seeds}
    recipes[f"  ensemble off (seed {seeds[0]})"] = deep_update(default, {"seed": seeds[0],
                                                                       "ensemble": {"enabled": False}})
    data = load_image_data(plugin, data_dir, default, sample=False)
    results = {PROBE: probe(plugin, data, labels, grouped=False)}
    run_recipes(plugin, data_dir, recipes, labels, runs=work / "runs", results=results)
    print(f"\nFisheries on generated data: {len(data.labelled)} labelled, {len(data.test)} test images (stage 1 + 2)")
    print(HEADER)
    for name, result in results.items():
        print(row(name, result))
    print(f"probe: C={results[PROBE]['C']:g} (cross-validated log loss {results[PROBE]['cv_log_loss']:.4f})")
    print(seed_summary(results, probe_name=PROBE, target=1.0))


if __name__ == "__main__":
    main()
