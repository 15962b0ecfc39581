"""Fault injection: bad input and faults driven through the CLI, as a careful new user or a tester would.

Every user-caused error must end with exit code 2 (1 for `validate`'s verdict), exactly one line
on stderr that names the file, row or option, no traceback, and no half-written file or run
directory. An internal bug still shows its traceback. Nothing here trains a model: runs are
stopped by the fault before training, or the pipeline is replaced by a stub, so the module is fast.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.cli.main import main

REDUX = "dogs-vs-cats-redux"


def cli(argv) -> int:
    return main([str(a) for a in argv])


def fails(argv, capsys, *needles, code: int = 2) -> str:
    """Run the CLI; assert exit `code` and one stderr line naming every needle; return that line."""
    rc = cli(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == code, err
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    for needle in needles:
        assert str(needle) in err[0], err[0]
    return err[0]


def argparse_fails(argv, capsys, *needles) -> None:
    """argparse's own refusal: exit 2, usage plus one error line naming the option."""
    with pytest.raises(SystemExit) as exc:
        cli(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    for needle in needles:
        assert needle in err[-1], err


@pytest.fixture
def redux(tmp_path, redux_data):
    """A private copy of the generated Redux data (tests damage it)."""
    return Path(shutil.copytree(redux_data, tmp_path / "redux"))


@pytest.fixture
def fisheries(tmp_path):
    from podium.competitions.fisheries import write_demo_data

    return write_demo_data(tmp_path / "fish", per_class=5, stage1=3, stage2=0)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Commands run in an empty folder, so default outputs (runs/, cache/) land where the test looks."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def huge_jpeg(path: Path) -> Path:
    """A valid small JPEG whose header claims 60000x60000 pixels (beyond OpenCV's and PIL's limits)."""
    import cv2

    ok, buffer = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(buffer.tobytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)
    path.write_bytes(bytes(data))
    return path


def tree(folder: Path) -> set:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


# -- 1. config values out of range: refused before anything is created --------------------------------------
OUT_OF_RANGE = [
    ("train.epochs=0", "train.epochs"), ("train.batch_size=0", "train.batch_size"),
    ("image.batch_size=0", "image.batch_size"), ("tta.views=-1", "tta.views"), ("train.lr=-1", "train.lr"),
    ("train.lr=0", "train.lr"), ("image.size=[8,8]", "image.size"), ("image.size=[64]", "image.size"),
    ("data.valid_fraction=1.5", "data.valid_fraction"), ("data.split=byday", "data.split"),
    ("submission.clip=0.7", "submission.clip"), ("image.precision=float8", "image.precision"),
    ("head.kind=mlp", "head.kind"), ("head.dropout=1", "head.dropout"), ("pseudo.fraction=2", "pseudo.fraction"),
    ("augment.passes=-1", "augment.passes"), ("data.sample_train=0", "data.sample_train"),
    ("train.weight_decay=-0.1", "train.weight_decay"), ("seed=-3", "seed"), ("paths.cache=", "paths.cache"),
    ('ensemble.members=["svm"]', "ensemble.members"), ("ensemble.members=[]", "ensemble.members"),
    ("ensemble.rounds=0", "ensemble.rounds"), ("ensemble.enabled=2", "ensemble.enabled"),
]


@pytest.mark.parametrize("setting,key", OUT_OF_RANGE)
def test_out_of_range_value_is_refused_before_a_run_directory_exists(setting, key, redux, workdir, capsys):
    line = fails(["run", REDUX, "--data", redux, "--set", setting], capsys, key, f"--set {setting}")
    assert line.startswith("podium run: error:")
    assert not (workdir / "runs").exists() and not (workdir / "cache").exists()


def test_out_of_range_value_in_a_config_file_names_the_file(redux, workdir, capsys):
    (workdir / "bad.toml").write_text("[train]\nepochs = 0\n")
    fails(["run", REDUX, "--data", redux, "--config", "bad.toml"], capsys, "bad.toml", "train.epochs")
    assert not (workdir / "runs").exists()


def test_fold_outside_folds_is_refused(redux, workdir, capsys):
    fails(["cv", REDUX, "--data", redux, "--folds", "3", "--set", "data.fold=5"], capsys, "data.fold", "3")
    assert not (workdir / "runs").exists()


@pytest.mark.parametrize("argv,option", [
    (["prepare", REDUX, "--data", "{data}", "--sample", "-5"], "--sample"),
    (["prepare", REDUX, "--data", "{data}", "--sample", "0"], "--sample"),
    (["cv", REDUX, "--data", "{data}", "--folds", "1"], "--folds"),
    (["predict", "somewhere", "--tta", "-1"], "--tta"),
    (["tune", REDUX, "--data", "{data}", "--trials", "0"], "--trials"),
    (["recommend", "somewhere", "--user", "1", "--top", "0"], "--top"),
])
def test_out_of_range_option_is_an_argparse_error(argv, option, redux, workdir, capsys):
    argparse_fails([a.format(data=redux) for a in argv], capsys, option)
    assert tree(workdir) == set()


def test_plugins_declare_ranges_of_their_own_keys():
    from podium.config import at_least, check_ranges, declare_ranges
    from podium.errors import PodiumError

    declare_ranges({"fault_test.units": at_least(1)})
    with pytest.raises(PodiumError, match="fault_test.units"):
        check_ranges({"fault_test": {"units": 0}})
    check_ranges({"other": 1})  # a key a config lacks is not checked


# -- 2. decoder failures: a named bad image, skipped and counted under skip_bad_images ------------------------
@pytest.mark.parametrize("damage", ["huge", "empty", "truncated", "text"])
def test_every_decoder_failure_is_a_named_bad_image(damage, tmp_path):
    from podium.core.imagefiles import BadImageError, image_sizes
    from podium.vision.images import load_batch

    path = tmp_path / f"{damage}.jpg"
    if damage == "huge":
        huge_jpeg(path)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        huge_jpeg(tmp_path / "src.jpg")
        path.write_bytes((tmp_path / "src.jpg").read_bytes()[:40])
    else:
        path.write_text("not an image")
    for read in (lambda: load_batch([path], [32, 32]), lambda: image_sizes([path])):
        with pytest.raises(BadImageError, match=str(path).replace(".", r"\.")):
            read()
    pixels, ok = load_batch([path], [32, 32], skip_bad_images=True)
    assert not ok[0] and pixels.shape == (1, 32, 32, 3)
    assert image_sizes([path], skip_bad_images=True).tolist() == [[0, 0]]


def test_fisheries_zero_byte_test_image_is_named_or_skipped(fisheries, workdir, capsys):
    bad = sorted((fisheries / "test_stg1").glob("*.jpg"))[0]
    bad.write_bytes(b"")
    fails(["prepare", "fisheries", "--data", fisheries], capsys, bad.name, "skip_bad_images")
    assert not (workdir / "cache").exists()
    assert cli(["prepare", "fisheries", "--data", fisheries, "--set", "data.skip_bad_images=true"]) == 0
    assert "1 unreadable images" in capsys.readouterr().out


def test_fisheries_huge_header_training_image_is_named(fisheries, workdir, capsys):
    bad = huge_jpeg(sorted((fisheries / "train" / "ALB").glob("*.jpg"))[0])
    fails(["prepare", "fisheries", "--data", fisheries], capsys, bad.name)


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary", b"", b"{not json", b'{"a": 1}',
                                     b'[{"filename": "x.jpg", "annotations": [{"x": 1, "y": 2, "width": "w"}]}]'])
