"""The `tune` section of a config file: what to optimise and how, and changes to the plugin's space.

    [tune]
    only = ["train.lr", "head.dropout"]      # search just these keys of the plugin's space
    pruner = "median"

    [tune.space]
    "train.lr" = {type = "float", low = 3e-4, high = 3e-3, log = true}   # replaces the plugin's range
    "tta.views" = false                                                 # not searched: the config's value is used

Runs never see this section: it is split off before the config reaches a pipeline, so the same
file works for `podium run` and `podium tune`.
"""
from __future__ import annotations

from podium.errors import PodiumError
from podium.config import deep_update, resolve
from podium.tuning.space import SearchSpace

__all__ = ["FINGERPRINT_KEYS", "PRUNERS", "TUNE_DEFAULTS", "check_metric", "fingerprint", "resolve_with_tune",
           "search_space", "objective_metric"]

# Settings a study's trials are not free to change: trials run with other values are not comparable
# (other features, another validation split, another score). The search space is not among them.
FINGERPRINT_KEYS = ("seed", "image.backbone", "image.weights", "image.size", "image.cut", "data.split",
                    "data.valid_fraction", "data.folds", "data.fold", "oof.folds")

PRUNERS = ("median", "hyperband", "none")

TUNE_DEFAULTS: dict = {
    # empty: the out-of-fold metric, oof_<plugin.metric>, where the plugin's runs make out-of-fold estimates
    # (image plugins: oof.folds >= 2), else its validation metric val_<plugin.metric> (e.g. val_rmse)
    "metric": "",
    "direction": "minimize",  # "maximize" for a metric where higher is better (e.g. val_accuracy)
    "monitor": "val_loss",  # the per-epoch Keras log reported to the pruner
    "only": [],  # search only these keys of the space (empty: all of them)
    "space": {"__free__": True},  # entries replace the plugin's own; an entry set to false is not searched
    # "median": stop a trial whose epoch is worse than the median of earlier trials at that epoch;
    # "hyperband": successive halving over epochs (most trials stop after a few epochs: more trials a minute);
    # "none"
    "pruner": "median",
    "startup_trials": 5,  # random trials before the sampler models the space; no pruning before this many finish
    "warmup_epochs": 2,  # epochs every trial runs before it may be pruned
    "heartbeat": 60,  # seconds between a running trial's heartbeats; silent for 2x that (a killed worker): failed
    # A worker process is replaced after this many trials (0: never; with --jobs 1 the trials then run in-process).
    "trials_per_process": 10,
    # "metrics": a trial's run directory keeps its record and metrics.json only (no model, history, prediction
    # or submission file: `podium run --best-of STUDY` writes the best one's full run); "full": every file.
    "record": "metrics",
}


def resolve_with_tune(plugin, *, files=(), sets=(), overrides=None) -> tuple[dict, dict]:
    """(run config, tune settings): the plugin's defaults < config files < overrides < `--set`."""
    defaults = deep_update(plugin.default_config(), {"tune": TUNE_DEFAULTS})
    config = resolve(defaults, files=files, sets=sets, overrides=overrides, ranges=plugin.config_ranges())
    tune = config.pop("tune")
    tune["space"] = {key: value for key, value in tune["space"].items() if key != "__free__"}
    if tune["pruner"] not in PRUNERS:
        raise PodiumError(f"tune.pruner must be one of {', '.join(PRUNERS)}, got {tune['pruner']!r}")
    if tune["record"] not in ("metrics", "full"):
        raise PodiumError(f"tune.record must be 'metrics' or 'full', got {tune['record']!r}")
    if tune["direction"] not in ("minimize", "maximize"):
        raise PodiumError(f"tune.direction must be 'minimize' or 'maximize', got {tune['direction']!r}")
    if min(tune["startup_trials"], tune["warmup_epochs"], tune["trials_per_process"]) < 0 or tune["heartbeat"] < 1:
        raise PodiumError("tune.startup_trials, tune.warmup_epochs and tune.trials_per_process must be >= 0, "
                          "tune.heartbeat >= 1")
    return config, tune


def search_space(plugin, tune: dict, config: dict) -> SearchSpace:
    """The plugin's declared space as changed by the `tune` section, checked against the run config."""
    source = f"{plugin.name} search space"
    space = SearchSpace.combine(plugin.search_space(), tune["space"], tune["only"], source=source)
    space.check_against(config, source=source)
    return space.fitted_to(config, plugin.config_ranges(), source=source)


def check_metric(plugin, metric: str) -> str:
    """Refuse, before any trial, a metric no run writes: a hold-out (`val_`) or out-of-fold (`oof_`) score of
    one of the plugin's metrics (possibly a variant of it, e.g. `val_log_loss_clipped`)."""
    import numpy as np

    if plugin.task == "classification":
        scores = plugin.evaluate(list(plugin.classes), np.eye(len(plugin.classes)))
    else:
        scores = plugin.evaluate(np.array([3.0]), np.array([3.0]))
    stems = [key.removeprefix("val_") for key in scores]
    if not any(f"{prefix}_{stem}" in metric for prefix in ("val", "oof") for stem in stems):
        examples = ", ".join(f"{prefix}_{stem}" for prefix in ("val", "oof") for stem in stems)
        raise PodiumError(f"tune.metric={metric!r} is not a score a {plugin.name} run writes; use one of "
                          f"{examples} (or a variant in a run's metrics.json, e.g. val_{stems[0]}_clipped)")
    return metric


def fingerprint(config: dict, *, data_dir, sample: bool, metric: str) -> dict:
    """What a study's trials share and may not change (see FINGERPRINT_KEYS), as JSON-ready values."""
    from pathlib import Path

    found = {"data": str(Path(data_dir).resolve()), "sample": bool(sample), "metric": metric}
    for key in FINGERPRINT_KEYS:
        node = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            found[key] = node
    return found


def objective_metric(plugin, tune: dict, config: dict | None = None) -> str:
    """tune.metric, or by default the out-of-fold metric when runs make one: a 400-row hold-out is too noisy
    to choose between trials on (on real Dogs vs. Cats the best hold-out trial was the second worst on test)."""
    if tune["metric"]:
        return check_metric(plugin, tune["metric"])
    config = config if config is not None else plugin.default_config()
    oof = config.get("oof") if isinstance(config, dict) else None
    if isinstance(oof, dict) and int(oof.get("folds", 0)) >= 2 and int(config.get("data", {}).get("folds", 0)) < 2:
        return f"oof_{plugin.metric}"
    return f"val_{plugin.metric}"
