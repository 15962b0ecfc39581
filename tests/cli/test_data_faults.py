"""Data a careful user would not trust: a class with no training row, a box outside its image, a JPEG cut
short, hidden files in a data folder, an id beyond 64 bits; and an error line never glued to a progress bar."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.cli.main import main
from podium.competitions import get

REDUX = "dogs-vs-cats-redux"
TINY = ["--set", "image.backbone=vgg16", "--set", "image.weights=none", "--set", "image.size=[32,32]",
        "--set", "train.epochs=1", "--set", "augment.passes=0", "--set", "oof.folds=0", "--set", "tta.views=0",
        "--set", "paths.cache=cache"]


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


@pytest.fixture
def redux(tmp_path, redux_data):
    return Path(shutil.copytree(redux_data, tmp_path / "redux"))


def test_a_class_without_training_rows_is_refused_naming_it(redux, workdir, capsys):
    for path in (redux / "train").glob("dog.*.jpg"):
        path.unlink()
    one_line(["run", REDUX, "--data", redux, *TINY], capsys, "class 'dog'", "no row in the training rows")
    assert list((workdir / "runs" / REDUX).iterdir()) == []


def test_a_sample_without_a_class_is_refused_naming_it(redux, workdir, capsys):
    for path in sorted((redux / "train").glob("dog.*.jpg"))[2:]:
        path.unlink()  # two dogs left: a sample of 4 training rows drawn from 62 has almost surely none
    table_rows = ["--set", "data.sample_train=4", "--set", "data.sample_valid=4", "--set", "seed=3"]
    from podium.config import deep_update
    from podium.core.table import prepare_table
    from podium.evaluation.runner import resolve_config

    plugin = get(REDUX)
    config = resolve_config(plugin, sets=[s for s in TINY + table_rows if s != "--set"])
    table = prepare_table(plugin, redux, deep_update(config, {}))
    sampled = table[table["sample"] & (table["split"] == "train")]
    assert "dog" not in set(sampled["label"])  # the seed chosen so the sample has no dog
    one_line(["run", REDUX, "--data", redux, "--sample", *TINY, *table_rows], capsys, "class 'dog'", "sample",
             "data.sample_train")
    assert list((workdir / "runs" / REDUX).iterdir()) == []


def test_a_box_wholly_outside_its_image_is_counted_and_named(tmp_path, workdir, capsys):
    from podium.competitions.fisheries import write_demo_data

    data = write_demo_data(tmp_path / "fish", per_class=5, stage1=3, stage2=0)
    path = data / "alb_labels.json"
    entries = json.loads(path.read_text())
    entries[0]["annotations"] = [{"class": "rect", "x": 50000, "y": 50000, "width": 20, "height": 10}]
    entries[1]["annotations"].append({"class": "rect", "x": -900, "y": -900, "width": 20, "height": 10})
    path.write_text(json.dumps(entries))
    assert main(["prepare", "fisheries", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "2 boxes lie wholly outside their image" in out and "alb_labels.json" in out
    assert entries[0]["filename"] in out


def cut_jpeg(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def test_a_jpeg_cut_short_is_a_bad_image(redux_data, tmp_path):
    from podium.core.imagefiles import BadImageError, decode_image, jpeg_is_cut
    from podium.vision.images import load_batch

    whole = redux_data / "train" / "cat.0.jpg"
    cut = cut_jpeg(whole, tmp_path / "cut.jpg")
    with pytest.raises(BadImageError, match="cut.jpg.*end marker"):
        decode_image(cut)
    pixels, ok = load_batch([whole, cut], [32, 32], skip_bad_images=True)
    assert ok.tolist() == [True, False]
    padded = tmp_path / "padded.jpg"  # bytes after the end marker (some cameras write a trailer) are fine
    padded.write_bytes(whole.read_bytes() + b"trailer\x00\x00")
    assert not jpeg_is_cut(padded.read_bytes()) and decode_image(padded).shape == decode_image(whole).shape


def test_a_jpeg_cut_short_in_a_run_is_named_or_skipped(redux, workdir, capsys):
    cut_jpeg(redux / "train" / "dog.3.jpg", redux / "train" / "dog.3.jpg")
    one_line(["run", REDUX, "--data", redux, *TINY], capsys, "dog.3.jpg", "end marker", "skip_bad_images")
    assert main(["run", REDUX, "--data", str(redux), *TINY, "--set", "data.skip_bad_images=true"]) == 0
    assert "skipped 1 unreadable" in capsys.readouterr().out


def hide_files(folders) -> None:
    for folder in folders:
        (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (folder / "._1.jpg").write_bytes(b"\x00\x05\x16\x07AppleDouble")


@pytest.mark.parametrize("plugin_name", ["dogs-vs-cats-redux", "state-farm", "fisheries"])
def test_hidden_files_are_no_part_of_the_layout(plugin_name, tmp_path, capsys):
    plugin = get(plugin_name)
    if plugin_name == "fisheries":
        from podium.competitions.fisheries import write_demo_data

        data = write_demo_data(tmp_path / "data", per_class=3, stage1=2, stage2=0)
    elif plugin_name == "state-farm":
        data = plugin.make_demo_data(tmp_path / "data", seed=0, drivers=4, per_class=2, test_images=4, size=(32, 32))
    else:
        data = plugin.make_demo_data(tmp_path / "data", seed=0)
    before = plugin.read_table(data)
    hide_files([data, *(p for p in data.rglob("*") if p.is_dir())])
    after = plugin.read_table(data)
    pd.testing.assert_frame_equal(after, before)


def test_recommend_with_an_id_beyond_64_bits_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["recommend", str(tmp_path), "--user", str(10**23)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--user" in err and "64-bit" in err and "Traceback" not in err


def test_an_error_after_a_progress_bar_starts_on_its_own_line(monkeypatch, redux_data, workdir, capsys):
    import keras

    import podium.vision.pipeline as pipeline
    from podium.errors import PodiumError
    from podium.log import logger

    def run(*args, **kwargs):
        bar = keras.utils.Progbar(10, unit_name="image")
        bar.update(3)
        logger.info("a message while the bar is drawn")
        bar.update(5)
        raise PodiumError("something the user can fix")

    monkeypatch.setattr(pipeline, "run", run)
    assert main(["run", REDUX, "--data", str(redux_data)]) == 2
    out = capsys.readouterr().out
    assert "\na message while the bar is drawn\n" in out  # not glued to the bar's line
    assert out.endswith("\n")  # the bar's line is ended before the error line is printed
