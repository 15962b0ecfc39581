import subprocess
import sys

import pytest

from podium.cli.main import COMMANDS, main


def test_every_command_has_help(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: podium" in capsys.readouterr().out


def test_competitions_lists_registered_plugins(capsys):
    assert main(["competitions"]) == 0
    out = capsys.readouterr().out
    assert "dogs-vs-cats-redux" in out and "dogs-vs-cats-redux-kernels-edition" in out


def test_prepare_writes_the_canonical_table(tmp_path, redux_data, capsys):
    import pandas as pd

    out = tmp_path / "table.csv"
    assert main(["prepare", "dogs-vs-cats-redux", "--data", str(redux_data), "--sample", "20", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:5]) == ["id", "path", "label", "group", "split"]
    assert (table["split"] == "test").sum() == 40
    assert (table["sample"] & (table["split"] == "train")).sum() == 20
    assert "train 96, valid 24, test 40" in capsys.readouterr().out


def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, capsys):
    assert main(["prepare", "dogs-vs-cats-redux", "--data", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0] and err[0].startswith("podium prepare: error:")

    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    (tmp_path / "train" / "horse.1.jpg").write_bytes(b"x")
    assert main(["prepare", "dogs-vs-cats-redux", "--data", str(tmp_path)]) == 2
    assert "horse.1.jpg" in capsys.readouterr().err

    assert main(["run", "dogs-vs-cats-redux", "--data", str(tmp_path), "--set", "train.lrr=1"]) == 2
    assert "train.lrr" in capsys.readouterr().err
    assert main(["run", "nope", "--data", str(tmp_path)]) == 2


def test_console_entry_point_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "podium", "competitions"], capture_output=True, text=True)
    assert result.returncode == 0 and "dogs-vs-cats-redux" in result.stdout
