"""Augmentation tuning on the sample set: each transform's strength alone, then the best of each combined.

The course's method: on a small sample, try one augmentation at a time at a few strengths,
keep the best strength of each, then combine them. Each candidate is scored by a head
trained on the plain pass plus `passes` augmented passes of the sample's training rows
(features cached per augmentation, so a rerun costs only the heads) and validated on the
sample's plain validation rows. The baseline trains on the plain pass repeated as often,
so every candidate gets the same number of steps.
"""
from __future__ import annotations

import copy
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.log import logger

# One entry per transform: strength v sets each of `params` to [center - v, center + v]
# (or to v itself when there is no center); the other keys are fixed arguments.
# border_mode 1 is cv2.BORDER_REPLICATE: shifted-in borders repeat the edge instead of black.
DEFAULT_SCAN = [
    {"label": "shift", "name": "Affine", "params": ["translate_percent"], "center": 0.0,
     "values": [0.05, 0.1, 0.2], "border_mode": 1, "p": 0.8},
    {"label": "rotation", "name": "Affine", "params": ["rotate"], "center": 0.0,
     "values": [5, 10, 20], "border_mode": 1, "p": 0.8},
    {"label": "scale", "name": "Affine", "params": ["scale"], "center": 1.0,
     "values": [0.05, 0.1, 0.2], "border_mode": 1, "p": 0.8},
    {"label": "shear", "name": "Affine", "params": ["shear"], "center": 0.0,
     "values": [5, 10, 20], "border_mode": 1, "p": 0.8},
    {"label": "brightness/contrast", "name": "RandomBrightnessContrast", "params": ["brightness_limit", "contrast_limit"],
     "center": 0.0, "values": [0.1, 0.2, 0.3], "p": 0.8},
    {"label": "channel shift", "name": "RGBShift", "params": ["r_shift_limit", "g_shift_limit", "b_shift_limit"],
     "center": 0.0, "values": [10, 20, 40], "p": 0.8},
    {"label": "horizontal flip", "name": "HorizontalFlip", "params": ["p"], "values": [0.5]},
]
_ENTRY_KEYS = ("label", "name", "params", "values", "center")


@dataclass
class AugTuning:
    table: pd.DataFrame  # one row per candidate: transform, strength, arguments, metrics, chosen
    transforms: list  # the chosen albumentations pipeline, as augment.transforms
    config: dict  # {"augment": {"transforms": ..., "passes": ...}}: a config file a run can use
    metric: str


def candidate_transform(entry: dict, strength) -> dict:
    """The augment.transforms item of `entry` at `strength`."""
    fixed = {k: v for k, v in entry.items() if k not in _ENTRY_KEYS}
    center = entry.get("center")
    value = strength if center is None else [float(center) - float(strength), float(center) + float(strength)]
    return {"name": entry["name"], **fixed, **{param: value for param in entry["params"]}}


def check_scan(scan) -> list:
    """A clear error for a malformed scan entry; returns the entries."""
    from podium.vision.augment import build_augment

    if not isinstance(scan, list) or not scan:
        raise PodiumError("the augmentation scan must be a non-empty list of transforms")
    for index, entry in enumerate(scan):
        where = f"scan[{index}]"
        if not isinstance(entry, dict):
            raise PodiumError(f"{where} must be a table, got {entry!r}")
        for key in ("name", "params", "values"):
            if key not in entry:
                raise PodiumError(f"{where} ({entry.get('label', entry.get('name', '?'))}) lacks {key!r}")
        if not isinstance(entry["params"], list) or not entry["params"]:
            raise PodiumError(f"{where}: params must be a non-empty list of argument names")
        if not isinstance(entry["values"], list) or not entry["values"]:
            raise PodiumError(f"{where}: values must be a non-empty list of strengths")
        for strength in entry["values"]:
            build_augment([candidate_transform(entry, strength)])  # fails early on a bad argument
    return scan