def test_fisheries_damaged_box_file_is_named(content, fisheries, workdir, capsys):
    (fisheries / "alb_labels.json").write_bytes(content)
    fails(["prepare", "fisheries", "--data", fisheries], capsys, "alb_labels.json")
    assert not (workdir / "cache").exists()


def test_fisheries_binary_sample_submission_is_named(fisheries, workdir, capsys):
    (fisheries / "sample_submission_stg1.csv").write_bytes(b"\xff\xfe\x00binary")
    fails(["prepare", "fisheries", "--data", fisheries], capsys, "sample_submission_stg1.csv")


def test_bad_image_found_during_a_run_leaves_no_run_directory(redux, workdir, capsys):
    bad = redux / "train" / "cat.0.jpg"
    bad.write_bytes(b"")
    fails(["run", REDUX, "--data", redux, "--set", "image.weights=none", "--set", "image.size=[32,32]",
           "--set", "image.backbone=vgg16"], capsys, "cat.0.jpg", "skip_bad_images")
    assert list((workdir / "runs" / REDUX).iterdir()) == []


# -- 3. silently accepted bad data: now read correctly and said, or refused ----------------------------------
def test_negative_box_width_is_read_swapped_and_said(fisheries, workdir, capsys):
    path = fisheries / "alb_labels.json"
    entries = json.loads(path.read_text())
    box = entries[0]["annotations"][0]
    box["x"], box["width"] = box["x"] + box["width"], -box["width"]
    path.write_text(json.dumps(entries))
    assert cli(["prepare", "fisheries", "--data", fisheries]) == 0
    assert "negative width" in capsys.readouterr().out
    table = pd.read_csv(workdir / "cache" / "fisheries" / "table.csv")
    row = table[table["id"] == entries[0]["filename"]].iloc[0]
    assert row["bbox_x1"] > row["bbox_x0"]  # kept, not dropped


