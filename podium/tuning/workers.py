"""Worker processes: each one runs trials of the same study, coordinated only through its storage.

`--jobs J` keeps J processes busy on this machine; other machines join by running the same
command against a shared database URL. Nothing else schedules work: a worker asks the
sampler for parameters, runs the trial and writes the result to the storage. A worker is
replaced by a fresh process after `tune.trials_per_process` trials, so memory that
TensorFlow keeps per trained model (traced graphs) cannot pile up over a long search.
"""
from __future__ import annotations

import _thread
import logging
import multiprocessing
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import wait
from pathlib import Path

from podium.errors import PodiumError

__all__ = ["TuneJob", "optimize", "run_workers", "shares", "stop_workers", "worker"]


@dataclass(frozen=True)
class TuneJob:
    """Everything a worker needs, picklable for a spawned process."""

    competition: str
    data_dir: str
    config: dict
    space: dict  # specs of the search space, see `space.SearchSpace.from_specs`
    tune: dict
    metric: str
    study: str
    storage: str
    trials_root: str
    sample: bool
    trials: int  # the study's target of finished (complete or pruned) trials
    timeout: float | None = None
    # One process at a time on a local study: its sampler is seeded from the config, so a search can be
    # repeated. Parallel workers (of one machine or several) draw fresh entropy: seeded alike, they would
    # propose the same random first points.
    seeded: bool = True


def optimize(job: TuneJob, *, n_trials: int) -> None:
    """Run up to `n_trials` trials in this process, stopping early once the study has `job.trials`."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    import multiprocessing

    from podium.competitions import get
    from podium.log import configure
    from podium.tuning.objective import Objective
    from podium.tuning.space import SearchSpace
    from podium.tuning.study import finished_count, open_study

    if multiprocessing.parent_process() is not None:
        configure(quiet=True)  # one of several workers: the parent reports the study, not every epoch
    _quiet_after_interrupt()
    plugin = get(job.competition)
    space = SearchSpace.from_specs(job.space, source="search space")
    study = open_study(job.study, job.storage, competition=plugin.name, direction=job.tune["direction"],
                       metric=job.metric, tune=job.tune, seed=int(job.config["seed"]) if job.seeded else None)
    if finished_count(study) >= job.trials:
        return
    objective = Objective(plugin, Path(job.data_dir), job.config, space, trials_root=Path(job.trials_root),
                          sample=job.sample, metric=job.metric, monitor=job.tune["monitor"],
                          record=job.tune.get("record", "metrics"))
    # Other workers (or machines) add trials too: stop once the study as a whole has enough. The objective
    # clears the Keras session and collects garbage after every trial itself (optuna's gc_after_trial would
    # collect a second time, about as long again).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _on_interrupt) if main_thread else None
    try:
        study.optimize(objective, n_trials=n_trials, timeout=job.timeout, catch=(Exception,),
                       callbacks=[MaxTrialsCallback(job.trials, states=(TrialState.COMPLETE, TrialState.PRUNED)),
                                  _stop_when_interrupted])
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt


# Set by Ctrl-C in a process running trials. TensorFlow may turn the KeyboardInterrupt raised inside a traced
# function into another error, which optuna would record as an ordinary failure and go on: the flag stops
# the study after that trial all the same, and silences optuna's report of it.
_INTERRUPTED = threading.Event()
# Set when the one KeyboardInterrupt was swallowed where it could not propagate: it is raised again once.
_REDELIVER = threading.Event()


def _on_interrupt(signum, frame) -> None:
    # Once: a terminal's Ctrl-C reaches a worker twice (from the terminal and passed on by the parent), and a
    # second KeyboardInterrupt inside optuna's own clean-up would leave its trial RUNNING.
    if _REDELIVER.is_set():
        _REDELIVER.clear()
        raise KeyboardInterrupt
    if not _INTERRUPTED.is_set():
        _INTERRUPTED.set()
        raise KeyboardInterrupt


def _stop_when_interrupted(study, trial) -> None:
    if _INTERRUPTED.is_set():
        study.stop()


class _QuietAfterInterrupt(logging.Filter):
    """Optuna logs a trial stopped by Ctrl-C with its traceback, then the trial's state: the command says it
    in one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
            _INTERRUPTED.set()
        return not _INTERRUPTED.is_set()


def _quiet_after_interrupt() -> None:
    # On optuna's handler: a filter on its logger would not see the records of its child loggers.
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _QuietAfterInterrupt) for f in handler.filters):
            handler.addFilter(_QuietAfterInterrupt())
    sys.unraisablehook = _quiet_unraisable


