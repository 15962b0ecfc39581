"""`podium tune` as a function: resolve the config and space, open the study, run the trials, report."""
from __future__ import annotations

from pathlib import Path

from podium.errors import PodiumError
from podium.tuning.settings import objective_metric, resolve_with_tune, search_space
from podium.tuning.study import display_url, finished_count, open_study, study_paths
from podium.tuning.workers import TuneJob, optimize, run_workers

__all__ = ["tune", "SAMPLE_WARNING"]

SAMPLE_WARNING = ("warning: tuning on the sample set. Learning rate and epochs found here are a good start, but "
                  "regularisation (dropout, weight decay, ...) tuned on a sample does not transfer to the full "
                  "training set: more data needs less of it. Re-check those on the full set.")


def tune(plugin, data_dir: Path, *, trials: int, files=(), sets=(), study: str = "default",
         storage: str | None = None, runs_root: Path = Path("runs"), sample: bool = False, jobs: int = 1,
         timeout: float | None = None) -> dict:
    """Search the plugin's space until the study has `trials` finished trials; return the summary."""
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
    config, settings = resolve_with_tune(plugin, files=files, sets=sets)
    space = search_space(plugin, settings, config)
    metric = objective_metric(plugin, settings, config)
    paths = study_paths(runs_root, plugin.name, study, storage)
    if sample:
        print(SAMPLE_WARNING)
    handle = open_study(study, paths.storage, competition=plugin.name, direction=settings["direction"],
                        metric=metric, tune=settings, seed=int(config["seed"]),
                        attrs={"sample": bool(sample), "data_dir": str(data_dir.resolve()),
                               "space": space.to_specs()})
    if not handle.get_trials(deepcopy=False):
        baseline = space.baseline(config)
        if baseline:
            handle.enqueue_trial(baseline)  # the config's own values: the first trial the search must beat
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
    return summary