def load_scan(path: Path) -> list:
    """A scan file: JSON {"scan": [...]} or TOML with [[scan]] tables."""
    from podium.config import load_file

    loaded = load_file(Path(path))
    if "scan" not in loaded:
        raise PodiumError(f"{path}: expected a 'scan' list of transforms (see DEFAULT_SCAN in podium.tuning.augmentation)")
    return check_scan(loaded["scan"])


def combine(transforms: list) -> list:
    """One transform per class: the chosen Affine shift, rotation, scale and shear become one warp
    (one interpolation, one border) instead of four in a row."""
    merged: dict = {}
    for item in transforms:
        if item["name"] in merged:
            previous = merged[item["name"]]
            probability = max(previous.get("p", 0.5), item.get("p", 0.5))
            merged[item["name"]] = {**previous, **item, "p": probability}
        else:
            merged[item["name"]] = dict(item)
    return list(merged.values())


def sample_data(plugin, data_dir: Path, config: dict):
    """The sample set's training and validation rows with their plain features (no test images)."""
    from podium.vision.data import load_image_data

    return load_image_data(plugin, data_dir, config, sample=True, with_test=False)


class Scorer:
    """Trains heads on the sample's training rows under a given augmentation and scores them on its validation rows."""

    def __init__(self, data, *, passes: int, repeats: int, work_dir: Path):
        self.data, self.passes, self.repeats, self.work_dir = data, int(passes), int(repeats), Path(work_dir)
        if self.passes < 1:
            raise PodiumError(f"augmentation tuning needs at least 1 augmented pass, got {passes}")
        if self.repeats < 1:
            raise PodiumError(f"repeats must be at least 1, got {repeats}")
        self.valid_labels = data.labelled["label"].to_numpy()[data.valid_rows]

    def sources(self, transforms: list | None) -> list:
        """The plain pass, then `passes` passes augmented by `transforms` (or the plain pass again)."""
        from podium.vision.batches import RowSource

        data = self.data
        plain = data.source("train", 0)
        if not transforms:
            return [plain] * (self.passes + 1)
        image = data.config["image"]
        # Only the training rows are augmented: validation always scores the plain pass.
        train = data.labelled.iloc[data.train_rows].reset_index(drop=True)
        targets = data.one_hot(data.y[data.train_rows])
        sources = [plain]
        for p in range(1, self.passes + 1):
            features = data.cache.features(data.spec, train["path"].tolist(), pass_index=p, augment=transforms,
                                           batch_size=int(image["batch_size"]),
                                           skip_bad_images=bool(data.config["data"]["skip_bad_images"]),
                                           label="sample train")
            sources.append(RowSource(data.inputs(features, train), np.arange(len(train)), targets, name=f"train/p{p}"))
        return sources

    def score(self, transforms: list | None) -> dict:
        """Validation metrics averaged over `repeats` seeds."""
        from podium.vision.batches import FeatureBatches
        from podium.vision.data import plain_data
        from podium.vision.learner import Learner

        data, config = self.data, self.data.config
        sources = self.sources(transforms)
        runs = []
        for repeat in range(self.repeats):
            seed = int(config["seed"]) + repeat
            trial = plain_data(data, config={**config, "seed": seed})
            batches = FeatureBatches(sources, batch_size=int(config["train"]["batch_size"]), shuffle=True, seed=seed)
            learner = Learner.train_head(trial, self.work_dir, name="aug_tuning", batches=batches, verbose=0)
            runs.append(data.plugin.evaluate(self.valid_labels, learner.predict("valid")))
        return {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}