def _quiet_unraisable(unraisable) -> None:
    # Ctrl-C landing in a garbage-collection callback (JAX registers one) cannot propagate, and Python would
    # print it with a traceback: deliver it again, from another thread once this callback has returned, so the
    # running trial stops now rather than after it finishes.
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _INTERRUPTED.is_set():
        _REDELIVER.set()
        threading.Timer(0.05, _thread.interrupt_main, args=(signal.SIGINT,)).start()
        return
    sys.__unraisablehook__(unraisable)


def worker(job: TuneJob, *, n_trials: int) -> None:
    """A worker process's body: `optimize`, and on Ctrl-C a quiet exit 130 (optuna has marked the running
    trial failed; the parent says what happened, once)."""
    try:
        optimize(job, n_trials=n_trials)
    except KeyboardInterrupt:
        sys.exit(130)


def shares(total: int, jobs: int) -> list[int]:
    """`total` trials split over `jobs` workers as evenly as possible (no worker gets none)."""
    jobs = max(1, min(int(jobs), int(total)))
    return [total // jobs + (1 if index < total % jobs else 0) for index in range(jobs)]


def _until_queue_claimed(job: TuneJob, *, first) -> None:
    """Wait while the study has enqueued trials (the config's own values) and the first worker is alive.
    SQLite has no row locks: workers started together both took the enqueued trial and ran it twice, and
    the second one's result was refused."""
    from optuna.trial import TrialState

    from podium.tuning.study import load_study

    while first.is_alive() and load_study(job.study, job.storage).get_trials(deepcopy=False,
                                                                            states=(TrialState.WAITING,)):
        time.sleep(0.2)


def run_workers(job: TuneJob, *, remaining: int, jobs: int, trials_per_process: int = 0) -> None:
    """Start up to `remaining` trials over `jobs` process slots sharing the study; wait for all of them.

    Each slot may start its share of the trials; a slot's process runs at most `trials_per_process`
    of them (0: all) and is then replaced, until the share is used, the study has `job.trials`
    finished trials, or the timeout has passed.
    """
    from podium.tuning.study import finished_count, load_study

    context = multiprocessing.get_context("spawn")  # a fresh interpreter each: no forked TensorFlow state
    budgets = shares(remaining, jobs)
    deadline = time.monotonic() + job.timeout if job.timeout else None
    running, failed, started = {}, [], 0

    def start(slot: int):
        nonlocal started
        n_trials = min(budgets[slot], trials_per_process or budgets[slot])
        budgets[slot] -= n_trials
        started += 1
        left = None if deadline is None else max(deadline - time.monotonic(), 1.0)
        process = context.Process(target=worker, args=(replace(job, timeout=left),),
                                  kwargs={"n_trials": n_trials}, name=f"podium-tune-{started}")
        process.start()
        running[process.sentinel] = (slot, process)
        return process

    try:
        for slot in range(len(budgets)):
            process = start(slot)
            if slot == 0 and len(budgets) > 1:
                _until_queue_claimed(job, first=process)
        while running:
            for sentinel in wait(list(running)):
                slot, process = running.pop(sentinel)
                process.join()
                if process.exitcode != 0:
                    failed.append(f"{process.name} (exit code {process.exitcode})")
                    continue
                out_of_time = deadline is not None and time.monotonic() >= deadline
                if budgets[slot] and not out_of_time and \
                        finished_count(load_study(job.study, job.storage)) < job.trials:
                    start(slot)
    except KeyboardInterrupt:
        stop_workers([process for _, process in running.values()], job)
        raise
    if failed:
        raise PodiumError(f"worker(s) {', '.join(failed)} stopped early; finished trials are kept in the study, "
                          "run the same command again to continue")


def stop_workers(processes, job: TuneJob, *, grace: float = 30.0) -> None:
    """Ctrl-C: pass it on to every worker (a terminal sends it to all of them; `kill -INT` only to this one),
    wait for them, kill what is left, and mark the trials they were running failed, so a rerun of the same
    command runs those parameters again instead of waiting for their heartbeats to go stale."""
    import os

    from optuna.trial import TrialState

    from podium.tuning.study import load_study

    for process in processes:
        if process.is_alive():
            os.kill(process.pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(timeout=max(deadline - time.monotonic(), 0.1))
        if process.is_alive():
            process.kill()
            process.join()
    pids = {str(process.pid) for process in processes}
    study = load_study(job.study, job.storage)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if str(trial.user_attrs.get("worker", "")).rpartition(":")[2] in pids:
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
