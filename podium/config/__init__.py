"""Typed, nested configs: plugin defaults, then config files, then `--set key=value`.

A config is a plain nested dict. The defaults fix each key's type; files and `--set`
may only change known keys, and a value of the wrong type is one clear error. Each key's
allowed values are declared beside its default (`IMAGE_RANGES` next to `IMAGE_DEFAULTS`;
a plugin declares its own keys with `declare_ranges`) and checked by `resolve`, which every
command calls before it creates anything.
"""
from __future__ import annotations

import copy
import json
import math
import tomllib
from pathlib import Path

from podium.errors import PodiumError

__all__ = ["CLIP", "IMAGE_DEFAULTS", "IMAGE_RANGES", "Allowed", "above", "at_least", "between", "check_ranges", "coerce",
           "declare_ranges", "deep_update", "int_list", "known_ranges", "load_file", "merge", "non_empty_text", "one_of",
           "parse_set", "resolve", "whole_number_text", "zero_or_at_least"]


def merge(defaults: dict, overrides: dict, *, source: str, prefix: str = "") -> dict:
    """Return a copy of `defaults` updated by `overrides`, type-checked key by key."""
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        dotted = f"{prefix}{key}"
        if key not in merged:
            known = ", ".join(sorted(f"{prefix}{k}" for k in merged))
            raise PodiumError(f"{source}: unknown config key '{dotted}' (known: {known})")
        default = merged[key]
        if isinstance(default, dict) and default and not _is_free_dict(default):
            if not isinstance(value, dict):
                raise PodiumError(f"{source}: '{dotted}' is a section; give keys under it")
            merged[key] = merge(default, value, source=source, prefix=f"{dotted}.")
        else:
            merged[key] = coerce(value, default, dotted, source)
    return merged


def _is_free_dict(value: dict) -> bool:
    # A section whose keys are data (e.g. a search space) is replaced whole, not merged.
    return bool(value.get("__free__"))


def coerce(value, default, dotted: str, source: str):
    """Check `value` against the type of `default`; ints widen to floats, nothing else converts."""
    if default is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # e.g. submission.clip=0.05 for a key that also takes "auto"
    elif isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return list(value)
    elif isinstance(default, dict):
        if isinstance(value, dict):
            # A free section stays free, so a later file may replace it again.
            return {"__free__": True, **value} if _is_free_dict(default) else value
    raise PodiumError(
        f"{source}: '{dotted}' must be {type(default).__name__} (default {default!r}), got {value!r}"
    )


def parse_set(item: str) -> dict:
    """`train.lr=0.01` -> {"train": {"lr": 0.01}}; values are JSON, or a bare string."""
    if "=" not in item:
        raise PodiumError(f"--set {item!r}: expected key=value, e.g. train.lr=0.001")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise PodiumError(f"--set {item!r}: empty key")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    nested: dict = value
    for part in reversed(key.split(".")):
        nested = {part: nested}
    return nested


