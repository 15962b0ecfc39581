"""`podium tune` as users run it: two worker processes on one SQLite study, and a killed search resumed."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from podium.competitions import get

COMPETITION = "dogs-vs-cats-redux"
REPO = Path(__file__).resolve().parents[2]
# Out-of-fold heads off: these tests are about processes sharing a study, not what a trial measures.
SETS = ["oof.folds=0", "image.weights=none", "image.size=[32,32]", "train.epochs=2", "train.patience=2",
        "train.batch_size=16", "tune.pruner=none", 'tune.only=["train.lr","head.dropout"]']
Finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("tuning-workers")
    data = get(COMPETITION).make_demo_data(root / "data", seed=1)
    return root, data


def tune_command(root, data, study, trials, *extra):
    sets = [*SETS, f"paths.cache={root / 'cache'}"]
    return [sys.executable, "-m", "podium", "tune", COMPETITION, "--data", str(data), "--trials", str(trials),
            "--study", study, "--out", str(root / "runs"), *[arg for s in sets for arg in ("--set", s)], *extra]


def environment():
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


def storage(root, study):
    return f"sqlite:///{root / 'runs' / COMPETITION / 'tuning' / study / 'study.db'}"


def test_two_workers_share_one_study(workspace):
    root, data = workspace
    done = subprocess.run(tune_command(root, data, "pair", 4, "--jobs", "2"), env=environment(), cwd=root,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    trials = optuna.load_study(study_name="pair", storage=storage(root, "pair")).trials
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    # Two processes, two trials each; no parameters tried twice; one run directory per trial.
    workers = [t.user_attrs["worker"] for t in trials]
    assert sorted(workers.count(w) for w in set(workers)) == [2, 2]
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4
    run_dirs = sorted((root / "runs" / COMPETITION / "tuning" / "pair" / "trials" / COMPETITION).iterdir())
    assert sorted(d.name.rsplit("-", 1)[-1] for d in run_dirs) == [f"trial{n:04d}" for n in range(4)]
    assert {t.user_attrs["run_dir"] for t in trials} == {str(d) for d in run_dirs}
    # The workers shared the feature cache: the backbone ran over the labelled images once.
    assert done.stdout.count("precompute train+valid pass 0") == 1
    assert "4 complete, 0 pruned, 0 failed" in done.stdout


def test_killed_search_resumes(workspace):
    root, data = workspace
    # A fresh worker process for every trial, so the restarts are exercised too.
    # Out-of-fold heads on here: a trial long enough to be killed in the middle of.
    command = tune_command(root, data, "resume", 3, "--set", "tune.heartbeat=1",
                           "--set", "tune.trials_per_process=1", "--set", "oof.folds=3")
    with open(root / "killed.log", "w") as log:
        search = subprocess.Popen(command, env=environment(), cwd=root, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        first = None
        deadline = time.monotonic() + 300
        while first is None and search.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                study = optuna.load_study(study_name="resume", storage=storage(root, "resume"))
            except Exception:  # the database or the study is not created yet
                continue
            complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
            running = [t for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)) if t.params]
            first = complete[0] if complete and running else None  # kill in the middle of the second trial
        if search.poll() is None:
            os.killpg(search.pid, signal.SIGKILL)
        search.wait()
    assert first is not None, (root / "killed.log").read_text()[-3000:]
    done = subprocess.run(command, env=environment(), cwd=root, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 finished trial(s), target 3" in done.stdout
    trials = optuna.load_study(study_name="resume", storage=storage(root, "resume")).trials
    kept = trials[first.number]
    assert kept.state == optuna.trial.TrialState.COMPLETE and kept.value == first.value
    assert len([t for t in trials if t.state in Finished]) == 3
    # The trial the kill interrupted stopped beating: it is marked failed and its parameters run again.
    interrupted = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert [t.number for t in interrupted] == [first.number + 1]
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == interrupted[0].number]
    assert len(retries) == 1 and retries[0].params == interrupted[0].params and retries[0].state in Finished
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    assert len({t.user_attrs["worker"] for t in trials}) == len(trials)


def running_trial(root, study_name, search, *, timeout=300):
    """Wait for a trial with parameters that a worker is running; None if the search ended first."""
    deadline = time.monotonic() + timeout
    while search.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            study = optuna.load_study(study_name=study_name, storage=storage(root, study_name))
        except Exception:  # the database or the study is not created yet
            continue
        running = [t for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                   if t.params and "worker" in t.user_attrs]
        if running:
            return running[0]
    return None


def test_ctrl_c_stops_the_workers_in_one_line_and_fails_their_trials(workspace):
    root, data = workspace
    # Trials long enough that the one found running cannot finish before the interrupt reaches it.
    command = tune_command(root, data, "ctrl-c", 4, "--jobs", "2", "--set", "oof.folds=3",
                           "--set", "train.epochs=60", "--set", "train.patience=60")
    with open(root / "ctrl-c.out", "w") as out, open(root / "ctrl-c.err", "w") as err:
        search = subprocess.Popen(command, env=environment(), cwd=root, stdout=out, stderr=err)
        trial = running_trial(root, "ctrl-c", search)
        assert trial is not None, (root / "ctrl-c.err").read_text()[-3000:]
        os.kill(search.pid, signal.SIGINT)  # the parent only: it passes the interrupt on to its workers
        assert search.wait(timeout=120) == 130
    stderr = (root / "ctrl-c.err").read_text()
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("podium")]
    assert len(lines) == 1 and "interrupted" in lines[0], stderr[-3000:]
    study = optuna.load_study(study_name="ctrl-c", storage=storage(root, "ctrl-c"))
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert study.trials[trial.number].state == optuna.trial.TrialState.FAIL
    worker = int(trial.user_attrs["worker"].rpartition(":")[2])
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)  # the worker is gone


def test_a_killed_worker_is_one_line_and_its_trial_is_failed_and_run_again(workspace):
    from podium.tuning.settings import TUNE_DEFAULTS
    from podium.tuning.study import open_study

    root, data = workspace
    command = tune_command(root, data, "killed-worker", 3, "--set", "tune.heartbeat=1", "--set", "oof.folds=3")
    search = subprocess.Popen(command, env=environment(), cwd=root, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    trial = running_trial(root, "killed-worker", search)
    assert trial is not None
    os.kill(int(trial.user_attrs["worker"].rpartition(":")[2]), signal.SIGKILL)  # the worker, not the command
    _, stderr = search.communicate(timeout=120)
    lines = [line for line in stderr.splitlines() if line.startswith("podium")]
    assert search.returncode == 2 and len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert "stopped early" in lines[0] and "run the same command again" in lines[0]
    time.sleep(2.5)  # past the grace period of two missed heartbeats
    study = open_study("killed-worker", storage(root, "killed-worker"), competition=COMPETITION,
                       direction="minimize", metric="oof_log_loss", tune={**TUNE_DEFAULTS, "heartbeat": 1}, seed=0)
    trials = study.get_trials()
    assert trials[trial.number].state == optuna.trial.TrialState.FAIL
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == trial.number]
    assert len(retry) == 1 and retry[0].state == optuna.trial.TrialState.WAITING
    assert retry[0].params == trial.params or not retry[0].params  # queued with the same parameters
