"""The leakage probe: metadata alone against chance, loud for a planted leak, quiet without one."""
import pytest

from podium.competitions import get
from podium.competitions.fisheries import write_demo_data
from podium.errors import PodiumError
from podium.cli.main import main
from podium.vision.interpret.leakage import probe
from podium.evaluation.runner import resolve_config

SMALL = ((64, 36), (64, 48), (60, 34), (86, 48))


@pytest.fixture(scope="module")
def leaky(tmp_path_factory):
    return write_demo_data(tmp_path_factory.mktemp("leaky"), seed=1, per_class=15, stage1=4, stage2=0,
                           leak=0.9, sizes=SMALL)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return write_demo_data(tmp_path_factory.mktemp("clean"), seed=2, per_class=15, stage1=4, stage2=0,
                           leak=0.0, sizes=SMALL)


def test_planted_size_leak_is_flagged(leaky):
    plugin = get("fisheries")
    result = probe(plugin, leaky, resolve_config(plugin))
    assert result["leak"]
    assert result["metadata_log_loss"] < 0.8 * result["chance_log_loss"]
    assert result["metadata_accuracy"] > result["chance_accuracy"] + 0.2
    assert result["valid_rows"] == 24 and result["train_rows"] == 96


def test_no_leak_stays_quiet(clean):
    plugin = get("fisheries")
    result = probe(plugin, clean, resolve_config(plugin))
    assert not result["leak"]
    assert result["log_loss_reduction"] < result["threshold"]


def test_command_prints_the_table_and_a_plain_warning(leaky, clean, tmp_path, capsys):
    assert main(["leakage", "fisheries", "--data", str(leaky), "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "metadata alone" in out and "chance" in out and "warning:" in out
    assert "no finished run" in out
    assert main(["leakage", "fisheries", "--data", str(clean), "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "warning:" not in out and "no leak found" in out


def test_competition_without_metadata_is_one_clear_error(tmp_path):
    plugin = get("dogs-vs-cats-redux")
    with pytest.raises(PodiumError, match="no metadata columns"):
        probe(plugin, tmp_path, resolve_config(plugin))
