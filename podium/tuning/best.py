"""`podium run --best-of STUDY`: the run config with a study's best parameters applied."""
from __future__ import annotations

from pathlib import Path

from podium.errors import PodiumError
from podium.tuning.settings import resolve_with_tune
from podium.tuning.space import overrides_from_params
from podium.tuning.study import best_trial, display_url, load_study, study_paths

__all__ = ["run_config"]


def run_config(plugin, *, files=(), sets=(), best_of: str | None = None, storage: str | None = None,
               runs_root: Path = Path("runs"), sample: bool = False) -> dict:
    """Defaults < config files < the study's best parameters < `--set`. A `[tune]` section is ignored."""
    if not best_of:
        if storage:
            raise PodiumError("--storage names the database of a study: use it with --best-of STUDY")
        return resolve_with_tune(plugin, files=files, sets=sets)[0]
    paths = study_paths(runs_root, plugin.name, best_of, storage)
    if storage is None and not (paths.folder / "study.db").is_file():
        raise PodiumError(f"no study {best_of!r} for {plugin.name}: {paths.folder / 'study.db'} not found "
                          "(give the runs root of `podium tune` with --out, or its database with --storage)")
    study = load_study(best_of, paths.storage)
    tuned_for = study.user_attrs.get("competition")
    if tuned_for != plugin.name:
        raise PodiumError(f"study {best_of!r} in {display_url(paths.storage)} tunes {tuned_for}, not {plugin.name}")
    best = best_trial(study)
    config = resolve_with_tune(plugin, files=files, sets=sets, overrides=overrides_from_params(best.params))[0]
    print(f"best of study {best_of!r}: trial {best.number}, {study.user_attrs.get('metric')} {best.value:.5f}")
    for key, value in best.params.items():
        print(f"  {key} = {value:.4g}" if isinstance(value, float) else f"  {key} = {value}")
    if study.user_attrs.get("sample") and not sample:
        print("note: this study was tuned on the sample set; regularisation tuned on a sample does not transfer "
              "to the full training set, so compare with the defaults before trusting it")
    _report_differences(config, best.user_attrs.get("run_dir"))
    return config


def _report_differences(config: dict, trial_run: str | None) -> None:
    """Name the settings where this run departs from the best trial's (its score may then differ)."""
    if not trial_run or not (Path(trial_run) / "config.json").is_file():
        return
    from podium.files import read_json

    ours, theirs = _flatten(config), _flatten(read_json(Path(trial_run) / "config.json"))
    differing = sorted(key for key in ours.keys() | theirs.keys() if ours.get(key) != theirs.get(key))
    if differing:
        print(f"note: settings differ from the best trial's run ({trial_run}): {', '.join(differing)}")


def _flatten(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