def load_file(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise PodiumError(f"config file {path} not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PodiumError(f"config file {path} is not UTF-8 text (byte {exc.start}: {exc.reason}); "
                          "a config is a TOML or JSON text file") from None
    try:
        layer = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise PodiumError(f"config file {path} cannot be parsed: {exc}") from None
    if not isinstance(layer, dict):
        raise PodiumError(f"config file {path}: the top level must be a table of sections (a JSON object), "
                          f"got a {type(layer).__name__}")
    return layer


def resolve(defaults: dict, files=(), sets=(), overrides: dict | None = None, *, ranges: dict | None = None) -> dict:
    """Defaults < each config file in order < `overrides` (programmatic) < each `--set`; then every
    declared range (see `check_ranges`), naming where an out-of-range value came from."""
    config = copy.deepcopy(defaults)
    origin: dict[str, str] = {}
    for file in files:
        layer = load_file(file)
        config = merge(config, layer, source=str(file))
        origin.update(dict.fromkeys(_dotted_keys(layer), str(file)))
    if overrides:
        config = merge(config, overrides, source="overrides")
        origin.update(dict.fromkeys(_dotted_keys(overrides), "overrides"))
    for item in sets:
        layer = parse_set(item)
        config = merge(config, layer, source=f"--set {item}")
        origin.update(dict.fromkeys(_dotted_keys(layer), f"--set {item}"))
    check_ranges(config, ranges, origin=origin)
    return config


def _dotted_keys(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, dict):
            keys += _dotted_keys(value, f"{dotted}.")
    return keys


# -- allowed values -------------------------------------------------------------------------------
class Allowed:
    """One key's allowed values: `problem(value)` is None when fine, else what is wrong, in words."""

    def __init__(self, test, text: str):
        self._test, self.text = test, text

    def problem(self, value) -> str | None:
        try:
            ok = bool(self._test(value))
        except (TypeError, ValueError):
            ok = False
        return None if ok else f"must be {self.text}"

    def __repr__(self) -> str:
        return f"Allowed({self.text})"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def at_least(low) -> Allowed:
    return Allowed(lambda v: _number(v) and v >= low, f">= {low}")


def above(low) -> Allowed:
    return Allowed(lambda v: _number(v) and v > low, f"> {low}")


def between(low, high, *, low_open: bool = False, high_open: bool = False) -> Allowed:
    def test(v):
        return (_number(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high))
    return Allowed(test, f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}")


def one_of(*choices) -> Allowed:
    return Allowed(lambda v: v in choices, "one of " + ", ".join(repr(c) for c in choices))


def non_empty_text() -> Allowed:
    return Allowed(lambda v: isinstance(v, str) and v.strip() != "", "a non-empty text")


def int_list(length: int, low: int) -> Allowed:
    return Allowed(lambda v: isinstance(v, list) and len(v) == length
                   and all(isinstance(x, int) and not isinstance(x, bool) and x >= low for x in v),
                   f"a list of {length} whole numbers, each >= {low}")


def zero_or_at_least(low) -> Allowed:
    return Allowed(lambda v: _number(v) and (v == 0 or v >= low), f"0 (off) or >= {low}")


def whole_number_text(value) -> bool:
    """An int, or text of ASCII digits only ("²" and "٣" pass `str.isdigit` but are no number to `int`)."""
    text = str(value).strip()
    return not isinstance(value, bool) and text.isascii() and text.isdigit()


def _clip_ok(value) -> bool:
    if isinstance(value, str) and value.strip().lower() in ("auto", "none"):
        return True
    return 0.0 <= float(value) < 0.5


CLIP = Allowed(_clip_ok, "'auto', 'none' or a number in [0, 0.5)")

# Ranges plugins declared for their own keys (see `declare_ranges`), by dotted key.
_DECLARED: dict[str, Allowed] = {}


def declare_ranges(ranges: dict) -> None:
    """A plugin's ranges for its own keys, by dotted key (`{"collab.factors": at_least(1)}`); call it
    at import, beside the plugin's defaults. `resolve` checks them wherever the key exists. A key
    declared twice must be declared the same way."""
    for key, allowed in ranges.items():
        if key in _DECLARED and _DECLARED[key].text != allowed.text:
            raise ValueError(f"config range of {key} declared twice: {_DECLARED[key].text} and {allowed.text}")
        _DECLARED[key] = allowed


def known_ranges(extra: dict | None = None) -> dict:
    return {**IMAGE_RANGES, **_DECLARED, **(extra or {})}


def check_ranges(config: dict, ranges: dict | None = None, *, origin: dict | None = None) -> dict:
    """Refuse, in one line naming the key, its value and where it was set, any value outside its
    declared range (shared, declared by plugins, or `ranges`); keys a config lacks are skipped."""
    origin = origin or {}
    for key, allowed in known_ranges(ranges).items():
        found, value = _lookup(config, key)
        if not found:
            continue
        problem = allowed.problem(value)
        if problem:
            where = origin.get(key) or next((origin[k] for k in _prefixes(key) if k in origin), "the defaults")
            raise PodiumError(f"{where}: '{key}' {problem}, got {value!r}")
    for key, allowed in _CROSS_CHECKS:
        problem = allowed(config)
        if problem:
            raise PodiumError(f"{origin.get(key, 'config')}: {problem}")
    return config


def _prefixes(key: str) -> list[str]:
    parts = key.split(".")
    return [".".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)]


def _lookup(config: dict, key: str):
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _fold_in_range(config: dict) -> str | None:
    data = config.get("data")
    if not isinstance(data, dict) or "folds" not in data or "fold" not in data:
        return None
    folds, fold = data["folds"], data["fold"]
    if _number(folds) and folds >= 2 and _number(fold) and fold >= folds:
        return f"'data.fold' must be below data.folds={folds}, got {fold}"
    return None


def _units_for_kind(config: dict) -> str | None:
    head = config.get("head")
    if not isinstance(head, dict) or "units" not in head or "kind" not in head:
        return None
    if head["units"] == 0 and head["kind"] != "gap":
        return f"'head.units' = 0 (no hidden layer) is for head.kind=gap; {head['kind']} needs units >= 1"
    return None


_CROSS_CHECKS = [("data.fold", _fold_in_range), ("head.units", _units_for_kind)]


