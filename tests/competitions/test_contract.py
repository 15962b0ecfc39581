"""One contract, checked on every registered competition plugin."""
import numpy as np
import pandas as pd
import pytest

from podium.competitions import get, names
from podium.core.table import check_table
from podium.evaluation.runner import demo_config, resolve_config
from podium.core.split import assign_sample


@pytest.fixture(scope="module", params=names())
def plugin_and_data(request, tmp_path_factory):
    plugin = get(request.param)
    data_dir = plugin.make_demo_data(tmp_path_factory.mktemp(request.param), seed=0)
    return plugin, data_dir


def test_declares_what_the_pipeline_needs(plugin_and_data):
    plugin, _ = plugin_and_data
    assert plugin.name and plugin.slug and plugin.task in ("classification", "rating")
    assert plugin.submission_header()[0] == plugin.id_column
    assert plugin.prediction_columns()
    if plugin.task == "classification":
        assert len(plugin.classes) >= 2 and list(plugin.prediction_columns()) == list(plugin.classes)


def test_demo_data_reads_into_a_canonical_table_with_a_split(plugin_and_data):
    plugin, data_dir = plugin_and_data
    config = resolve_config(plugin)
    table = check_table(plugin.read_table(data_dir), plugin)
    table = assign_sample(plugin.split(table, config), config)
    assert {"train", "valid"} <= set(table["split"])
    labelled = table[table["split"] != "test"]
    assert labelled["label"].notna().all()
    assert table["sample"].any()


def test_configs_resolve_and_demo_overrides_are_known_keys(plugin_and_data):
    plugin, _ = plugin_and_data
    config = resolve_config(plugin, overrides=plugin.demo_overrides())
    assert isinstance(config["seed"], int)
    assert demo_config(plugin)["seed"] == config["seed"]


def test_uniform_predictions_make_a_valid_submission(plugin_and_data):
    plugin, data_dir = plugin_and_data
    ids = plugin.expected_test_ids(data_dir)
    if not ids:
        pytest.skip(f"{plugin.name} has no test set in its demo data")
    width = len(plugin.prediction_columns())
    predictions = np.full((len(ids), width), 1.0 / width) if plugin.task == "classification" \
        else np.full(len(ids), 3.0)
    frame = plugin.submission_frame(ids, predictions)
    assert list(frame.columns) == plugin.submission_header()
    assert plugin.validate_submission(frame, data_dir) == []
    broken = frame.drop(index=frame.index[0])
    assert plugin.validate_submission(broken, data_dir)


def test_registry_rejects_unknown_names():
    from podium.errors import PodiumError

    with pytest.raises(PodiumError, match="unknown competition"):
        get("no-such-competition")
    assert isinstance(pd.Series(names()), pd.Series) and len(names()) == len(set(names()))
