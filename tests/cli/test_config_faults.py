"""Config files and values a decoder chokes on: one line naming the file or the key, exit 2, nothing created."""
from __future__ import annotations

import numpy as np
import pytest

from podium.cli.main import main
from podium.errors import PodiumError

REDUX = "dogs-vs-cats-redux"


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


@pytest.mark.parametrize("name,content,needle", [
    ("binary.toml", b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not UTF-8"),
    ("latin1.json", '{"train": {"lr": 0.01}, "note": "caf\u00e9"}'.encode("latin-1"), "not UTF-8"),
    ("list.json", b'[{"train": {"lr": 0.01}}]', "got a list"),
    ("string.json", b'"train.lr=0.01"', "got a str"),
    ("number.json", b"3", "got a int"),
])
def test_a_config_file_that_is_no_table_is_one_line(name, content, needle, redux_data, workdir, capsys):
    (workdir / name).write_bytes(content)
    one_line(["run", REDUX, "--data", redux_data, "--config", name], capsys, name, needle)
    assert list(workdir.iterdir()) == [workdir / name]


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "1_0", "3.5", "-1"])
def test_integer_values_take_ascii_digits_only(value, workdir, capsys):
    from podium.competitions import get

    data = get("state-farm").make_demo_data(workdir / "sf", seed=0, drivers=4, per_class=2, test_images=4,
                                            size=(32, 32))
    one_line(["run", "state-farm", "--data", data, "--set", f"neighbours.k={value}"], capsys, "neighbours.k")
    assert not (workdir / "runs").exists()


@pytest.mark.parametrize("value", ["\u0663", "1_000", "\u00b2"])
def test_whole_number_options_take_ascii_digits_only(value, redux_data, workdir, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["tune", REDUX, "--data", str(redux_data), "--trials", value])
    assert exc.value.code == 2 and "--trials" in capsys.readouterr().err


@pytest.mark.parametrize("strategy,folds,needle", [
    ("random", 50, "more folds than the 20 labelled rows"), ("stratified", 50, "more folds than the 20"),
    ("group", 5, "needs at least 5 groups, found 4"),
])
def test_oof_folds_are_checked_against_rows_and_groups(strategy, folds, needle):
    from podium.evaluation.oof import oof_folds

    labels = np.array(["a", "b"] * 10)
    groups = np.repeat(["d1", "d2", "d3", "d4"], 5)
    with pytest.raises(PodiumError, match="oof.folds") as exc:
        oof_folds(labels, groups, strategy=strategy, folds=folds, seed=0)
    assert needle in str(exc.value)


def test_oof_folds_over_the_labelled_rows_stops_the_run_in_one_line(redux_data, workdir, capsys):
    one_line(["run", REDUX, "--data", redux_data, "--set", "oof.folds=500", "--set", "image.backbone=vgg16",
              "--set", "image.weights=none", "--set", "image.size=[32,32]", "--set", "train.epochs=1",
              "--set", "augment.passes=0", "--set", "paths.cache=cache"], capsys, "oof.folds=500", "labelled rows",
             "removed the unfinished run directory")
    assert list((workdir / "runs" / REDUX).iterdir()) == []
