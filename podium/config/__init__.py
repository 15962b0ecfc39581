"""Typed, nested configs: plugin defaults, then config files, then `--set key=value`.

A config is a plain nested dict. The defaults fix each key's type; files and `--set`
may only change known keys, and a value of the wrong type is one clear error.
"""
from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

from podium.errors import PodiumError


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
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        return json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise PodiumError(f"config file {path} cannot be parsed: {exc}") from None


def resolve(defaults: dict, files=(), sets=(), overrides: dict | None = None) -> dict:
    """Defaults < each config file in order < `overrides` (programmatic) < each `--set`."""
    config = copy.deepcopy(defaults)
    for file in files:
        config = merge(config, load_file(file), source=str(file))
    if overrides:
        config = merge(config, overrides, source="overrides")
    for item in sets:
        config = merge(config, parse_set(item), source=f"--set {item}")
    return config


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
        "backbone": "vgg16",
        "weights": "imagenet",  # "imagenet", "none", or a path to a weights / .keras file
        "preprocessing": "",  # empty: the backbone's own; required for a .keras file
        "size": [224, 224],  # height, width
        "cut_layer": "",  # empty: the backbone's last conv output
        "batch_size": 32,
        "workers": 1,
        "precision": "float32",  # "float32", "mixed_float16" (GPU), "mixed_bfloat16" (TPU, recent CPUs/GPUs)
        "data_parallel": False,  # split each batch over every local device (keras.distribution.DataParallel)
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
        "loss_weight": 0.0,  # > 0: also regress the largest box; its MSE (input pixels) is scaled by this
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
        "from_layer": "",  # empty: the backbone's last conv block
        "epochs": 2,
        "lr": 1e-4,
        "batch_size": 16,
    },
    "pseudo": {  # pseudo-labeling: retrain with test rows labelled by the first model mixed into each batch
        "enabled": False,
        "fraction": 0.25,  # share of each batch that is pseudo-labelled test rows
        "soft": True,  # predicted probabilities as targets; false: their arg-max, one-hot
        "threshold": 0.0,  # keep only test rows predicted at least this confidently
        "rounds": 1,
    },
    "tta": {"views": 0},
    "submission": {"clip": "auto"},  # "auto" (tuned on validation), "none", or a number lo (hi = 1 - lo)
    "paths": {"cache": "cache"},
}