def deep_update(base: dict, updates: dict) -> dict:
    """Plugin defaults on top of shared defaults: new keys allowed, sections merged."""
    result = copy.deepcopy(base)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict) and not _is_free_dict(result[key]):
            result[key] = deep_update(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


# Shared defaults for image classification plugins; each plugin adjusts them.
IMAGE_DEFAULTS: dict = {
    "seed": 42,
    "data": {
        "split": "stratified",  # "stratified", "group" (by the table's group column)
        "valid_fraction": 0.2,
        "folds": 0,  # >= 2: validate on fold `data.fold` of a k-fold instead of a hold-out
        "fold": 0,
        "sample_train": 200,
        "sample_valid": 100,
        "skip_bad_images": False,
    },
    "image": {
        # EfficientNetV2-S: 83.9% ImageNet top-1 (Keras applications table) against VGG16's 71.3%, and faster
        # than VGG16 here (bench/backbones.py); VGG16 stays in configs/course-2017.toml.
        "backbone": "efficientnetv2s",
        "weights": "imagenet",  # "imagenet", "none", or a path to a weights / .keras file
        "preprocessing": "",  # empty: the backbone's own; required for a .keras file
        "size": [224, 224],  # height, width
        "cut_layer": "",  # empty: the backbone's last conv output
        "batch_size": 32,
        "workers": 1,
        "precision": "float32",  # "float32", "mixed_float16" (GPU), "mixed_bfloat16" (TPU, recent CPUs/GPUs)
        "data_parallel": False,  # split each batch over every local device (keras.distribution.DataParallel)
        # How cached features are stored: float16 halves the disk (State Farm at 240x320 with Lite0: 21 GB, not 42)
        # and scored as float32 did on ../shared (test log loss: Dogs vs. Cats 0.0484 vs 0.0481, State Farm
        # 1.2421 vs 1.2654; bench/redux.py, bench/state_farm.py --cache-dtype); "float32" is the other choice.
        "cache_dtype": "float16",
    },
    "augment": {
        # albumentations transforms: {"name": <class in albumentations>, ...its keyword arguments}
        "transforms": [
            {"name": "HorizontalFlip", "p": 0.5},
            {"name": "Affine", "translate_percent": [-0.05, 0.05], "rotate": [-10, 10], "scale": [0.95, 1.05], "p": 0.7},
            {"name": "RandomBrightnessContrast", "brightness_limit": 0.1, "contrast_limit": 0.1, "p": 0.5},
        ],
        "passes": 0,  # augmented passes of the training set through the backbone, cached
    },
    "head": {
        "kind": "gap",  # "gap" (global average pooling + dense), "dense" (flatten + dense), "fcn" (conv class maps)
        "units": 256,  # dense units, or conv filters of an fcn head
        "dropout": 0.5,
        "input_bn": True,
        "conv_layers": 2,  # fcn: 3x3 conv layers before the 1x1 conv to one map per class
        "metadata": True,  # feed the plugin's metadata columns (if it declares any) as a second input
    },
    "boxes": {  # plugins whose table has bounding boxes (bbox_x0, bbox_y0, bbox_x1, bbox_y1)
        "loss_weight": 0.0,  # > 0: also regress the largest box; its MSE (fractions of the input) is scaled by this
        "crop_classify": False,  # then classify crops of the predicted boxes, compared on validation
        "crop_margin": 0.15,  # fraction of the box's size added on each side of a crop
    },
    "train": {
        "epochs": 20,
        "batch_size": 64,
        "lr": 1e-3,
        "warmup_epochs": 1,
        "warmup_start": 0.1,  # first lr = lr * warmup_start: start low to get out of the hole
        "anneal": "cosine",  # "cosine" or "none"
        "patience": 5,
        "weight_decay": 1e-4,
        "label_smoothing": 0.0,
    },
    "finetune": {
        "enabled": False,
        "from_layer": "",  # empty: the backbone's last conv block; "all": the whole network
        "epochs": 2,
        "lr": 1e-4,  # the head's; the deepest block trained gets lr / lr_ratio (discriminative learning rates)
        "lr_ratio": 10.0,
        "unfreeze": "gradual",  # "gradual": one more block each epoch (from the last); "all": at once
        "batch_size": 16,
    },
    "pseudo": {  # pseudo-labeling: retrain with test rows labelled by the first model mixed into each batch
        "enabled": False,
        "fraction": 0.25,  # share of each batch that is pseudo-labelled test rows
        "soft": True,  # predicted probabilities as targets; false: their arg-max, one-hot
        "threshold": 0.0,  # keep only test rows predicted at least this confidently
        "rounds": 1,
        "balance": True,  # keep as many test rows of each predicted class as the labelled rows' class shares
    },
    # Out-of-fold estimates over every labelled row (k heads on cached features, grouped by data.split);
    # the test prediction is the mean of the fold heads (bagging). folds = 0: off.
    "oof": {"folds": 5, "bag": True, "refit": False},
    # Heads of several kinds on the oof stage's folds, weighted by greedy selection (with replacement, `rounds`
    # picks) on their out-of-fold log loss; the submission is their weighted bags. enabled = false: the one head.
    "ensemble": {"enabled": True, "members": ["logistic", "gap", "fcn", "metadata"], "rounds": 40},
    # Fitted on out-of-fold predictions (else the hold-out): a temperature, then a clip, each kept only beyond its
    # noise; clip_floor: the least clip the user accepts (0: chosen from the grid, 0 included).
    "calibration": {"enabled": True, "temperature": True, "clip_floor": 0.0},
    # Average each prediction with its k nearest images of the same split (features); "auto": k chosen on OOF.
    "neighbours": {"enabled": False, "k": "auto"},
    "tta": {"views": 0},
    "submission": {"clip": "auto"},  # "auto" (tuned on validation), "none", or a number lo (hi = 1 - lo)
    "paths": {"cache": "cache"},
    "report": {"enabled": True},  # report.html at the end of `podium run` (never for tuning trials)
}


# Allowed values of the shared image keys, beside their defaults above.
IMAGE_RANGES: dict = {
    "seed": at_least(0),
    "data.split": one_of("stratified", "group", "random"),
    "data.valid_fraction": between(0, 1, low_open=True, high_open=True),
    "data.folds": zero_or_at_least(2),
    "data.fold": at_least(0),
    "data.sample_train": at_least(1),
    "data.sample_valid": at_least(1),
    "image.backbone": non_empty_text(),
    "image.weights": non_empty_text(),
    "image.size": int_list(2, 32),
    "image.batch_size": at_least(1),
    "image.workers": at_least(1),
    "image.precision": one_of("float32", "mixed_float16", "mixed_bfloat16"),
    "image.data_parallel": one_of(True, False),
    "image.cache_dtype": one_of("float32", "float16"),
    "augment.passes": at_least(0),
    "head.kind": one_of("gap", "dense", "fcn"),
    "head.units": at_least(0),  # 0: gap only (pooled features straight to the classifier); see _units_for_kind
    "head.dropout": between(0, 1, high_open=True),
    "head.conv_layers": at_least(0),
    "boxes.loss_weight": at_least(0),
    "boxes.crop_margin": at_least(0),
    "train.epochs": at_least(1),
    "train.batch_size": at_least(1),
    "train.lr": above(0),
    "train.warmup_epochs": at_least(0),
    "train.warmup_start": between(0, 1, low_open=True),
    "train.anneal": one_of("cosine", "none"),
    "train.patience": at_least(0),
    "train.weight_decay": at_least(0),
    "train.label_smoothing": between(0, 1, high_open=True),
    "finetune.epochs": at_least(1),
    "finetune.lr": above(0),
    "finetune.batch_size": at_least(1),
    "finetune.lr_ratio": at_least(1),
    "finetune.unfreeze": one_of("gradual", "all"),
    "pseudo.fraction": between(0, 1, low_open=True, high_open=True),
    "pseudo.threshold": between(0, 1, high_open=True),
    "pseudo.rounds": at_least(1),
    "pseudo.balance": one_of(True, False),
    "oof.folds": zero_or_at_least(2),
    "oof.bag": one_of(True, False),
    "oof.refit": one_of(True, False),
    "ensemble.enabled": one_of(True, False),
    "ensemble.members": Allowed(lambda v: isinstance(v, list) and len(v) > 0
                                and all(m in ("logistic", "gap", "fcn", "metadata") for m in v),
                                "a non-empty list of 'logistic', 'gap', 'fcn', 'metadata'"),
    "ensemble.rounds": at_least(1),
    "calibration.enabled": one_of(True, False),
    "calibration.temperature": one_of(True, False),
    "calibration.clip_floor": between(0, 0.5, high_open=True),
    "neighbours.enabled": one_of(True, False),
    "neighbours.k": Allowed(lambda v: not isinstance(v, bool) and (str(v).strip() == "auto" or whole_number_text(v)),
                            "'auto' or a whole number >= 0"),
    "tta.views": at_least(0),
    "submission.clip": CLIP,
    "paths.cache": non_empty_text(),
    "report.enabled": one_of(True, False),
}
