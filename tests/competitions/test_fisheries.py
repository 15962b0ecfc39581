"""Fisheries Monitoring: the raw layout, stage-2 ids, boxes, and a class + box run to a valid submission."""
import json

import keras
import numpy as np
import pandas as pd
import pytest

from podium.competitions import get
from podium.competitions.fisheries import write_demo_data
from podium.errors import PodiumError
from podium.core.annotations import BOX_COLUMNS
from podium.config import deep_update
from podium.evaluation.runner import demo_config, resolve_config, start_run

SMALL = ((64, 36), (64, 48), (60, 34), (86, 48))


@pytest.fixture(scope="module")
def plugin():
    return get("fisheries")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_demo_data(tmp_path_factory.mktemp("fish"), seed=0, per_class=10, stage1=6, stage2=4, sizes=SMALL)


def test_table_has_sizes_groups_stage2_ids_and_boxes(plugin, data_dir):
    table = plugin.read_table(data_dir)
    test = table[table["split"] == "test"]
    assert len(test) == 10 and test["label"].isna().all()
    stage2 = test[test["path"].str.contains("test_stg2")]
    assert len(stage2) == 4 and stage2["id"].str.fullmatch(r"test_stg2/image_\d{5}\.jpg").all()
    assert test.loc[~test.index.isin(stage2.index), "id"].str.fullmatch(r"img_\d{5}\.jpg").all()
    assert set(table["size"]) == {f"{w}x{h}" for w, h in SMALL}
    assert (table["group"] == table["size"]).all()
    assert (table["size"] == table["width"].astype(str) + "x" + table["height"].astype(str)).all()
    boxed = table[BOX_COLUMNS[0]].notna()
    assert not boxed[table["label"] == "NoF"].any() and not boxed[table["split"] == "test"].any()
    assert boxed[table["label"] == "ALB"].mean() > 0.5
    # Boxes are clipped to their image, including the demo's fish that stick out of the frame.
    inside = table[boxed]
    assert (inside["bbox_x0"] >= 0).all() and (inside["bbox_x1"] <= inside["width"]).all()
    assert (inside["bbox_y1"] <= inside["height"]).all() and (inside["bbox_x1"] > inside["bbox_x0"]).all()


def test_box_file_entries_without_annotations_or_partly_outside(plugin, data_dir, tmp_path):
    copy = write_demo_data(tmp_path / "copy", seed=0, per_class=3, stage1=2, stage2=0, sizes=SMALL)
    table = plugin.read_table(copy)
    alb = table[table["label"] == "ALB"].reset_index(drop=True)
    width, height = int(alb.loc[1, "width"]), int(alb.loc[1, "height"])
    (copy / "alb_labels.json").write_text(json.dumps([
        {"filename": alb.loc[0, "id"], "annotations": []},
        {"filename": alb.loc[1, "id"], "annotations": [
            {"class": "rect", "x": -5, "y": 2, "width": 20, "height": 10},
            {"class": "rect", "x": width - 10, "y": height - 8, "width": 40, "height": 30}]},
    ]))
    table = plugin.read_table(copy)
    alb = table[table["label"] == "ALB"].reset_index(drop=True)
    assert alb.loc[[0, 2], list(BOX_COLUMNS)].isna().all().all()  # empty annotations; not in the file
    assert alb.loc[1, list(BOX_COLUMNS)].tolist() == [0, 2, 15, 12]  # the largest once clipped


def test_layout_problems_are_one_clear_error(plugin, tmp_path):
    copy = write_demo_data(tmp_path / "d", seed=0, per_class=2, stage1=2, stage2=0, sizes=SMALL)
    (copy / "train" / "TUNA").mkdir()
    with pytest.raises(PodiumError, match="TUNA: train/ must hold one folder per class"):
        plugin.read_table(copy)
    (copy / "train" / "TUNA").rmdir()
    (copy / "yft_labels.json").write_text(json.dumps([{"filename": "img_1.jpg", "annotations": [{"x": 1}]}]))
    with pytest.raises(PodiumError, match=r"yft_labels.json: entry 0 \(img_1.jpg\), annotation 0: 'y'"):
        plugin.read_table(copy)
    (copy / "yft_labels.json").unlink()
    (copy / "sample_submission_stg1.csv").write_text("id,label\n1,0.5\n")
    with pytest.raises(PodiumError, match="sample_submission_stg1.csv: header"):
        plugin.read_table(copy)
    (copy / "sample_submission_stg1.csv").unlink()
    for path in (copy / "test_stg1").iterdir():
        path.unlink()
    (copy / "test_stg1").rmdir()
    with pytest.raises(PodiumError, match="test_stg1 not found"):
        plugin.read_table(copy)


