"""Several machines, one search: two `podium tune` commands started at once against a real PostgreSQL server.

The server is Debian's `postgresql` (`.ci/run` installs it when absent), started by this test on a
free local port in a temporary folder and removed afterwards. The test is skipped, with the reason,
only where the server or its driver is not installed or cannot start. Two tuning processes and a server
take minutes on 2 cores, so the main suite leaves it to its own CI step (`PODIUM_POSTGRES=1`, set by .ci/run).
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest

from podium.competitions import get

COMPETITION = "dogs-vs-cats-redux"
REPO = Path(__file__).resolve().parents[2]
SETS = ["image.weights=none", "image.size=[32,32]", "train.epochs=2", "train.patience=2", "train.batch_size=16",
        "tune.pruner=none", 'tune.only=["train.lr","head.dropout"]']
TRIALS = 4


def postgres_bin() -> Path | None:
    # Debian keeps the server's programs (initdb, createdb...) together, off PATH.
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    import importlib.util

    if os.environ.get("PODIUM_POSTGRES") != "1":
        pytest.skip("a real PostgreSQL server takes minutes: run by .ci/run's PostgreSQL step (PODIUM_POSTGRES=1)")
    if not any(importlib.util.find_spec(driver) for driver in ("psycopg", "psycopg2")):
        pytest.skip("no PostgreSQL driver installed (pip install -e '.[postgres]'; .ci/run does it)")
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does it)")
    # PostgreSQL refuses to run as root: run it as the `postgres` account the package creates.
    as_user = []
    folder = Path(tempfile.mkdtemp(prefix="podium-pg-"))  # in /tmp, which that account can reach
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            pytest.skip("running as root and there is no 'postgres' account to run the server as")
        os.chown(folder, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()

    def run(*command):
        return subprocess.run([*as_user, *command], capture_output=True, text=True, timeout=120)

    started = run(str(bin_dir / "initdb"), "-D", str(data), "-U", "podium", "--auth=trust", "--no-sync")
    if started.returncode == 0:
        started = run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w",
                      "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    if started.returncode == 0:
        started = run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "podium",
                      "podium_tuning")
    try:
        if started.returncode != 0:
            pytest.skip(f"PostgreSQL could not start: {(started.stderr or started.stdout).strip()[-300:]}")
        yield f"postgresql://podium@127.0.0.1:{port}/podium_tuning"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_two_machines_share_a_postgres_study_without_losing_or_repeating_trials(postgres_url, tmp_path):
    data = get(COMPETITION).make_demo_data(tmp_path / "data", seed=1)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    machines = []
    for name in ("machine-a", "machine-b"):
        # Each "machine" has its own runs folder and feature cache; only the database is shared.
        home = tmp_path / name
        sets = [*SETS, f"paths.cache={home / 'cache'}"]
        command = [sys.executable, "-m", "podium", "tune", COMPETITION, "--data", str(data), "--trials", str(TRIALS),
                   "--study", "shared", "--storage", postgres_url, "--out", str(home / "runs"),
                   *[arg for s in sets for arg in ("--set", s)]]
        machines.append(subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True))
    outputs = [machine.communicate(timeout=500)[0] for machine in machines]
    for machine, output in zip(machines, outputs):
        assert machine.returncode == 0, output[-3000:]
    trials = optuna.load_study(study_name="shared", storage=postgres_url).trials
    # Each command stops once the study has its target; both may have started a last trial at once.
    assert TRIALS <= len(trials) <= TRIALS + 1
    assert [t.number for t in trials] == list(range(len(trials)))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)  # nothing lost, failed or left running
    assert len({tuple(sorted(t.params.items())) for t in trials}) == len(trials)  # no parameters run twice
    assert len({t.user_attrs["run_dir"] for t in trials}) == len(trials)
    # Both machines did work, and each trial's run directory is on the machine that ran it.
    homes = {name: [t for t in trials if t.user_attrs["run_dir"].startswith(str(tmp_path / name))]
             for name in ("machine-a", "machine-b")}
    assert all(homes.values()), {name: len(found) for name, found in homes.items()}
    assert sum(len(found) for found in homes.values()) == len(trials)
