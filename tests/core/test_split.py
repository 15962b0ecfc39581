import numpy as np
import pandas as pd
import pytest

from podium.errors import PodiumError
from podium.config import IMAGE_DEFAULTS, deep_update
from podium.core.split import assign_sample, assign_split


def _table(n=200, groups=10, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    rows = {"id": [f"r{i}" for i in range(n)], "path": "", "label": labels,
            "group": [f"g{i % groups}" for i in range(n)], "split": "train"}
    test = pd.DataFrame({"id": ["t1", "t2"], "path": "", "label": None, "group": "", "split": "test"})
    return pd.concat([pd.DataFrame(rows), test], ignore_index=True)


def _config(**data):
    return deep_update(IMAGE_DEFAULTS, {"data": data})


def test_stratified_split_keeps_class_balance_and_test_rows():
    table = assign_split(_table(), _config(valid_fraction=0.25))
    valid = table[table["split"] == "valid"]
    assert len(valid) == 50
    assert (table["split"] == "test").sum() == 2
    overall = table.loc[table["split"] != "test", "label"].value_counts(normalize=True)
    share = valid["label"].value_counts(normalize=True)
    assert (share - overall).abs().max() < 0.02


def test_group_split_never_shares_a_group():
    table = assign_split(_table(), _config(split="group", valid_fraction=0.3))
    train_groups = set(table.loc[table["split"] == "train", "group"])
    valid_groups = set(table.loc[table["split"] == "valid", "group"])
    assert valid_groups and train_groups and not train_groups & valid_groups


def test_group_kfold_folds_cover_every_row_once_without_leakage():
    seen = []
    for fold in range(5):
        table = assign_split(_table(), _config(split="group", folds=5, fold=fold))
        valid = table[table["split"] == "valid"]
        assert not set(valid["group"]) & set(table.loc[table["split"] == "train", "group"])
        seen.extend(valid["id"])
    assert sorted(seen) == sorted(f"r{i}" for i in range(200))


def test_split_is_seeded():
    a = assign_split(_table(), _config())
    b = assign_split(_table(), _config())
    assert a["split"].tolist() == b["split"].tolist()


def test_bad_split_options_are_named():
    with pytest.raises(PodiumError, match="data.split"):
        assign_split(_table(), _config(split="sideways"))
    with pytest.raises(PodiumError, match="valid_fraction"):
        assign_split(_table(), _config(valid_fraction=1.5))


def test_sample_set_is_seeded_and_sized_per_split():
    config = _config(sample_train=30, sample_valid=10)
    table = assign_sample(assign_split(_table(), config), config)
    assert (table["sample"] & (table["split"] == "train")).sum() == 30
    assert (table["sample"] & (table["split"] == "valid")).sum() == 10
    assert not (table["sample"] & (table["split"] == "test")).any()
    again = assign_sample(assign_split(_table(), config), config)
    assert table["sample"].tolist() == again["sample"].tolist()