# -- 4. half-written results ---------------------------------------------------------------------------------
def fake_run(folder: Path, data: Path, *, model: bytes | None = None) -> Path:
    """A finished run as `podium run` leaves it, without training one."""
    from podium.competitions import get
    from podium.evaluation.runner import demo_config

    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(demo_config(get(REDUX))))
    (folder / "run.json").write_text(json.dumps({"competition": REDUX, "pipeline": "image_classification",
                                                 "data_dir": str(data), "sample": False}))
    (folder / "metrics.json").write_text(json.dumps({"val_log_loss": 0.5}))
    if model is None:
        with zipfile.ZipFile(folder / "head.keras", "w") as archive:
            archive.writestr("config.json", "{}")
    else:
        (folder / "head.keras").write_bytes(model)
    return folder


@pytest.mark.parametrize("damage,needle", [
    ("incomplete", "did not finish"), ("no_metrics", "metrics.json"), ("no_run_json", "run.json"),
    ("run_json_garbage", "run.json"), ("run_json_list", "run.json"), ("run_json_keys", "pipeline"),
    ("no_model", "head.keras"), ("truncated_model", "head.keras"), ("missing", "not found"), ("file", "is a file"),
])
def test_predict_on_a_damaged_run_is_one_line(damage, needle, redux, tmp_path, capsys):
    run = fake_run(tmp_path / "runs" / "r1", redux)
    if damage == "incomplete":
        (run / "INCOMPLETE").write_text("x")
    elif damage == "no_metrics":
        (run / "metrics.json").unlink()
    elif damage == "no_run_json":
        (run / "run.json").unlink()
    elif damage == "run_json_garbage":
        (run / "run.json").write_text("{trunc")
    elif damage == "run_json_list":
        (run / "run.json").write_text("[]")
    elif damage == "run_json_keys":
        (run / "run.json").write_text(json.dumps({"competition": REDUX}))
    elif damage == "no_model":
        (run / "head.keras").unlink()
    elif damage == "truncated_model":
        (run / "head.keras").write_bytes((run / "head.keras").read_bytes()[:30])
    elif damage == "missing":
        shutil.rmtree(run)
    elif damage == "file":
        shutil.rmtree(run)
        run.write_text("x")
    before = tree(run.parent)
    fails(["predict", run], capsys, needle)
    assert tree(run.parent) == before  # nothing written into the run


def test_predict_out_existing_is_refused_before_writing_into_the_run(redux, tmp_path, capsys):
    run = fake_run(tmp_path / "runs" / "r1", redux)
    (tmp_path / "taken.csv").write_text("id,label\n")
    before = tree(run)
    fails(["predict", run, "--out", tmp_path / "taken.csv"], capsys, "taken.csv", "already exists")
    fails(["predict", run, "--out", tmp_path], capsys, "is a folder")
    assert tree(run) == before


def test_ensemble_refuses_an_unfinished_run(redux, tmp_path, capsys):
    a, b = fake_run(tmp_path / "runs" / "a", redux), fake_run(tmp_path / "runs" / "b", redux)
    (b / "INCOMPLETE").write_text("x")
    fails(["ensemble", a, b], capsys, str(b), "did not finish")
    assert not (tmp_path / "runs" / "ensembles").exists()