def tune_augmentation(plugin, data_dir: Path, config: dict, *, scan=None, passes: int = 2,
                      repeats: int = 1) -> AugTuning:
    """Scan each transform's strengths alone on the sample set, keep each one's best strength if it beats
    no augmentation, then score those combined. The chosen pipeline is the combination, or the best
    single transform when that scores better."""
    config = copy.deepcopy(config)
    config["augment"]["passes"] = 0  # the scorer builds its own passes
    scan = check_scan(copy.deepcopy(scan if scan is not None else DEFAULT_SCAN))
    metric = f"val_{plugin.metric}"
    data = sample_data(plugin, data_dir, config)
    total = 2 + sum(len(entry["values"]) for entry in scan)  # with no augmentation and the combination
    logger.info(f"augmentation tuning on the sample set: {len(data.train_rows)} training and {len(data.valid_rows)} "
          f"validation rows; up to {total} candidates, {repeats} head(s) each, plain pass + {passes} augmented")
    rows = []
    with tempfile.TemporaryDirectory(prefix="podium-aug-tuning-") as work_dir:
        scorer = Scorer(data, passes=passes, repeats=repeats, work_dir=Path(work_dir))

        def scored(transform: str, strength, transforms):
            rows.append({"transform": transform, "strength": strength, "transforms": transforms,
                         **scorer.score(transforms)})
            logger.info(f"  [{len(rows):2d}/{total}] {transform:22s} {_strength_text(strength):>6s}  "
                  f"{metric} {rows[-1][metric]:.4f}")
            return rows[-1]

        baseline = scored("none", None, [])
        best_of_each = []
        for entry in scan:
            label = entry.get("label", entry["name"])
            tried = [scored(label, strength, [candidate_transform(entry, strength)]) for strength in entry["values"]]
            best = min(tried, key=lambda row: row[metric])
            if best[metric] < baseline[metric]:
                best_of_each.append(best)
        chosen = baseline
        if best_of_each:
            combined = scored("combined", None, combine([t for row in best_of_each for t in row["transforms"]]))
            best_single = min(best_of_each, key=lambda row: row[metric])
            chosen = combined if combined[metric] <= best_single[metric] else best_single
    table = pd.DataFrame(rows)
    table["chosen"] = [row is chosen for row in rows]
    table["best_of_transform"] = [any(row is best for best in best_of_each) for row in rows]
    transforms = chosen["transforms"]
    return AugTuning(table=table, transforms=transforms,
                     config={"augment": {"transforms": transforms, "passes": int(passes) if transforms else 0}},
                     metric=metric)


def _strength_text(strength) -> str:
    if strength is None or (isinstance(strength, float) and np.isnan(strength)):
        return "-"  # no augmentation, or the combination
    return f"{strength:g}" if isinstance(strength, (int, float)) else str(strength)


def format_table(result: AugTuning) -> str:
    """The scan as text: one line per candidate, the best strength of each transform and the choice marked."""
    table = result.table
    metrics = [c for c in table.columns if c.startswith("val_")]
    baseline = float(table.loc[table["transform"] == "none", result.metric].iloc[0])
    header = f"{'transform':22s} {'strength':>9s} " + " ".join(f"{m:>14s}" for m in metrics) + f" {'vs none':>9s}"
    lines = [header, "-" * len(header)]
    for row in table.itertuples(index=False):
        row = row._asdict()
        mark = (" *" if row["best_of_transform"] else "") + (" <- chosen" if row["chosen"] else "")
        values = " ".join(f"{row[m]:14.4f}" for m in metrics)
        lines.append(f"{row['transform']:22s} {_strength_text(row['strength']):>9s} {values} "
                     f"{row[result.metric] - baseline:+9.4f}{mark}")
    lines.append("* best strength of its transform, kept for the combination (it beats no augmentation)")
    return "\n".join(lines)


def write_results(result: AugTuning, out: Path) -> tuple[Path, Path]:
    """The config file (never over an existing file) and the scores table beside it."""
    from podium.files import atomic_write_text

    out = Path(out)
    if out.suffix != ".json":
        raise PodiumError(f"--out {out}: the tuned config is written as JSON; name it *.json")
    scores = out.with_name(f"{out.stem}-scores.csv")
    for path in (out, scores):
        if path.exists():
            raise PodiumError(f"{path} already exists; refusing to overwrite it")
    frame = result.table.assign(transforms=[json.dumps(t) for t in result.table["transforms"]])
    atomic_write_text(scores, frame.to_csv(index=False, float_format="%.6f"), overwrite=False)
    atomic_write_text(out, json.dumps(result.config, indent=2) + "\n", overwrite=False)
    return out, scores
