"""A finished run's manifest: `podium predict` checks the run against it before loading anything, and
replays every stage that shaped the submission, so predicting again reproduces `submission.csv`."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.cli.main import main
from podium.competitions import get
from podium.config import deep_update
from podium.evaluation.runner import demo_config, resolve_config, start_run


def tiny_run(plugin_name: str, data_dir: Path, root: Path, **sections) -> Path:
    """The plugin's demo (default) run, small: every default stage (oof, bag, calibration, TTA) runs."""
    plugin = get(plugin_name)
    config = deep_update(demo_config(plugin, resolve_config(plugin)), {
        "paths": {"cache": str(root / "cache")}, "image": {"size": [32, 32]},
        "train": {"epochs": 3, "patience": 3}})
    run_dir, _ = start_run(plugin, data_dir, deep_update(config, sections), runs_root=root / "runs")
    return run_dir


@pytest.fixture(scope="module")
def redux_run(tmp_path_factory, redux_data):
    return tiny_run("dogs-vs-cats-redux", redux_data, tmp_path_factory.mktemp("manifest-redux"))


def predict_out(run_dir: Path, out: Path, capsys) -> tuple[int, list[str]]:
    rc = main(["predict", str(run_dir), "--out", str(out)])
    return rc, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def assert_same_submission(run_dir: Path, out: Path) -> None:
    first, again = pd.read_csv(run_dir / "submission.csv"), pd.read_csv(out)
    assert list(first.columns) == list(again.columns)
    assert first.iloc[:, 0].astype(str).tolist() == again.iloc[:, 0].astype(str).tolist()
    np.testing.assert_allclose(again.iloc[:, 1:].to_numpy(float), first.iloc[:, 1:].to_numpy(float), atol=1e-6, rtol=0)


def test_manifest_records_what_predicting_needs(redux_run):
    manifest = json.loads((redux_run / "manifest.json").read_text())
    files = manifest["files"]
    assert {"head.keras", "calibration.json", "config.json", "run.json"} <= set(files)
    folds = sorted(name for name, entry in files.items() if entry["stage"] == "oof")
    assert folds == ["oof/fold0.keras", "oof/fold1.keras", "oof/fold2.keras"] and manifest["counts"]["oof"] == 3
    assert all(entry["bytes"] > 0 and len(entry["sha256"]) == 64 for entry in files.values())
    assert manifest["replay"] == ["oof", "ensemble", "calibration", "submission"]
    assert "ensemble/ensemble.json" in files and manifest["counts"]["ensemble"] >= 2  # its members' fold models too


def test_predict_reproduces_the_redux_submission(redux_run, tmp_path, capsys):
    rc, err = predict_out(redux_run, tmp_path / "again.csv", capsys)
    assert rc == 0, err
    assert_same_submission(redux_run, tmp_path / "again.csv")


def test_predict_reproduces_state_farm_with_neighbours(tmp_path_factory, capsys):
    plugin = get("state-farm")
    root = tmp_path_factory.mktemp("manifest-state-farm")
    data_dir = plugin.make_demo_data(root / "data", seed=0, drivers=6, per_class=3, test_images=24, size=(32, 32))
    run_dir = tiny_run("state-farm", data_dir, root, neighbours={"enabled": True, "k": 3})
    assert "neighbours" in json.loads((run_dir / "manifest.json").read_text())["replay"]
    rc, err = predict_out(run_dir, root / "again.csv", capsys)
    assert rc == 0, err
    assert_same_submission(run_dir, root / "again.csv")


def test_predict_reproduces_the_fisheries_submission(tmp_path_factory, capsys):
    from podium.competitions.fisheries import write_demo_data

    root = tmp_path_factory.mktemp("manifest-fisheries")
    data_dir = write_demo_data(root / "data", per_class=5, stage1=6, stage2=3)
    run_dir = tiny_run("fisheries", data_dir, root)
    rc, err = predict_out(run_dir, root / "again.csv", capsys)
    assert rc == 0, err
    assert_same_submission(run_dir, root / "again.csv")


def damage(run_dir: Path, how: str) -> None:
    if how == "no_calibration":
        (run_dir / "calibration.json").unlink()
    elif how == "empty_calibration_object":
        (run_dir / "calibration.json").write_text("{}")
    elif how == "missing_fold":
        (run_dir / "oof" / "fold1.keras").unlink()
    elif how == "extra_fold":
        shutil.copy(run_dir / "oof" / "fold0.keras", run_dir / "oof" / "fold3.keras")
    elif how == "truncated_fold":
        path = run_dir / "oof" / "fold2.keras"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "empty_fold":
        (run_dir / "oof" / "fold0.keras").write_bytes(b"")
    elif how == "config_changed":
        config = json.loads((run_dir / "config.json").read_text())
        config["tta"]["views"] = 7
        (run_dir / "config.json").write_text(json.dumps(config))
    elif how == "no_manifest":
        (run_dir / "manifest.json").unlink()


@pytest.mark.parametrize("how,needle,word", [
    ("no_calibration", "calibration.json", "missing"), ("empty_calibration_object", "calibration.json", "damaged"),
    ("missing_fold", "oof/fold1.keras", "missing"), ("extra_fold", "oof/fold3.keras", "not part of this run"),
    ("truncated_fold", "oof/fold2.keras", "damaged"), ("empty_fold", "oof/fold0.keras", "empty"),
    ("config_changed", "config.json", "changed"), ("no_manifest", "manifest.json", "older podium"),
])
def test_predict_refuses_a_run_that_differs_from_its_manifest(how, needle, word, redux_run, tmp_path, capsys):
    run_dir = Path(shutil.copytree(redux_run, tmp_path / "run"))
    damage(run_dir, how)
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    rc, err = predict_out(run_dir, tmp_path / "again.csv", capsys)
    assert rc == 2 and len(err) == 1, err
    assert needle in err[0] and word in err[0] and "Traceback" not in err[0], err[0]
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before  # nothing written into the run
    assert not (tmp_path / "again.csv").exists()
