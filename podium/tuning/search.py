"""`podium tune` as a function: resolve the config and space, open the study, run the trials, report."""
from __future__ import annotations

import os
from pathlib import Path

from podium.errors import PodiumError
from podium.tuning.settings import fingerprint, objective_metric, resolve_with_tune, search_space
from podium.tuning.study import (StudyChanged, display_url, finished_count, free_study_name, open_study,
                                 study_paths)
from podium.tuning.workers import TuneJob, optimize, run_workers

__all__ = ["tune", "SAMPLE_WARNING"]

SAMPLE_WARNING = ("warning: tuning on the sample set. Learning rate and epochs found here are a good start, but "
                  "regularisation (dropout, weight decay, ...) tuned on a sample does not transfer to the full "
                  "training set: more data needs less of it. Re-check those on the full set.")


def tune(plugin, data_dir: Path, *, trials: int, files=(), sets=(), study: str = "default",
         storage: str | None = None, runs_root: Path = Path("runs"), sample: bool = False, jobs: int = 1,
         timeout: float | None = None, new_study: bool = False) -> dict:
    """Search the plugin's space until the study has `trials` finished trials; return the summary.

    A study resumed with settings its trials cannot change (`fingerprint`) is refused, or, with
    `new_study`, the search goes to the next free study name."""
    from podium.tuning.report import format_summary, write_report

    if trials < 1:
        raise PodiumError(f"--trials must be at least 1, got {trials}")
    if jobs < 1:
        raise PodiumError(f"--jobs must be at least 1, got {jobs}")
    if timeout is not None and timeout <= 0:
        raise PodiumError(f"--timeout must be a positive number of seconds, got {timeout}")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise PodiumError(f"data folder {data_dir} not found")
    cores = usable_cores()
    if jobs > cores:
        print(f"--jobs {jobs} capped at {cores}: this machine has {cores} core(s), and more TensorFlow workers "
              "than cores only slow each other down")
        jobs = cores
    config, settings = resolve_with_tune(plugin, files=files, sets=sets)
    space = search_space(plugin, settings, config)
    metric = objective_metric(plugin, settings, config)  # a metric no run writes is refused here
    if sample:
        print(SAMPLE_WARNING)
    attrs = {"sample": bool(sample), "data_dir": str(data_dir.resolve()), "space": space.to_specs(),
             "fingerprint": fingerprint(config, data_dir=data_dir, sample=sample, metric=metric)}

    def opened(name: str):
        paths = study_paths(runs_root, plugin.name, name, storage)
        return paths, open_study(name, paths.storage, competition=plugin.name, direction=settings["direction"],
                                 metric=metric, tune=settings, seed=int(config["seed"]), attrs=attrs)

    try:
        paths, handle = opened(study)
    except StudyChanged as changed:
        if not new_study:
            raise
        study = _next_study(study, runs_root=runs_root, competition=plugin.name, storage=storage)
        print(f"{changed}\n-> a new study {study!r}")
        paths, handle = opened(study)
    if not handle.get_trials(deepcopy=False):
        baseline = space.baseline(config)
        if baseline:
            # The config's own values: the first trial the search must beat (once, however many start together).
            handle.enqueue_trial(baseline, skip_if_exists=True)
    done = finished_count(handle)
    remaining = trials - done
    print(f"study {study!r} in {display_url(paths.storage)}: {done} finished trial(s), target {trials}; "
          f"searching {', '.join(space.keys)} for the {settings['direction'][:3]} of {metric}")
    if remaining > 0:
        job = TuneJob(competition=plugin.name, data_dir=str(data_dir.resolve()), config=config,
                      space=space.to_specs(), tune=settings, metric=metric, study=study, storage=paths.storage,
                      trials_root=str(paths.trials), sample=bool(sample), trials=int(trials), timeout=timeout,
                      seeded=jobs == 1 and storage is None)
        if jobs == 1 and not settings["trials_per_process"]:
            optimize(job, n_trials=remaining)
        else:
            run_workers(job, remaining=remaining, jobs=jobs, trials_per_process=settings["trials_per_process"])
    summary = write_report(handle, paths.folder, storage=display_url(paths.storage))
    print(format_summary(summary))
    if sample:
        print(SAMPLE_WARNING)
    _refuse_if_nothing_completed(handle)
    return summary


def usable_cores() -> int:
    """The cores this process may run on (its affinity, e.g. a container's share), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def _next_study(name: str, *, runs_root: Path, competition: str, storage: str | None) -> str:
    if storage is not None:
        return free_study_name(name, storage)
    return next(f"{name}-{n}" for n in range(2, 10_000)
                if not study_paths(runs_root, competition, f"{name}-{n}").folder.exists())


def _refuse_if_nothing_completed(study) -> None:
    """A study none of whose trials completed has no best parameters: one line with the first trial's error,
    not a suggestion to train with them."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    if trials and not any(t.state == TrialState.COMPLETE for t in trials):
        failed = [t for t in trials if t.state == TrialState.FAIL]
        why = failed[0].user_attrs.get("error", "no error recorded") if failed else "every trial was pruned"
        raise PodiumError(f"study {study.study_name!r}: no trial completed ({len(failed)} failed; the first: "
                          f"{why.splitlines()[0] if why else why})")
