"""The operating system's faults, real ones: a name over the file system's limit, a folder the process may
not write (`/sys` refuses even root; a chmod'ed folder for other users), a file-size limit standing in for a
full disk (`RLIMIT_FSIZE` in a subprocess). Each is one line naming the path and the option that set it,
exit 2, no traceback, and nothing half-written."""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from podium.cli.main import main

REDUX = "dogs-vs-cats-redux"
LONG = "n" * 300  # over the 255 bytes a name that Linux file systems allow
ROOT = os.geteuid() == 0


def one_line(argv, capsys, *needles) -> str:
    rc = main([str(a) for a in argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1, err
    assert "Traceback" not in err[0]
    for needle in needles:
        assert needle in err[0], err[0]
    return err[0]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def unwritable_system_folder() -> Path:
    """A folder nobody, root included, may create files in (sysfs), or skip."""
    probe = Path("/sys/podium-probe")
    try:
        probe.mkdir()
    except OSError:
        return Path("/sys")
    probe.rmdir()
    pytest.skip("/sys is writable here: no folder that refuses root")


@pytest.mark.parametrize("argv,option", [
    (["run", REDUX, "--data", "{data}", "--out", LONG], "--out"),
    (["run", REDUX, "--data", "{data}", "--set", f"paths.cache={LONG}"], "paths.cache"),
    (["cv", REDUX, "--data", "{data}", "--out", f"{LONG}/runs"], "--out"),
    (["prepare", REDUX, "--data", "{data}", "--out", f"{LONG}.csv"], "--out"),
    (["prepare", REDUX, "--data", LONG], "--data"),
    (["validate", REDUX, f"{LONG}.csv"], "FILE"),
    (["predict", LONG], "RUN_DIR"),
    (["tune", REDUX, "--data", "{data}", "--trials", "1", "--out", LONG], "--out"),
])
def test_a_name_over_the_limit_is_one_line_naming_the_option(argv, option, redux_data, workdir, capsys):
    one_line([a.format(data=redux_data) for a in argv], capsys, option, "longer than the file system allows")
    assert not any(workdir.iterdir())  # no runs/, no cache/


@pytest.mark.parametrize("argv,option", [
    (["prepare", REDUX, "--data", "{data}", "--out", "{ro}/table.csv"], "--out"),
    (["prepare", REDUX, "--data", "{data}", "--set", "paths.cache={ro}/cache"], "paths.cache"),
    (["run", REDUX, "--data", "{data}", "--out", "{ro}/runs"], "--out"),
    (["tune", REDUX, "--data", "{data}", "--trials", "1", "--storage", "sqlite:///{ro}/study/study.db"], "--storage"),
])
def test_a_folder_that_refuses_even_root_is_one_line(argv, option, redux_data, workdir, capsys):
    ro = unwritable_system_folder()
    one_line([a.format(data=redux_data, ro=ro) for a in argv], capsys, option, "permission denied")
    assert not (workdir / "runs").exists()


def test_tune_in_a_working_folder_that_refuses_writes(redux_data, monkeypatch, capsys):
    monkeypatch.chdir(unwritable_system_folder())  # the default runs/ and study.db land here
    one_line(["tune", REDUX, "--data", redux_data, "--trials", "1"], capsys, "--out", "runs", "permission denied")


def without_privileges() -> list[str]:
    """A command prefix under which even root obeys file modes (no capability, so no CAP_DAC_OVERRIDE)."""
    if not ROOT:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a chmod 555 folder would not refuse writes")
    return ["setpriv", "--bounding-set", "-all"]


@pytest.mark.parametrize("argv,option", [
    (["prepare", REDUX, "--data", "{data}", "--out", "{ro}/table.csv"], "--out"),
    (["run", REDUX, "--data", "{data}", "--out", "{ro}/runs"], "--out"),
    (["tune", REDUX, "--data", "{data}", "--trials", "1", "--out", "{ro}/runs"], "--out"),
    (["tune", REDUX, "--data", "{data}", "--trials", "1", "--storage", "sqlite:///{ro}/study.db"], "--storage"),
])
def test_a_read_only_folder_is_one_line(argv, option, redux_data, workdir):
    ro = workdir / "ro"
    ro.mkdir(mode=0o555)
    result = podium_subprocess([a.format(data=redux_data, ro=ro) for a in argv], cwd=workdir,
                               prefix=without_privileges())
    err = [line for line in result.stderr.splitlines() if line.startswith("podium")]
    assert result.returncode == 2 and len(err) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert option in err[0] and str(ro) in err[0] and "permission denied" in err[0], err[0]
    assert list(ro.iterdir()) == []


def test_sqlite_study_in_a_missing_folder_is_created(tmp_path):
    from podium.tuning.settings import TUNE_DEFAULTS
    from podium.tuning.study import open_study

    url = f"sqlite:///{tmp_path / 'not' / 'yet' / 'study.db'}"
    study = open_study("s", url, competition=REDUX, direction="minimize", metric="val_log_loss",
                       tune=TUNE_DEFAULTS, seed=0)
    assert study.study_name == "s" and (tmp_path / "not" / "yet" / "study.db").is_file()


def limited(limit_bytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def podium_subprocess(argv, *, cwd: Path, limit_bytes: int | None = None, prefix=()) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([*prefix, sys.executable, "-m", "podium", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=limited(limit_bytes) if limit_bytes else None)


def test_a_full_disk_while_writing_a_table_leaves_no_half_file(redux_data, workdir):
    result = podium_subprocess(["prepare", REDUX, "--data", redux_data, "--out", "table.csv"], cwd=workdir,
                               limit_bytes=2000)
    err = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(err) == 1, result.stderr
    assert "--out" in err[0] and "table.csv" in err[0] and "largest file" in err[0]
    assert sorted(p.name for p in workdir.iterdir()) == []  # no table, no temporary file


def test_a_full_disk_while_saving_a_model_leaves_no_half_model(redux_data, workdir, tmp_path):
    """A run whose features are cached already: the first file over the limit is the head it trains."""
    from podium.competitions import get
    from podium.config import deep_update
    from podium.evaluation.runner import demo_config, resolve_config, start_run

    plugin = get(REDUX)
    sets = {"image.size": "[32,32]", "train.epochs": "1", "oof.folds": "0", "head.kind": "dense",
            "head.units": "512", "paths.cache": str(tmp_path / "cache"), "augment.passes": "0"}
    config = deep_update(demo_config(plugin, resolve_config(plugin)), {
        "image": {"size": [32, 32]}, "train": {"epochs": 1}, "oof": {"folds": 0}, "tta": {"views": 0},
        "paths": {"cache": str(tmp_path / "cache")}})
    start_run(plugin, redux_data, config, runs_root=tmp_path / "warm")  # fills the feature cache
    argv = ["run", REDUX, "--data", redux_data, "--set", "image.backbone=vgg16", "--set", "image.weights=none",
            "--set", "tta.views=0", *sum((["--set", f"{k}={v}"] for k, v in sets.items()), [])]
    result = podium_subprocess(argv, cwd=workdir, limit_bytes=200_000)  # a dense head of 512 units is ~1 MB
    # TensorFlow's C++ logging writes its own lines to stderr at import: podium's are the ones that count.
    err = [line for line in result.stderr.splitlines() if line.startswith("podium")]
    assert result.returncode == 2 and len(err) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "head.keras" in err[0] and "largest file" in err[0] and "removed the unfinished run" in err[0]
    assert list((workdir / "runs" / REDUX).iterdir()) == []
    assert not list(workdir.rglob("*.keras"))
