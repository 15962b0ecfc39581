"""The whole image pipeline on generated Dogs vs. Cats data: raw files to a valid submission."""
import json

import pandas as pd
import pytest

from podium.competitions import get
from podium.evaluation.runner import start_run


@pytest.fixture(scope="module")
def plugin():
    return get("dogs-vs-cats-redux")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, redux_data, plugin):
    from podium.config import deep_update
    from podium.evaluation.runner import demo_config, resolve_config

    root = tmp_path_factory.mktemp("redux-runs")
    config = deep_update(demo_config(plugin, resolve_config(plugin)),
                         {"paths": {"cache": str(root / "cache")}, "image": {"size": [48, 48]},
                          "train": {"epochs": 6}, "tta": {"views": 0}})
    run_dir, metrics = start_run(plugin, redux_data, config, runs_root=root / "runs")
    return root, config, run_dir, metrics


def test_run_directory_holds_the_record_of_the_run(first_run):
    _, config, run_dir, metrics = first_run
    for name in ("config.json", "run.json", "metrics.json", "history_head.csv", "learning_curve.png",
                 "valid_predictions.csv", "test_predictions.csv", "head.keras", "submission.csv"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "config.json").read_text())["seed"] == config["seed"]
    assert run_dir.parent.name == "dogs-vs-cats-redux"
    saved = json.loads((run_dir / "metrics.json").read_text())
    for key in ("val_log_loss", "val_accuracy", "val_log_loss_clipped", "clip", "submission"):
        assert key in saved, key


def test_run_records_its_time_memory_and_each_stage(first_run):
    _, _, run_dir, _ = first_run
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert 0 < saved["run_seconds"] < 3600 and 50 < saved["peak_rss_mib"] < 8192
    stages = saved["stages"]
    names = [stage["stage"] for stage in stages]
    assert names[:2] == ["data", "head"] and "submission" in names
    assert all(0 <= stage["seconds"] <= saved["run_seconds"] for stage in stages)
    assert all(0 < stage["peak_rss_mib"] <= saved["peak_rss_mib"] for stage in stages)
    assert stages[0]["disk_mib"] > 0  # the precomputed features


def test_run_learns_well_above_chance(first_run):
    metrics = first_run[3]
    assert metrics["val_accuracy"] >= 0.8
    assert metrics["val_log_loss_clipped"] <= metrics["val_log_loss"] + 1e-6
    assert metrics["val_log_loss"] < 0.5


def test_submission_has_kaggle_format(first_run, redux_data, plugin):
    submission = pd.read_csv(first_run[3]["submission"])
    assert list(submission.columns) == ["id", "label"]
    assert sorted(submission["id"]) == list(range(1, 41))
    assert submission["label"].between(0, 1).all()
    assert plugin.validate_submission(submission, redux_data) == []


def test_second_run_hits_the_cache_and_gets_its_own_directory(first_run, redux_data, plugin):
    root, config, run_dir, _ = first_run
    # Another head on the same features (with random backbone weights, another seed is another backbone).
    second = {**config, "head": {**config["head"], "kind": "dense"}}
    second_dir, metrics = start_run(plugin, redux_data, second, runs_root=root / "runs")
    assert second_dir != run_dir and (run_dir / "submission.csv").is_file()
    assert metrics["feature_cache_hit"] is True

    from podium.evaluation.ensemble import ensemble_runs

    report = ensemble_runs([run_dir, second_dir], runs_root=root / "runs")
    text = json.dumps(report)
    assert "val_log_loss" in text
    assert pd.read_csv(report["submission"]).shape == (40, 2)


def test_predict_again_with_tta_writes_new_files(first_run):
    from podium.evaluation.runner import predict_again

    run_dir = first_run[2]
    before = (run_dir / "submission.csv").read_bytes()
    result = predict_again(run_dir, tta=2)
    assert result["tta_views"] == 2
    assert "val_log_loss_no_tta" in result and "val_log_loss" in result
    assert (run_dir / "submission_tta2.csv").is_file()
    assert (run_dir / "submission.csv").read_bytes() == before  # never overwritten


def test_sample_run_uses_only_the_sample_set(first_run, redux_data, plugin):
    root, config, _, _ = first_run
    config = {**config, "data": {**config["data"], "sample_train": 40, "sample_valid": 20}}
    _, metrics = start_run(plugin, redux_data, config, runs_root=root / "runs", sample=True)
    assert (metrics["train_rows"], metrics["valid_rows"]) == (40, 20)


def test_fine_tuning_trains_the_last_block_end_to_end(first_run, redux_data, plugin):
    root, config, _, _ = first_run
    config = {**config, "train": {**config["train"], "epochs": 2},
              "finetune": {**config["finetune"], "enabled": True, "epochs": 1}}
    run_dir, metrics = start_run(plugin, redux_data, config, runs_root=root / "runs")
    assert (run_dir / "model.keras").is_file() and (run_dir / "history_finetune.csv").is_file()
    assert "val_log_loss_before_finetune" in metrics
    assert pd.read_csv(metrics["submission"]).shape == (40, 2)