@pytest.fixture(scope="module")
def box_run(tmp_path_factory, plugin, data_dir):
    root = tmp_path_factory.mktemp("fish-runs")
    config = deep_update(demo_config(plugin, resolve_config(plugin)), {
        "paths": {"cache": str(root / "cache")}, "image": {"size": [32, 64]},
        "augment": {"passes": 1}, "train": {"epochs": 6, "patience": 6},
        "boxes": {"loss_weight": 1.0, "crop_classify": True},
    })
    run_dir, metrics = start_run(plugin, data_dir, config, runs_root=root / "runs")
    return run_dir, metrics


def test_class_and_box_losses_both_fall(box_run):
    run_dir, _ = box_run
    history = pd.read_csv(run_dir / "history_head.csv")
    # Validation losses (no dropout noise) of both outputs, and the weighted training loss.
    for column in ("val_class_loss", "val_bbox_loss", "loss"):
        assert history[column].iloc[-1] < history[column].iloc[0], column


def test_box_run_writes_boxes_png_metadata_input_and_crop_comparison(box_run):
    run_dir, metrics = box_run
    assert (run_dir / "boxes.png").stat().st_size > 1000
    model = keras.saving.load_model(run_dir / "head.keras", compile=False)
    assert sorted(model.output_names) == ["bbox", "class"]
    assert [i.name for i in model.inputs] == ["features", "metadata"]
    assert 0.0 <= metrics["val_box_iou"] <= 1.0 and metrics["val_box_rows"] > 0
    ious = pd.read_csv(run_dir / "valid_boxes.csv")["iou"]  # one IoU per validation photo with a box
    assert ious.notna().sum() == metrics["val_box_rows"] and ious.mean() == pytest.approx(metrics["val_box_iou"], abs=1e-3)
    for key in ("crop_val_log_loss", "crop_val_accuracy", "crop_submission", "crop_better_than_single_stage"):
        assert key in metrics, key
    assert (run_dir / "valid_predictions_crop.csv").is_file() and (run_dir / "crop_head.keras").is_file()
    assert metrics["val_accuracy"] > 0.125  # above chance for 8 classes


def test_metadata_is_standardised_with_training_rows_only(box_run, plugin, data_dir):
    from podium.vision.data import load_image_data
    from podium.vision.metadata import MetadataEncoder

    config = json.loads((box_run[0] / "config.json").read_text())
    data = load_image_data(plugin, data_dir, config, sample=False)  # features: a cache hit
    train = data.labelled.iloc[data.train_rows]
    mean, std = data.metadata.numeric["width"]
    assert mean == pytest.approx(train["width"].mean()) and std == pytest.approx(train["width"].std(ddof=0))
    assert data.metadata.numeric != MetadataEncoder(plugin.metadata_columns).fit(data.labelled).numeric
    encoded = data.source("train").inputs["metadata"][data.train_rows]
    assert np.allclose(encoded[:, :2].mean(axis=0), 0, atol=1e-5)  # width, height


def test_submission_validates_with_stage2_ids(box_run, plugin, data_dir):
    _, metrics = box_run
    submission = pd.read_csv(metrics["submission"])
    assert list(submission.columns) == ["image", "ALB", "BET", "DOL", "LAG", "NoF", "OTHER", "SHARK", "YFT"]
    assert submission["image"].str.startswith("test_stg2/").sum() == 4
    assert np.allclose(submission.iloc[:, 1:].sum(axis=1), 1, atol=1e-4)
    assert plugin.validate_submission(submission, data_dir) == []
    assert plugin.validate_submission(pd.read_csv(metrics["crop_submission"]), data_dir) == []


def test_boxes_switch_on_a_competition_without_boxes_is_named(tmp_path, redux_data):
    plugin = get("dogs-vs-cats-redux")
    config = deep_update(demo_config(plugin, resolve_config(plugin)), {
        "paths": {"cache": str(tmp_path / "cache")}, "image": {"size": [32, 32]}, "boxes": {"loss_weight": 0.001}})
    with pytest.raises(PodiumError, match="no bounding boxes"):
        start_run(plugin, redux_data, config, runs_root=tmp_path / "runs", sample=True)