@pytest.fixture
def stub_pipeline(monkeypatch):
    """Replace the image pipeline's run by a function that writes some files and then fails as told."""
    import podium.vision.pipeline as pipeline

    def install(failure):
        def run(plugin, data_dir, config, run_dir, **_):
            (Path(run_dir) / "valid_predictions.csv").write_text("id,label\n")
            (Path(run_dir) / "submission.csv").write_text("id,label\n")
            raise failure
        monkeypatch.setattr(pipeline, "run", run)
    return install


def test_user_error_during_a_run_removes_its_directory(stub_pipeline, redux, workdir, capsys):
    from podium.errors import PodiumError

    stub_pipeline(PodiumError("something the user can fix"))
    line = fails(["run", REDUX, "--data", redux], capsys, "something the user can fix", "removed")
    assert list((workdir / "runs" / REDUX).iterdir()) == [], line


def test_user_error_during_cv_removes_the_whole_cross_validation(stub_pipeline, redux, workdir, capsys):
    from podium.errors import PodiumError

    stub_pipeline(PodiumError("fold failed"))
    fails(["cv", REDUX, "--data", redux, "--folds", "2"], capsys, "fold failed")
    assert list((workdir / "runs" / REDUX).iterdir()) == []


def test_interrupted_run_is_marked_and_says_how_to_remove_it(stub_pipeline, redux, workdir, capsys):
    stub_pipeline(KeyboardInterrupt())
    assert cli(["run", REDUX, "--data", redux]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    (run,) = list((workdir / "runs" / REDUX).iterdir())
    assert len(err) == 1 and str(run.relative_to(workdir)) in err[0] and "rm -r" in err[0]
    assert (run / "INCOMPLETE").is_file()
    fails(["predict", run], capsys, "did not finish")  # and no reader takes it for a run


def test_internal_bug_keeps_its_traceback_and_the_marked_directory(stub_pipeline, redux, workdir):
    stub_pipeline(ZeroDivisionError("a bug"))
    with pytest.raises(ZeroDivisionError):
        cli(["run", REDUX, "--data", redux])
    (run,) = list((workdir / "runs" / REDUX).iterdir())
    assert (run / "INCOMPLETE").is_file()


def test_finished_run_is_complete(monkeypatch, redux, workdir, capsys):
    import podium.vision.pipeline as pipeline

    monkeypatch.setattr(pipeline, "run", lambda *a, **k: {"val_log_loss": 0.1})
    assert cli(["run", REDUX, "--data", redux]) == 0
    (run,) = list((workdir / "runs" / REDUX).iterdir())
    assert not (run / "INCOMPLETE").exists()
    from podium.core.rundir import load_run

    assert load_run(run)[1]["val_log_loss"] == 0.1


# -- 5. damaged feature cache: verified against its manifest, rebuilt ----------------------------------------
@pytest.mark.parametrize("damage", ["missing", "truncated", "wrong_shape", "manifest_garbage", "manifest_keys"])
def test_damaged_cache_entry_is_rebuilt(damage, tmp_path, redux_data, capsys):
    from podium.config import IMAGE_DEFAULTS, deep_update
    from podium.vision.backbones import BackboneSpec
    from podium.vision.cache import FeatureCache

    spec = BackboneSpec.from_config(deep_update(IMAGE_DEFAULTS, {"image": {"size": [32, 32], "weights": "none"}}))
    paths = sorted(str(p) for p in (redux_data / "train").glob("*.jpg"))[:8]
    cache = FeatureCache(tmp_path, chunk_size=4)
    first = np.asarray(cache.features(spec, paths).array).copy()
    folder = cache.features(spec, paths).directory
    features, manifest = folder / "features.npy", folder / "manifest.json"
    if damage == "missing":
        features.unlink()
    elif damage == "truncated":
        features.write_bytes(features.read_bytes()[:200])
    elif damage == "wrong_shape":
        np.save(features, np.zeros((3, 2), np.float32))
    elif damage == "manifest_garbage":
        manifest.write_text("{")
    else:
        manifest.write_text("{}")
    capsys.readouterr()
    again = FeatureCache(tmp_path, chunk_size=4).features(spec, paths)
    assert not again.hit and "computing this entry again" in capsys.readouterr().out
    assert np.array_equal(np.asarray(again.array), first)


# -- 6. paths: checked before any work -----------------------------------------------------------------------
def test_output_paths_that_name_the_wrong_kind_of_thing(redux, workdir, capsys):
    (workdir / "afile").write_text("x")
    (workdir / "adir").mkdir()
    fails(["run", REDUX, "--data", redux, "--out", "afile"], capsys, "--out", "afile")
    fails(["cv", REDUX, "--data", redux, "--out", "afile/runs"], capsys, "--out", "afile")
    fails(["run", REDUX, "--data", redux, "--set", "paths.cache=afile"], capsys, "paths.cache", "afile")
    fails(["prepare", REDUX, "--data", redux, "--set", "paths.cache=afile"], capsys, "paths.cache")
    fails(["prepare", REDUX, "--data", redux, "--out", "adir"], capsys, "--out", "adir", "folder")
    fails(["prepare", REDUX, "--data", redux, "--out", "afile/table.csv"], capsys, "afile")
    fails(["demo", "--out", "afile"], capsys, "--out", "afile")
    assert tree(workdir) == {"afile", "adir"}


# -- 7. ids: checked before training -------------------------------------------------------------------------
def test_test_ids_colliding_as_numbers_are_found_at_prepare(redux, workdir, capsys):
    shutil.copy(redux / "test" / "1.jpg", redux / "test" / "01.jpg")
    fails(["prepare", REDUX, "--data", redux], capsys, "'1'", "'01'", "01.jpg")
    fails(["run", REDUX, "--data", redux, "--set", "image.weights=none"], capsys, "01.jpg")
    assert not (workdir / "cache" / REDUX / "table.csv").exists()
    assert not list(workdir.glob(f"runs/{REDUX}/*"))  # refused before any run directory was made


# -- 8. file modes: the user's umask, not mkstemp's 0600 -----------------------------------------------------
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(umask, mode, redux, workdir, capsys):
    old = os.umask(umask)
    try:
        assert cli(["prepare", REDUX, "--data", redux]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((workdir / "cache" / REDUX / "table.csv").stat().st_mode) == mode


# -- 9. validate: streamed in chunks, no check lost ----------------------------------------------------------
CASES = {
    "duplicate across chunks": "id,label\n1,0.5\n2,0.5\n3,0.5\n4,0.5\n5,0.5\n1,0.5\n",
    "nan, text, out of range": "id,label\n1,nan\n2,abc\n3,1.5\n4,inf\n5,0.5\n6,\n",
    "empty and unexpected ids": "id,label\n1,0.5\n,0.5\n99,0.5\n98,0.5\n5,0.5\n",
    "header": "image,label\n1,0.5\n",
    "float ids": "id,label\n1.0,0.5\n2,0.5\n1,0.5\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_chunked_validation_says_what_the_whole_frame_check_says(name, redux, tmp_path, monkeypatch):
    from podium.competitions import get
    from podium.submission import validate
    from podium.core.submission_format import validate_frame

    plugin = get(REDUX)
    path = tmp_path / "sub.csv"
    path.write_text(CASES[name])
    expected = plugin.expected_test_ids(redux)
    whole = validate_frame(pd.read_csv(path, dtype={pd.read_csv(path, nrows=0).columns[0]: str}),
                           plugin.submission_header(), expected_ids=expected)
    monkeypatch.setattr(validate, "CHUNK_ROWS", 2)  # every file spans several chunks
    rows, reasons = validate.inspect_file(plugin, path, redux)
    assert reasons == whole and reasons
    assert rows == CASES[name].count("\n") - 1


@pytest.mark.parametrize("content,needle", [(None, "not found"), (b"", "empty"), (b"\xff\xfe\x00\x01", "UTF-8"),
                                            (b'id,label\n1,"0.5\n', "parsed")])
def test_validate_unreadable_file_is_one_reason(content, needle, tmp_path, capsys):
    path = tmp_path / "sub.csv"
    if content is not None:
        path.write_bytes(content)
    assert cli(["validate", REDUX, str(path)]) == 1
    out = capsys.readouterr().out
    assert needle in out and "Traceback" not in out
