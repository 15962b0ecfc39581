"""Fully convolutional head and class heatmaps: maps pooled into the prediction, PNGs at the image's size."""
import json

import cv2
import numpy as np
import pytest

from podium.competitions import get
from podium.competitions.fisheries import write_demo_data
from podium.cli.main import main
from podium.config import IMAGE_DEFAULTS, deep_update
from podium.vision.heads import build_head
from podium.evaluation.runner import demo_config, resolve_config, start_run

SMALL = ((64, 36), (64, 48), (60, 34), (86, 48))


def test_fcn_prediction_is_the_softmax_of_its_pooled_class_maps():
    import keras

    model = build_head((3, 5, 16), 4, {**IMAGE_DEFAULTS["head"], "kind": "fcn", "units": 8, "conv_layers": 1})
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 16)).astype("float32")
    maps = np.asarray(keras.Model(model.input, model.get_layer("class_maps").output)(x))
    assert maps.shape == (2, 3, 5, 4)
    scores = maps.mean(axis=(1, 2))
    expected = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    assert np.allclose(np.asarray(model(x)), expected, atol=1e-5)


def test_fcn_needs_a_feature_map():
    from podium.errors import PodiumError

    with pytest.raises(PodiumError, match="fcn needs a conv feature map"):
        build_head((512,), 4, {**IMAGE_DEFAULTS["head"], "kind": "fcn"})


@pytest.fixture(scope="module")
def fcn_run(tmp_path_factory):
    plugin = get("fisheries")
    root = tmp_path_factory.mktemp("fcn")
    data_dir = write_demo_data(root / "data", seed=3, per_class=6, stage1=4, stage2=2, sizes=SMALL)
    # A rectangular input and the last conv layer before pooling: a 2x4 map per class.
    config = deep_update(demo_config(plugin, resolve_config(plugin)), {
        "paths": {"cache": str(root / "cache")}, "image": {"size": [32, 64], "cut_layer": "block5_conv3"},
        "head": {"kind": "fcn", "units": 16}, "boxes": {"loss_weight": 0.0}, "train": {"epochs": 2}})
    run_dir, metrics = start_run(plugin, data_dir, config, runs_root=root / "runs")
    return data_dir, run_dir, metrics


def test_heatmap_png_has_the_image_size(fcn_run, tmp_path, capsys):
    data_dir, run_dir, metrics = fcn_run
    assert "val_log_loss" in metrics
    image = sorted((data_dir / "train" / "LAG").glob("*.jpg"))[0]
    height, width = cv2.imread(str(image)).shape[:2]
    out = tmp_path / "lag.png"
    assert main(["heatmap", str(run_dir), str(image), "--class", "LAG", "--out", str(out)]) == 0
    assert "LAG" in capsys.readouterr().out
    picture = cv2.imread(str(out))
    assert picture.shape[:2] == (height, width)
    assert not np.array_equal(picture, cv2.imread(str(image)))  # something was overlaid
    # Default class and file name: the predicted class, in the run directory.
    assert main(["heatmap", str(run_dir), str(image)]) == 0
    assert len(list(run_dir.glob(f"heatmap_{image.stem}_*.png"))) == 1


def test_heatmap_refuses_overwrite_unknown_class_and_non_fcn_run(fcn_run, tmp_path, capsys):
    data_dir, run_dir, _ = fcn_run
    image = str(sorted((data_dir / "test_stg1").glob("*.jpg"))[0])
    out = tmp_path / "taken.png"
    out.write_bytes(b"mine")
    assert main(["heatmap", str(run_dir), image, "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"mine"
    assert main(["heatmap", str(run_dir), image, "--class", "TUNA", "--out", str(tmp_path / "x.png")]) == 2
    assert "not a class of fisheries" in capsys.readouterr().err
    gap_run = tmp_path / "gap-run"
    gap_run.mkdir()
    config = json.loads((run_dir / "config.json").read_text())
    config["head"]["kind"] = "gap"
    (gap_run / "config.json").write_text(json.dumps(config))
    for name in ("run.json", "metrics.json", "head.keras"):  # a finished run, but of a gap head
        (gap_run / name).write_bytes((run_dir / name).read_bytes())
    assert main(["heatmap", str(gap_run), image]) == 2
    assert "heatmaps need a fully convolutional run" in capsys.readouterr().err
