"""Augmentation tuning on the sample set: candidates, their combination, the table and the config it writes."""
import json

import pytest

from podium.competitions import get
from podium.errors import PodiumError
from podium.tuning.augmentation import DEFAULT_SCAN, candidate_transform, check_scan, combine
from podium.vision.augment import build_augment
from podium.cli.main import main
from podium.evaluation.runner import resolve_config


def test_strength_becomes_a_range_around_the_center():
    scale = next(entry for entry in DEFAULT_SCAN if entry["label"] == "scale")
    assert candidate_transform(scale, 0.1) == {"name": "Affine", "border_mode": 1, "p": 0.8, "scale": [0.9, 1.1]}
    flip = next(entry for entry in DEFAULT_SCAN if entry["label"] == "horizontal flip")
    assert candidate_transform(flip, 0.5) == {"name": "HorizontalFlip", "p": 0.5}
    check_scan(DEFAULT_SCAN)  # every default strength builds a real albumentations transform


def test_same_transform_choices_merge_into_one():
    merged = combine([{"name": "Affine", "rotate": [-10, 10], "p": 0.8},
                      {"name": "RGBShift", "r_shift_limit": [-20, 20], "p": 0.5},
                      {"name": "Affine", "scale": [0.9, 1.1], "p": 0.6}])
    assert merged == [{"name": "Affine", "rotate": [-10, 10], "scale": [0.9, 1.1], "p": 0.8},
                      {"name": "RGBShift", "r_shift_limit": [-20, 20], "p": 0.5}]
    assert build_augment(merged) is not None


@pytest.mark.parametrize("scan,message", [
    ([{"name": "Affine", "params": ["rotate"]}], "lacks 'values'"),
    ([{"name": "NoSuchTransform", "params": ["p"], "values": [0.5]}], "no transform 'NoSuchTransform'"),
    ([{"name": "Affine", "params": [], "values": [1]}], "params must be"),
    ([], "non-empty list"),
])
def test_bad_scan_is_one_clear_error(scan, message):
    with pytest.raises(PodiumError, match=message):
        check_scan(scan)


def test_tune_aug_command_writes_a_table_and_a_config_a_run_can_use(tmp_path, capsys):
    plugin = get("state-farm")
    data_dir = plugin.make_demo_data(tmp_path / "data", seed=1, drivers=5, per_class=3, test_images=4, size=(48, 48))
    scan = tmp_path / "scan.json"
    scan.write_text(json.dumps({"scan": [
        {"label": "rotation", "name": "Affine", "params": ["rotate"], "center": 0, "values": [10], "p": 1.0},
        {"label": "channel shift", "name": "RGBShift", "params": ["r_shift_limit", "g_shift_limit", "b_shift_limit"],
         "center": 0, "values": [15], "p": 1.0},
    ]}))
    out = tmp_path / "tuned.json"
    sets = ["image.weights=none", "image.size=[48,48]", f"paths.cache={tmp_path / 'cache'}", "train.epochs=2",
            "train.batch_size=16", "data.sample_train=90", "data.sample_valid=30", "data.valid_fraction=0.2"]
    argv = ["tune-aug", "state-farm", "--data", str(data_dir), "--scan", str(scan), "--passes", "1", "--out", str(out)]
    for item in sets:
        argv += ["--set", item]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "transform" in printed and "rotation" in printed and "channel shift" in printed

    scores = tmp_path / "tuned-scores.csv"
    import pandas as pd

    table = pd.read_csv(scores)
    assert table["transform"].tolist()[:3] == ["none", "rotation", "channel shift"]
    assert table["val_log_loss"].notna().all() and table["chosen"].sum() == 1
    chosen = table[table["chosen"]].iloc[0]
    assert chosen["val_log_loss"] <= table.loc[table["transform"] == "none", "val_log_loss"].iloc[0]
    # Each transform's best strength enters the combination only if it beats no augmentation.
    baseline = table["val_log_loss"].iloc[0]
    kept = table[table["best_of_transform"]]
    assert (kept["val_log_loss"] < baseline).all()
    assert ("combined" in table["transform"].tolist()) == bool(len(kept))

    written = json.loads(out.read_text())
    assert written["augment"]["transforms"] == json.loads(chosen["transforms"])
    config = resolve_config(plugin, files=[out])  # a run takes the file as it is
    assert config["augment"]["transforms"] == written["augment"]["transforms"]
    assert config["augment"]["passes"] == (1 if written["augment"]["transforms"] else 0)

    assert main(argv) == 2  # never overwrites the config it wrote
    assert "already exists" in capsys.readouterr().err
